"""The one table of output kinds (run/outputs.py `OUTPUT_KINDS`): every kind is an option of
`pose-app process` with its help, an item of `--formats` and a row of the docs' option tables;
and a new kind takes one object and one registration to be written by `process` (its option,
`--out-dir`, `--skip-done`) and recorded by the app, per frame or when the recording finishes
(docs/development.md: Adding an output kind).

The media are generated from the photo in tests/data (tests/media.py): `walk_clip` is one
person walking, 60 frames at 30 fps."""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from dataclasses import dataclass

import pytest
from known_poses import INFO, frame_at, known_poses
from support import REPO
from test_output_parity import StoredPipeline

from pose_app.cli.main import build_parser, main
from pose_app.errors import PoseAppError
from pose_app.io.formats import open_for_writing, write_whole_text
from pose_app.io.frame_outputs import FRAME_KINDS
from pose_app.io.output_kinds import PER_FRAME, WHEN_FINISHED, OutputKind
from pose_app.io.recording import Recording
from pose_app.run.outputs import OUTPUT_KINDS, recording_outputs
from pose_app.run.plan import input_stem

OPTION_PAGES = [REPO / "docs" / "output-format.md", REPO / "docs" / "command-line.md"]


def process_options() -> dict[str, argparse.Action]:
    subparsers = next(action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction))
    return {option: action for action in subparsers.choices["process"]._actions for option in action.option_strings}


def test_every_kind_is_an_option_of_process_with_its_help():
    options = process_options()
    for kind in OUTPUT_KINDS.values():
        assert options[kind.option].help == kind.help and options[kind.option].dest == kind.name
    # The per-frame kinds are io's own table, in the same order; the others are written when finished.
    assert [name for name, kind in OUTPUT_KINDS.items() if kind.written == PER_FRAME] == list(FRAME_KINDS)
    assert list(OUTPUT_KINDS) == ["csv", "wide_csv", "json", "video", "angles", "reps", "trc", "mot"]


def test_the_docs_option_tables_list_every_kind_and_format():
    formats = ",".join(kind.format_name for kind in OUTPUT_KINDS.values())
    for page in OPTION_PAGES:
        rows = [line for line in page.read_text(encoding="utf-8").splitlines() if line.startswith("| `--")]
        for kind in OUTPUT_KINDS.values():
            cells = [row.split("|")[1] for row in rows]
            assert any(f"`{kind.option} PATH`" in cell for cell in cells), f"{page.name}: no row for {kind.option}"
        listed = next(re.search(r"any of `([a-z,-]+)`", row).group(1) for row in rows if row.startswith("| `--formats"))
        assert listed == formats, page.name


# ------------------------------------------------------------------------------ a new kind


class _FrameLogSink:
    """One line per processed frame: its number and how many people were found."""

    def __init__(self, target, context) -> None:
        self._file = open_for_writing(target, context.inputs)
        self._file.write("frame,people\n")

    def write(self, frame, poses, written) -> None:
        self._file.write(f"{frame.index},{len(poses.scores)}\n")

    def close(self, complete, counts, discard) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass(frozen=True)
class FrameLogKind(OutputKind):
    def open(self, target, context) -> _FrameLogSink:
        return _FrameLogSink(target, context)


@dataclass(frozen=True)
class PeopleKind(OutputKind):
    """Written when finished: each person_id and the frames it was seen in."""

    def write_finished(self, recorded, target) -> None:
        seen = Counter(int(person) for frame in recorded.table.frames for person in frame.person_ids)
        rows = "".join(f"{person},{count}\n" for person, count in sorted(seen.items()))
        write_whole_text(target, "person_id,frames\n" + rows)


FRAME_LOG = FrameLogKind("frame_log", "frame numbers and people found", "{stem}.frames.csv", app_suffix=".frames.csv")
PEOPLE = PeopleKind("people", "people and their frames", "{stem}.people.csv", written=WHEN_FINISHED)


def test_a_new_output_kind_is_one_object_and_one_registration(tmp_path, capsys, monkeypatch, walk_clip):
    monkeypatch.setitem(OUTPUT_KINDS, FRAME_LOG.name, FRAME_LOG)
    monkeypatch.setitem(OUTPUT_KINDS, PEOPLE.name, PEOPLE)
    out = tmp_path / "out"
    argv = ["process", str(walk_clip), "--end", "1.0", "--every", "5", "--out-dir", str(out),
            "--formats", "json,frame-log,people"]
    assert main(argv) == 0
    stem = input_stem(str(walk_clip))
    # Frames 0, 5, ..., 25, the one walker in each (tracked: id 0 throughout).
    assert (out / f"{stem}.frames.csv").read_text() == "frame,people\n" + "".join(f"{i},1\n" for i in range(0, 30, 5))
    assert (out / f"{stem}.people.csv").read_text() == "person_id,frames\n0,6\n"
    capsys.readouterr()
    # --skip-done finds the input finished, and not once a file of the new kinds is missing.
    assert main([*argv, "--skip-done"]) == 0 and "skipped, already done" in capsys.readouterr().out
    (out / f"{stem}.people.csv").unlink()
    assert main([*argv, "--skip-done"]) == 0 and "skipped" not in capsys.readouterr().out
    assert (out / f"{stem}.people.csv").exists()
    # Its own option, and the app's recordings name its file.
    assert main(["process", str(walk_clip), "--end", "0.1", "--frame-log", str(tmp_path / "log.csv")]) == 0
    assert (tmp_path / "log.csv").read_text().splitlines()[1:] == ["0,1", "1,1", "2,1"]
    assert recording_outputs(tmp_path, video=False)["frame_log"].name.endswith(".frames.csv")


@dataclass(frozen=True)
class FailingKind(OutputKind):
    def write_finished(self, recorded, target) -> None:
        raise PoseAppError(f"cannot write {target}: no room")


def test_a_finished_kind_that_fails_leaves_the_others_written_and_is_raised_at_the_end(tmp_path):
    """Each kind written when finished is written even when one before it fails (as a TRC that
    cannot be scaled never kept the MOT from being written); the first failure is then raised,
    the per-frame files closed before."""
    failing = FailingKind("failing", "always fails", "{stem}.fail", written=WHEN_FINISHED)
    kinds = {**FRAME_KINDS, failing.name: failing, PEOPLE.name: PEOPLE}
    outputs = {"json": tmp_path / "r.json", "failing": tmp_path / "r.fail", "people": tmp_path / "r.people.csv"}
    recording = Recording(INFO, outputs, kinds=kinds)
    recording.start(StoredPipeline())
    for index in range(3):
        recording.write(frame_at(index), known_poses(index))
    with pytest.raises(PoseAppError, match="no room"):
        recording.finish()
    assert (tmp_path / "r.people.csv").read_text() == "person_id,frames\n7,3\n8,3\n"  # known_poses: ids 7 and 8
    assert json.loads((tmp_path / "r.json").read_text())["complete"] is True
    assert sorted(path.name for path in tmp_path.iterdir()) == ["r.json", "r.people.csv"]
