"""What a `process` run will write: each input's output paths (checked before anything is opened:
no output overwrites an input or another output), CSVs shared by several inputs, and which
inputs `--skip-done` finds finished (`is_done`). The same plan drives a local and a Ray run."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pose_app.errors import PoseAppError
from pose_app.inference.config import PipelineConfig
from pose_app.io.output_files import NO_INPUTS, FileIdentity, check_output_path, identities
from pose_app.io.sources import IMAGE_SUFFIXES, input_files, is_camera_index, is_url
from pose_app.io.stream_config import StreamConfig
from pose_app.run.outputs import OUTPUT_KINDS

DEFAULT_FORMATS = ("csv", "json")


STEM_FIELD = "{stem}"


# The end of a JSON output, read to tell whether it is complete (--skip-done).
JSON_TAIL_BYTES = 4096


def input_stem(spec: str) -> str:
    """A file-name-safe short name for an input: file stem, folder name, URL's last part."""
    if is_camera_index(spec):
        return f"camera{spec}"
    if is_url(spec):
        text = spec.split("://", 1)[1].split("?", 1)[0].rstrip("/")
        text = text.rsplit("/", 1)[-1] or text
    else:
        path = Path(spec)
        text = path.name if os.path.isdir(path) else path.stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "input"


def unique_stems(specs: list[str]) -> list[str]:
    """Stems with repeats numbered (clip, clip-2, ...) so no two inputs share output files."""
    stems: list[str] = []
    for spec in specs:
        stem = base = input_stem(spec)
        number = 1
        while stem in stems:
            number += 1
            stem = f"{base}-{number}"
        stems.append(stem)
    return stems


def _is_single_image(spec: str) -> bool:
    return Path(spec).suffix.lower() in IMAGE_SUFFIXES


def plan_outputs(
    specs: list[str], templates: dict[str, str], in_out_dir: bool = False, inputs: frozenset[FileIdentity] | None = None,
) -> list[dict[str, Path]]:
    """Per input, output kind -> path. Refuses (PoseAppError) any plan in which an output would
    overwrite an input (the same file: same device and inode, whatever the path; an image list's
    per-frame pictures included) or another output; a CSV path shared by several inputs is one
    combined file by design. `inputs`: the identities of the input files (default: those of
    `specs`, folders' images included)."""
    if inputs is None:
        inputs = input_identities(specs)
    several = len(specs) > 1
    for name, template in templates.items():
        kind = OUTPUT_KINDS[name]
        if several and not kind.combinable and STEM_FIELD not in template:
            raise PoseAppError(f"{kind.option} with several inputs needs {STEM_FIELD} in its path, or use --out-dir")
    plans = []
    for spec, stem in zip(specs, unique_stems(specs)):
        plan = {}
        for name, template in templates.items():
            if in_out_dir and _is_single_image(spec):  # the video of one image: a picture
                template = str(Path(template).with_name(OUTPUT_KINDS[name].file_name_for(single_image=True)))
            plan[name] = Path(template.replace(STEM_FIELD, stem)).expanduser()
        plans.append(plan)
    _check_no_overwrites(specs, plans, inputs)
    for path in {path for plan in plans for path in plan.values()}:
        check_output_path(path, inputs)
    for plan in plans:
        for name, path in plan.items():
            OUTPUT_KINDS[name].check(path)
    return plans


def shared_csv_paths(plans: list[dict[str, Path]]) -> set[Path]:
    """CSV paths that several inputs write into (one combined file)."""
    counts = Counter(path for plan in plans for kind, path in plan.items() if OUTPUT_KINDS[kind].combinable)
    return {path for path, count in counts.items() if count > 1}


def input_identities(specs: list[str]) -> frozenset[FileIdentity]:
    """The identities (device, inode) of every file the inputs read: files, folders' images."""
    return identities(path for spec in specs for path in input_files(spec))


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError) as error:
        raise PoseAppError(f"cannot write {path}: {getattr(error, 'strerror', None) or error}") from None


def _check_no_overwrites(specs: list[str], plans: list[dict[str, Path]], inputs: frozenset[FileIdentity]) -> None:
    owner: dict[Path, tuple[int, str]] = {}
    for number, (spec, plan) in enumerate(zip(specs, plans)):
        for kind, path in plan.items():
            resolved = _resolved(path)
            check_output_path(path, inputs)
            # Files written beside it (an image list's pictures, <stem>-<frame>.png, for every image it may read).
            for extra in OUTPUT_KINDS[kind].extra_paths(path, len(input_files(spec))):
                check_output_path(extra, inputs)
            previous = owner.setdefault(resolved, (number, kind))
            combined_csv = previous[1] == kind and OUTPUT_KINDS[kind].combinable
            if previous != (number, kind) and not combined_csv:
                raise PoseAppError(f"two outputs would both be written to {path}")


def json_complete(path: Path) -> bool:
    """Whether a JSON output exists and its trailer says "complete": true (only its end is read)."""
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - JSON_TAIL_BYTES))
            tail = file.read().decode("utf-8", errors="replace")
    except OSError:
        return False
    _, separator, trailer = tail.rpartition("],\n")
    try:
        return bool(separator) and json.loads("{" + trailer).get("complete") is True
    except ValueError:
        return False


def is_done(plan: dict[str, Path]) -> bool:
    """Whether an input's outputs are finished: its JSON is complete (a local run writes its
    trailer after every other output is closed; a Ray attempt renames the JSON last) and every
    other output is there, as its kind looks for it (`OutputKind.is_written`: an image list's
    pictures are not looked for, a per-person file any person's)."""
    if "json" not in plan or not json_complete(plan["json"]):
        return False
    return all(OUTPUT_KINDS[kind].is_written(path) for kind, path in plan.items())


@dataclass
class RunPlan:
    """What a `process` run will do, checked before any output is opened: the same for a local
    and a Ray run."""

    config: PipelineConfig
    specs: list[str]
    plans: list[dict[str, Path]]  # per input, output kind -> path
    shared_paths: set[Path]  # CSV paths several inputs write into
    fill_gaps: int
    skip: list[bool]  # per input: --skip-done found its outputs finished
    height_m: float | None = None  # --height-m: the TRC in metres
    stream: StreamConfig = StreamConfig()  # --osc, --ws: live streaming (local runs only)
    max_speed: bool = False  # while streaming: files as fast as possible, not at their own speed
    inputs: frozenset[FileIdentity] = NO_INPUTS  # every input file (device, inode): never written
