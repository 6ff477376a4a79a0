"""The output kinds written when a recording finishes, from every pose it recorded: the
repetitions CSV (reps.py finds them) and OpenSim's TRC and MOT files (io/opensim.py writes them,
one file per person). They live here, above io, because they analyse the whole recording; io's
`Recording` hands each its `RecordedPoses` through the `OutputKind` interface
(io/output_kinds.py), and run/outputs.py registers them beside the kinds written per frame."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pose_app.analysis.rep_choice import write_session_reps
from pose_app.io.opensim import PERSON_FIELD, person_files_exist, write_opensim_files
from pose_app.io.output_kinds import WHEN_FINISHED, OutputKind, RecordedPoses, Target


@dataclass(frozen=True)
class RepsKind(OutputKind):
    """Every person's repetitions, as `pose-app reps` on the recording's long CSV writes them."""

    def write_finished(self, recorded: RecordedPoses, target: Path) -> None:
        write_session_reps(recorded.table, target)


@dataclass(frozen=True)
class OpenSimKind(OutputKind):
    """An OpenSim file (TRC or MOT, by its name) of each person: `{person}` in the path is the
    person_id, else -person<ID> is added when there are several, so the names are known only
    at the end."""

    def write_finished(self, recorded: RecordedPoses, target: Path) -> None:
        write_opensim_files(
            recorded.table, recorded.processed, **{self.name: target}, rate=recorded.rate,
            frame_height=recorded.frame_height, height_m=recorded.height_m,
        )

    def is_written(self, path: Path) -> bool:
        return person_files_exist(path)

    def lockable(self, target: Target) -> bool:
        return PERSON_FIELD not in str(target)


REPS = RepsKind(
    "reps",
    "repetitions CSV, one row per repetition (as `pose-app reps` on the long CSV gives them), "
    "written when the input is done",
    "{stem}.reps.csv", written=WHEN_FINISHED, app_suffix=".reps.csv",
)
TRC = OpenSimKind(
    "trc",
    "OpenSim TRC of the keypoint positions (pixels, Y up; metres with --height-m), one file per person: "
    "{person} in PATH is the person_id, else -person<ID> is added when there are several",
    "{stem}.trc", written=WHEN_FINISHED,
)
MOT = OpenSimKind(
    "mot", "OpenSim MOT of the joint and segment angles (degrees), one file per person as for --trc",
    "{stem}.mot", written=WHEN_FINISHED,
)
