"""The holds CSV: one row per hold of an isometric exercise (plank, side plank, wall sit, bridge,
single-leg stance), written by `pose-app holds` and read back (HOLDS_CSV_COLUMNS).

`HoldRecord` is plain data so that this layer can write what the analysis layer finds
(analysis/holds.py) without importing it. Times are media seconds (3 decimals, as in the
keypoint CSV), angles degrees (2 decimals), shares 0..1 (4 decimals); a body-line number is
empty when the body line was never seen during the hold.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from pose_app.errors import PoseAppError
from pose_app.io.csv_tables import LARGEST_TIME_S, finite_number, read_rows, whole_number
from pose_app.io.formats import csv_field, number_text, write_whole_text
from pose_app.io.output_files import NO_INPUTS, FileIdentity

HOLDS_CSV_COLUMNS = (
    "source", "person_id", "hold", "start_s", "end_s", "duration_s", "held_s", "breaks", "break_s",
    "body_line_side", "body_line_mean_deg", "body_line_sd_deg", "body_line_min_deg", "body_line_seen",
)
# The number format of each numeric column (a kind of formats.DECIMALS).
_KINDS = {
    "start_s": "time", "end_s": "time", "duration_s": "time", "held_s": "time", "break_s": "time",
    "body_line_mean_deg": "degrees", "body_line_sd_deg": "degrees", "body_line_min_deg": "degrees",
    "body_line_seen": "score",
}
_BODY_LINE_NUMBERS = ("body_line_mean_deg", "body_line_sd_deg", "body_line_min_deg")


@dataclass(frozen=True)
class HoldRecord:
    """One hold. start_s / end_s: when the position was reached / left (media seconds);
    duration_s = end_s - start_s; breaks: how many times the position was left (or the person
    lost) for at most the longest break and then taken again, break_s their total time, held_s =
    duration_s - break_s. body_line_side: the side (left, right) whose shoulder-hip-ankle angle
    was measured ('' when neither was seen); its mean, sample standard deviation and minimum over
    the hold (180 = straight; NaN when not seen), and body_line_seen the share of the hold's
    frames it was seen in."""

    source: str
    person_id: int
    hold: int
    start_s: float
    end_s: float
    duration_s: float
    held_s: float
    breaks: int
    break_s: float
    body_line_side: str
    body_line_mean_deg: float
    body_line_sd_deg: float
    body_line_min_deg: float
    body_line_seen: float


assert tuple(field.name for field in fields(HoldRecord)) == HOLDS_CSV_COLUMNS


def _field_text(name: str, value: object) -> str:
    if name in _KINDS:
        return number_text(_KINDS[name], float(value)) if math.isfinite(float(value)) else ""
    return csv_field(str(value))


def holds_csv_text(records: Iterable[HoldRecord]) -> str:
    """The CSV text of `records`, header first."""
    lines = [",".join(HOLDS_CSV_COLUMNS)]
    lines += [",".join(_field_text(name, value) for name, value in zip(HOLDS_CSV_COLUMNS, astuple(record))) for record in records]
    return "\n".join(lines) + "\n"


def write_holds_csv(records: Iterable[HoldRecord], path: str | Path, inputs: frozenset[FileIdentity] = NO_INPUTS) -> None:
    """Write the holds CSV whole (a temporary file renamed into place). PoseAppError when it
    cannot be written."""
    write_whole_text(path, holds_csv_text(records), inputs)


def _value(values: dict[str, str], name: str) -> float:
    """A numeric field of a holds row: finite, or empty (NaN) for a body line never seen."""
    if name in _BODY_LINE_NUMBERS and values[name] == "":
        return math.nan
    return finite_number(values[name], name, -LARGEST_TIME_S, LARGEST_TIME_S)


def read_holds_csv(path: str | Path) -> list[HoldRecord]:
    """The holds of a holds CSV, in file order; PoseAppError for another file or a bad row."""
    path = Path(path)
    rows = read_rows(path)
    header = next(rows, (1, []))[1]
    if tuple(header) != HOLDS_CSV_COLUMNS:
        raise PoseAppError(f"{path} is not a pose-app holds CSV (expected the columns {','.join(HOLDS_CSV_COLUMNS)})")
    records = []
    for number, row in rows:
        if not row:
            continue
        try:
            values = dict(zip(HOLDS_CSV_COLUMNS, row, strict=True))
            if values["body_line_side"] not in ("left", "right", ""):
                raise ValueError(f"body_line_side {values['body_line_side']!r} is not left, right or empty")

            records.append(HoldRecord(
                values["source"], whole_number(values["person_id"], "person_id"), whole_number(values["hold"], "hold"),
                _value(values, "start_s"), _value(values, "end_s"), _value(values, "duration_s"), _value(values, "held_s"),
                whole_number(values["breaks"], "breaks"), _value(values, "break_s"), values["body_line_side"],
                _value(values, "body_line_mean_deg"), _value(values, "body_line_sd_deg"), _value(values, "body_line_min_deg"),
                _value(values, "body_line_seen"),
            ))
        except ValueError as error:
            raise PoseAppError(f"{path}, line {number}: not a pose-app holds row ({error})") from None
    return records
