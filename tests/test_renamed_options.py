"""Options renamed so that one name means one thing across the commands (issue 28): first-N is
`--max-frames` everywhere, a list of angle names is `--angle-names`, an input is `--source`.
Each new name works; each old spelling still works for one release, storing the same value and
saying on stderr, in one line, what the option is called now; --help shows only the new name."""

from __future__ import annotations

from pathlib import Path

import pytest

from pose_app.cli.main import build_parser

# command, new option, old option, the value given, the destination, the value parsed
RENAMES = [
    ("bench", "--max-frames", "--frames", "7", "max_frames", 7),
    ("bench", "--source", "--video", "clip.mp4", "source", Path("clip.mp4")),
    ("eval", "--max-frames", "--limit", "3", "max_frames", 3),
    ("angles", "--angle-names", "--angles", "knee,hip", "angle_names", "knee,hip"),
    ("plot", "--angle-names", "--angles", "knee,hip", "angle_names", "knee,hip"),
]
# What each command needs besides the renamed option.
REQUIRED = {
    "bench": [],
    "eval": ["--gt", "gt.json", "--images", "images"],
    "angles": ["keypoints.csv", "--out", "angles.csv"],
    "plot": ["keypoints.csv", "--out", "plot.png"],
}


def parse(command: str, *argv: str):
    return build_parser().parse_args([command, *REQUIRED[command], *argv])


@pytest.mark.parametrize("command, new, old, given, dest, parsed", RENAMES, ids=lambda value: str(value))
def test_the_new_name_works_silently(command, new, old, given, dest, parsed, capsys):
    args = parse(command, new, given)
    assert getattr(args, dest) == parsed
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("command, new, old, given, dest, parsed", RENAMES, ids=lambda value: str(value))
def test_the_old_spelling_works_and_says_the_new_name(command, new, old, given, dest, parsed, capsys):
    args = parse(command, old, given)
    assert getattr(args, dest) == parsed
    assert capsys.readouterr().err == f"pose-app {command}: {old} is now {new}\n"


@pytest.mark.parametrize("command, new, old, given, dest, parsed", RENAMES, ids=lambda value: str(value))
def test_help_names_only_the_new_option(command, new, old, given, dest, parsed, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    shown = capsys.readouterr().out
    assert new in shown and f"{old} " not in shown and f"{old}\n" not in shown


def test_an_old_spelling_keeps_the_new_options_default_when_not_given():
    assert parse("bench").max_frames == 100 and parse("bench").source is None
    assert parse("eval").max_frames is None
    assert parse("angles").angle_names is None and parse("plot").angle_names is None


def test_first_n_frames_has_one_name_in_every_command():
    """bench, compare and eval all take the first N frames (images) as --max-frames."""
    assert parse("bench", "--max-frames", "5").max_frames == 5
    assert parse("eval", "--max-frames", "5").max_frames == 5
    assert build_parser().parse_args(["compare", "clip.mp4", "--max-frames", "5"]).max_frames == 5
