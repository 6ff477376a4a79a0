"""OpenSim files of a finished recording: TRC (keypoint positions) and MOT (joint and segment
angles), one file per person (docs/opensim.md).

TRC: the Motion Analysis "track row column" text that OpenSim reads markers from: tab-separated,
`PathFileType 4 (X/Y/Z)`, the DataRate ... OrigNumFrames header, `Frame# Time` and the 17
keypoint names, each over X, Y, Z; one row per processed frame from the person's first to last
frame, cells empty where a keypoint scored below MIN_KEYPOINT_SCORE or the person was not seen.
Coordinates follow OpenSim's axes: X to the right, **Y up**, Z = 0 (towards the camera), with
the origin at the centre of the frame's bottom-left pixel: X = x, Y = height - 1 - y in pixels
(Units px), or those times height_m / the person's height in pixels (Units m, with height_m).

MOT: an OpenSim storage file of the angles (core/angles.py, degrees, `inDegrees=yes`): the
header (name, version, nRows, nColumns, inDegrees, endheader), then `time` and the 19 angles,
NaN where an angle is missing; the same rows as the TRC.

Both files are written whole when the recording is finished (their headers count the rows),
under a temporary name first and then renamed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pose_app.core.angles import ANGLE_NAMES, compute_angles
from pose_app.core.poses import MIN_KEYPOINT_SCORE
from pose_app.core.skeleton import KEYPOINT_INDEX, KEYPOINT_NAMES, NUM_KEYPOINTS
from pose_app.errors import PoseAppError
from pose_app.io.csv_tables import KeypointTable
from pose_app.io.formats import write_whole_text

PERSON_FIELD = "{person}"
# Decimals of TRC coordinates: hundredths of a pixel (as the keypoint CSV), or 10 micrometres.
TRC_DECIMALS = {"px": 2, "m": 5}
TIME_DECIMALS = 3
DEGREE_DECIMALS = 2
# The body's height from the median lengths of four segments seen in the picture: shank (ankle
# to knee), thigh (knee to hip), trunk (hip midpoint to shoulder midpoint) and shoulder midpoint
# to nose make up about this share of standing height (Winter, Biomechanics and Motor Control of
# Human Movement, segment lengths as fractions of height: 0.246 + 0.245 + 0.288 + about 0.08).
BODY_PATH_FRACTION = 0.86
_SEGMENTS = (
    (("left_ankle",), ("left_knee",)), (("right_ankle",), ("right_knee",)),
    (("left_knee",), ("left_hip",)), (("right_knee",), ("right_hip",)),
    (("left_hip", "right_hip"), ("left_shoulder", "right_shoulder")),
    (("left_shoulder", "right_shoulder"), ("nose",)),
)
_SEGMENT_GROUPS = ((0, 1), (2, 3), (4,), (5,))  # shank, thigh, trunk, neck and head


def person_paths(template: str | Path, person_ids: Sequence[int]) -> dict[int, Path]:
    """Each person's file: `{person}` in the name replaced by the id; otherwise the path itself for
    one person, and `<stem>-person<id><suffix>` for each of several."""
    template = str(template)
    if PERSON_FIELD in template:
        return {person_id: Path(template.replace(PERSON_FIELD, str(person_id))) for person_id in person_ids}
    path = Path(template)
    if len(person_ids) == 1:
        return {person_ids[0]: path}
    return {person_id: path.with_name(f"{path.stem}-person{person_id}{path.suffix}") for person_id in person_ids}


def person_files_exist(template: str | Path) -> bool:
    """Whether a finished recording's TRC or MOT files are there (any person's)."""
    template = str(template)
    path = Path(template.replace(PERSON_FIELD, "*") if PERSON_FIELD in template else template)
    if "*" not in path.name and path.exists():
        return True
    pattern = path.name if "*" in path.name else f"{path.stem}-person*{path.suffix}"
    return any(path.parent.glob(pattern))


def person_height_px(keypoints: np.ndarray) -> float:
    """A person's standing height in pixels from their keypoints (T, 17, 3): the median length of
    each segment over the frames where its keypoints score MIN_KEYPOINT_SCORE or more (left and
    right averaged), summed, over BODY_PATH_FRACTION. NaN when a segment is never seen."""
    keypoints = np.asarray(keypoints, np.float64).reshape(-1, NUM_KEYPOINTS, 3)
    lengths = []
    for start, end in _SEGMENTS:
        points = []
        for names in (start, end):
            index = [KEYPOINT_INDEX[name] for name in names]
            seen = np.all(keypoints[:, index, 2] >= MIN_KEYPOINT_SCORE, axis=1)
            points.append((keypoints[:, index, :2].mean(axis=1), seen))
        (a, seen_a), (b, seen_b) = points
        both = seen_a & seen_b
        lengths.append(float(np.median(np.hypot(*(a[both] - b[both]).T))) if both.any() else math.nan)
    groups = [np.nanmean([lengths[i] for i in group]) if any(math.isfinite(lengths[i]) for i in group) else math.nan
              for group in _SEGMENT_GROUPS]
    return float(sum(groups) / BODY_PATH_FRACTION)


def _person_rows(table: KeypointTable, person_id: int, frames: Sequence[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frame numbers, times, keypoints (T, 17, 3)) of one person over the processed `frames`
    from their first to last appearance; NaN keypoints with score 0 where absent."""
    seen = {}
    for frame in table.frames:
        rows = np.flatnonzero(frame.person_ids == person_id)
        if len(rows):
            seen[frame.frame] = frame.keypoints[rows[0]]
    numbers = [number for number, _ in frames]
    present = [i for i, number in enumerate(numbers) if number in seen]
    span = frames[present[0]:present[-1] + 1]
    absent = np.full((NUM_KEYPOINTS, 3), (np.nan, np.nan, 0.0))
    keypoints = np.stack([seen.get(number, absent) for number, _ in span])
    return np.array([n for n, _ in span], np.int64), np.array([t for _, t in span], np.float64), keypoints


