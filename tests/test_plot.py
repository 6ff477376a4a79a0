"""`pose-app plot`: PNG and SVG figures from a keypoint CSV of a real run on the generated walker
clip and from an angles CSV, the trajectory background, and clean failures on bad input."""

from __future__ import annotations

import re
import sys

import cv2
import numpy as np
import pytest
from known_poses import STANDING

from pose_app.analysis.plot import INSTALL_HINT, first_frame
from pose_app.cli.main import main
from pose_app.core.angles import ANGLE_NAMES, JOINT_ANGLES
from pose_app.io.formats import ANGLE_CSV_COLUMNS

pytest.importorskip("matplotlib", reason='pose-app plot needs matplotlib: pip install -e ".[plot]"')


def run_cli(capsys, *argv):
    code = main([*map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def svg_size_pt(text: str) -> tuple[float, float]:
    match = re.search(r'<svg[^>]*\bwidth="([\d.]+)pt"[^>]*\bheight="([\d.]+)pt"', text)
    assert match, text[:500]
    return float(match.group(1)), float(match.group(2))


def test_png_of_a_real_run_with_angles_table_and_trajectories(walk_keypoints, walk_clip, tmp_path, capsys):
    out = tmp_path / "session.png"
    code, stdout, stderr = run_cli(capsys, "plot", walk_keypoints, "--out", out, "--trajectory", "nose,left_shoulder")
    assert code == 0 and stderr == ""
    assert stdout == f"pose-app plot: 1 series, {len(JOINT_ANGLES)} angles -> {out}\n"
    image = cv2.imread(str(out))
    assert image is not None
    height, width = image.shape[:2]
    # 12 inches at 110 dpi; four joint panels, then the paths and the table below.
    assert width == 1320 and 1000 < height < 2500
    # The video's first frame behind the paths: the same figure with the video gone (a blank
    # canvas) has far fewer colours.
    moved = tmp_path / "moved.csv"
    moved.write_text(walk_keypoints.read_text().replace(str(walk_clip), "gone/walk.mkv"))
    blank_out = tmp_path / "blank.png"
    assert run_cli(capsys, "plot", moved, "--out", blank_out, "--trajectory", "nose,left_shoulder")[0] == 0
    blank = cv2.imread(str(blank_out))
    def colours(picture):
        return len(np.unique(picture.reshape(-1, 3), axis=0))
    assert colours(image) > 3 * colours(blank)


def test_svg_from_an_angles_csv_keeps_its_text(walk_keypoints, tmp_path, capsys):
    angles = tmp_path / "walk.angles.csv"
    assert run_cli(capsys, "angles", walk_keypoints, "--out", angles)[0] == 0
    out = tmp_path / "session.svg"
    code, stdout, _ = run_cli(capsys, "plot", angles, "--out", out, "--angle-names", "shoulder_line,elbow,trunk", "--person", "0")
    assert code == 0 and "4 angles" in stdout  # elbow: left and right
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<?xml") and "<svg" in text and text.rstrip().endswith("</svg>")
    width, height = svg_size_pt(text)
    assert width == pytest.approx(12 * 72) and 400 < height < 1500
    # Text is kept as text: panel titles, legend, the range-of-motion table.
    for words in ("shoulder line", "right -&gt; left shoulder", "range of motion", "left_elbow", "person 0", "time (s)"):
        assert words in text, words
    # The table holds the walker's shoulder-line range (min, max, max - min) from the CSV.
    degrees = [
        float(line.split(",")[5]) for line in angles.read_text().splitlines()[1:]
        if ",shoulder_line," in line and line.split(",")[5]
    ]
    low, high = min(degrees), max(degrees)
    for number in (low, high, high - low):
        assert f">{number:.1f}<" in text, number


def test_trajectories_on_a_blank_canvas_when_the_video_is_gone(walk_keypoints, walk_clip, tmp_path, capsys):
    keypoints = tmp_path / "moved.csv"
    keypoints.write_text(walk_keypoints.read_text().replace(str(walk_clip), "gone/walk.mkv"))
    out = tmp_path / "moved.svg"
    code, _, stderr = run_cli(capsys, "plot", keypoints, "--out", out, "--trajectory", "nose", "--angle-names", "shoulder_line")
    assert code == 0 and stderr == ""
    text = out.read_text(encoding="utf-8")
    assert "walk.mkv not found: blank 640x480 canvas" in text and "<image" not in text
    # With the video there, its first frame is embedded.
    out = tmp_path / "found.svg"
    assert run_cli(capsys, "plot", walk_keypoints, "--out", out, "--trajectory", "nose")[0] == 0
    assert "<image" in out.read_text(encoding="utf-8")


def test_first_frame_reads_the_video_as_given_or_next_to_the_csv(walk_clip, tmp_path):
    capture = cv2.VideoCapture(str(walk_clip))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 5)
    ok, expected = capture.read()
    capture.release()
    assert ok
    np.testing.assert_array_equal(first_frame(str(walk_clip), 5, tmp_path), cv2.cvtColor(expected, cv2.COLOR_BGR2RGB))
    assert first_frame(walk_clip.path.name, 0, walk_clip.path.parent).shape == (480, 640, 3)
    assert first_frame("missing.mkv", 0, tmp_path) is None


def test_several_sources_and_people(tmp_path, capsys):
    header = "source,frame,time_s,person_id,person_score,keypoint,x,y,score,x_norm,y_norm\n"
    lines = [
        f"{source},{frame},{frame / 30:.3f},{person},0.8,{name},{x + frame:.2f},{y:.2f},0.9000,{(x + frame) / 640:.6f},{y / 480:.6f}\n"
        for source, people in (("a.mp4", (0, 1)), ("b.mp4", (3,)))
        for frame in range(5)
        for person in people
        for name, (x, y) in STANDING.items()
    ]
    keypoints = tmp_path / "k.csv"
    keypoints.write_text(header + "".join(lines))
    out = tmp_path / "all.svg"
    code, stdout, _ = run_cli(capsys, "plot", keypoints, "--out", out, "--angle-names", "all", "--trajectory", "left_wrist")
    assert code == 0 and f"3 series, {len(ANGLE_NAMES)} angles" in stdout
    text = out.read_text(encoding="utf-8")
    assert all(label in text for label in ("a.mp4 #0", "a.mp4 #1", "b.mp4 #3", "(first source only)"))


def test_matplotlib_missing_is_one_line_with_the_install_command(walk_keypoints, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    code, stdout, stderr = run_cli(capsys, "plot", walk_keypoints, "--out", tmp_path / "a.png")
    assert code == 2 and stdout == ""
    assert stderr == f"pose-app: error: {INSTALL_HINT}\n"
    assert 'pip install "pose-app[plot]"' in stderr


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "no such file"),
        ("other-csv", "not a pose-app keypoint or angles CSV"),
        ("no-poses", "holds no poses"),
        ("bad-angle", "no angle named 'ankle'"),
        ("angle-not-in-file", "has no angle 'left_knee'"),
        ("trajectory-of-angles", "--trajectory needs a keypoint CSV"),
        ("bad-keypoint", "no keypoint named 'hand'"),
        ("no-person", "has no person_id 7 (it has 0)"),
        ("no-folder", "does not exist"),
        ("suffix", "give a .png, .svg, .pdf file"),
        ("directory", "it is a directory"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(case, message, walk_keypoints, tmp_path, capsys):
    source, out, extra = walk_keypoints, tmp_path / "out.png", []
    angles = tmp_path / "elbows.csv"
    if case in ("angle-not-in-file", "trajectory-of-angles"):
        assert run_cli(capsys, "angles", walk_keypoints, "--out", angles, "--angles", "elbow")[0] == 0
        source = angles
    if case == "missing":
        source = tmp_path / "nothing.csv"
    elif case == "other-csv":
        source = tmp_path / "other.csv"
        source.write_text("name,value\na,1\n")
    elif case == "no-poses":
        source = tmp_path / "empty.csv"
        source.write_text(",".join(ANGLE_CSV_COLUMNS) + "\n")
    elif case == "bad-angle":
        extra = ["--angle-names", "knee,ankle"]
    elif case == "angle-not-in-file":
        extra = ["--angle-names", "knee"]
    elif case == "trajectory-of-angles":
        extra = ["--trajectory", "nose"]
    elif case == "bad-keypoint":
        extra = ["--trajectory", "nose,hand"]
    elif case == "no-person":
        extra = ["--person", "7"]
    elif case == "no-folder":
        out = tmp_path / "no" / "out.png"
    elif case == "suffix":
        out = tmp_path / "out.jpg"
    elif case == "directory":
        out = tmp_path / "folder.png"
        out.mkdir()
    code, stdout, stderr = run_cli(capsys, "plot", source, "--out", out, *extra)
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1 and stderr.startswith("pose-app: error: ") and message in stderr, stderr
    assert not (out.exists() and out.is_file())
