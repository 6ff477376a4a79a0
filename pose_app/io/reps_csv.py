"""The repetitions CSV: one row per repetition of an exercise (REPS_CSV_COLUMNS), written by
`pose-app reps`, `pose-app process --reps` and every recording of the app, and read back.

`RepRecord` is plain data so that this layer can write what the analysis layer finds
(analysis/reps.py) without importing it. Times are media seconds (3 decimals, as in the
keypoint CSV), angles degrees (2 decimals), confidence the mean lowest keypoint score (4).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from pose_app.errors import PoseAppError
from pose_app.io.csv_tables import LARGEST_TIME_S, finite_number, read_rows, whole_number
from pose_app.io.formats import csv_field, number_text, write_whole_text
from pose_app.io.output_files import NO_INPUTS, FileIdentity

REPS_CSV_COLUMNS = (
    "source", "person_id", "rep", "angle", "side", "direction", "start_s", "turn_s", "end_s",
    "rest_deg", "turn_deg", "range_deg", "out_s", "back_s", "confidence",
)
DIRECTION_VALUES = ("down", "up")
# The number format of each numeric column (a kind of formats.DECIMALS).
_KINDS = {
    "start_s": "time", "turn_s": "time", "end_s": "time", "out_s": "time", "back_s": "time",
    "rest_deg": "degrees", "turn_deg": "degrees", "range_deg": "degrees", "confidence": "score",
}
_NUMBERS = REPS_CSV_COLUMNS[6:]


@dataclass(frozen=True)
class RepRecord:
    """One repetition. angle: the angle's name (left_knee, trunk, ...); side: left, right or ''
    for an angle without a side; direction: "down" when the angle falls from its rest level
    during the repetition (a squat's knee), "up" when it rises (a sit-to-stand's knee, a raise).
    start_s / end_s: when the angle leaves / regains its rest level, turn_s: the middle of its
    turning point, all media seconds; rest_deg / turn_deg: the rest level and the turning point
    of the smoothed angle, range_deg the distance between them; out_s = turn_s - start_s (the
    way out), back_s = end_s - turn_s (the way back); confidence: the mean of the angle's
    confidence (lowest keypoint score) over the repetition's frames."""

    source: str
    person_id: int
    rep: int
    angle: str
    side: str
    direction: str
    start_s: float
    turn_s: float
    end_s: float
    rest_deg: float
    turn_deg: float
    range_deg: float
    out_s: float
    back_s: float
    confidence: float


assert tuple(field.name for field in fields(RepRecord)) == REPS_CSV_COLUMNS


def _field_text(name: str, value: object) -> str:
    if name in _KINDS:
        return number_text(_KINDS[name], float(value))
    return csv_field(str(value))


def reps_csv_text(records: Iterable[RepRecord]) -> str:
    """The CSV text of `records`, header first."""
    lines = [",".join(REPS_CSV_COLUMNS)]
    lines += [",".join(_field_text(name, value) for name, value in zip(REPS_CSV_COLUMNS, astuple(record))) for record in records]
    return "\n".join(lines) + "\n"


def write_reps_csv(records: Iterable[RepRecord], path: str | Path, inputs: frozenset[FileIdentity] = NO_INPUTS) -> None:
    """Write the repetitions CSV whole: under a temporary name first, then renamed, so a file under
    `path` is always a finished one. PoseAppError when it cannot be written."""
    write_whole_text(path, reps_csv_text(records), inputs)


def read_reps_csv(path: str | Path) -> list[RepRecord]:
    """The repetitions of a reps CSV, in file order; PoseAppError for another file or a bad row."""
    path = Path(path)
    rows = read_rows(path)
    header = next(rows, (1, []))[1]
    if tuple(header) != REPS_CSV_COLUMNS:
        raise PoseAppError(f"{path} is not a pose-app repetitions CSV (expected the columns {','.join(REPS_CSV_COLUMNS)})")
    records = []
    for number, row in rows:
        if not row:
            continue
        try:
            values = dict(zip(REPS_CSV_COLUMNS, row, strict=True))
            if values["direction"] not in DIRECTION_VALUES:
                raise ValueError(f"direction {values['direction']!r} is not one of {', '.join(DIRECTION_VALUES)}")
            records.append(RepRecord(
                values["source"], whole_number(values["person_id"], "person_id"), whole_number(values["rep"], "rep"),
                values["angle"], values["side"], values["direction"],
                *(finite_number(values[name], name, -LARGEST_TIME_S, LARGEST_TIME_S) for name in _NUMBERS),
            ))
        except ValueError as error:
            raise PoseAppError(f"{path}, line {number}: not a pose-app repetitions row ({error})") from None
    return records
