"""The one table of output kinds, `OUTPUT_KINDS`: what `pose-app process` offers (its options,
`--formats`, the `--out-dir` names, what `--skip-done` looks for), what the app records, and
what docs/output-format.md lists. A kind is one object (io/output_kinds.py); adding one is a
module and a line here (docs/development.md: Adding an output kind)."""

from __future__ import annotations

from pathlib import Path

from pose_app.analysis.finished_outputs import MOT, REPS, TRC
from pose_app.io.frame_outputs import ANGLES, CSV, JSON, VIDEO, WIDE_CSV
from pose_app.io.output_files import unused_stem
from pose_app.io.output_kinds import OutputKind

# In the order `pose-app process --help` and `--formats` list them.
OUTPUT_KINDS: dict[str, OutputKind] = {kind.name: kind for kind in (CSV, WIDE_CSV, JSON, VIDEO, ANGLES, REPS, TRC, MOT)}

# The app's recordings: <folder>/pose-YYYYmmdd-HHMMSS<app_suffix> for each kind with an app_suffix.
RECORDING_PREFIX = "pose"


def recording_outputs(directory: Path, video: bool) -> dict[str, Path]:
    """The files of a new app recording in `directory` (kind -> path): every kind the app
    records, those it records only when asked (the annotated video) with `video`; none of them
    exists yet, nor a file of any of them under the same stem."""
    suffixes = {name: kind.app_suffix for name, kind in OUTPUT_KINDS.items() if kind.app_suffix}
    stem = unused_stem(directory, RECORDING_PREFIX, tuple(suffixes.values()))
    return {name: Path(f"{stem}{suffix}") for name, suffix in suffixes.items()
            if video or not OUTPUT_KINDS[name].app_optional}