def _cell(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}" if math.isfinite(value) else ""


def trc_text(name: str, times: np.ndarray, first_frame: int, keypoints: np.ndarray, rate: float,
             frame_height: int, scale: float = 1.0, units: str = "px") -> str:
    """A TRC file's text: keypoints (T, 17, 3) in frame pixels, times (T,) seconds, `rate` frames
    per second, `first_frame` the source's number of the first row. X = x * scale,
    Y = (frame_height - 1 - y) * scale, Z = 0; empty cells below MIN_KEYPOINT_SCORE."""
    count = len(times)
    decimals = TRC_DECIMALS[units]
    lines = [
        f"PathFileType\t4\t(X/Y/Z)\t{name}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
        f"{rate:.6g}\t{rate:.6g}\t{count}\t{NUM_KEYPOINTS}\t{units}\t{rate:.6g}\t{first_frame + 1}\t{count}",
        "Frame#\tTime\t" + "\t".join(f"{keypoint}\t\t" for keypoint in KEYPOINT_NAMES),
        "\t\t" + "\t".join(f"X{i}\tY{i}\tZ{i}" for i in range(1, NUM_KEYPOINTS + 1)),
        "",
    ]
    with np.errstate(invalid="ignore"):
        seen = keypoints[..., 2] >= MIN_KEYPOINT_SCORE
    x = np.where(seen, keypoints[..., 0] * scale, np.nan)
    y = np.where(seen, (frame_height - 1 - keypoints[..., 1]) * scale, np.nan)
    z = np.where(seen, 0.0, np.nan)
    for row in range(count):
        cells = [str(row + 1), f"{times[row]:.{TIME_DECIMALS}f}"]
        for k in range(NUM_KEYPOINTS):
            cells += [_cell(x[row, k], decimals), _cell(y[row, k], decimals), _cell(z[row, k], decimals)]
        lines.append("\t".join(cells))
    return "\n".join(lines) + "\n"


def mot_text(name: str, times: np.ndarray, degrees: np.ndarray, names: Sequence[str] = ANGLE_NAMES) -> str:
    """An OpenSim storage (.mot) file's text: `time` and one column per angle, degrees (T, A)."""
    lines = [
        name, "version=1", f"nRows={len(times)}", f"nColumns={len(names) + 1}", "inDegrees=yes", "endheader",
        "\t".join(("time", *names)),
    ]
    for time_s, values in zip(times.tolist(), degrees.tolist()):
        cells = [f"{time_s:.{TIME_DECIMALS}f}"] + [f"{v:.{DEGREE_DECIMALS}f}" if math.isfinite(v) else "NaN" for v in values]
        lines.append("\t".join(cells))
    return "\n".join(lines) + "\n"


def write_opensim_files(
    table: KeypointTable,
    frames: Sequence[tuple[int, float]],
    *,
    trc: str | Path | None = None,
    mot: str | Path | None = None,
    rate: float,
    frame_height: int,
    height_m: float | None = None,
) -> list[Path]:
    """The MOT and/or TRC file of every person in `table` (one source), over its processed
    `frames` [(frame number, time_s)]: paths from the templates by `person_paths`. With height_m
    the TRC is in metres, scaled by each person's height (person_height_px); a person whose height
    cannot be estimated gets no TRC, and once every other file is written that is a
    PoseAppError. Returns the files written."""
    person_ids = sorted({int(i) for frame in table.frames for i in frame.person_ids})
    written: list[Path] = []
    unmeasured: list[str] = []
    if not person_ids or not frames:
        return written
    for kind, template in (("mot", mot), ("trc", trc)):
        if template is None:
            continue
        for person_id, path in person_paths(template, person_ids).items():
            numbers, times, keypoints = _person_rows(table, person_id, frames)
            if kind == "trc":
                scale, units = 1.0, "px"
                if height_m is not None:
                    pixels = person_height_px(keypoints)
                    if not math.isfinite(pixels):
                        unmeasured.append(
                            f"--height-m: cannot measure person {person_id}'s height in pixels (ankles, knees, hips, "
                            f"shoulders and nose are never all seen), so {path} was not written"
                        )
                        continue
                    scale, units = height_m / pixels, "m"
                text = trc_text(path.name, times, int(numbers[0]), keypoints, rate, frame_height, scale, units)
            else:
                text = mot_text(path.stem, times, compute_angles(keypoints)[0])
            write_whole_text(path, text)
            written.append(path)
    if unmeasured:
        raise PoseAppError(unmeasured[0] if len(unmeasured) == 1 else f"{unmeasured[0]} (and {len(unmeasured) - 1} more)")
    return written
