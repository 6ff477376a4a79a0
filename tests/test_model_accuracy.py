"""The models/ measuring tools: the shipped default model localises people on real COCO images
(PCK, see models/accuracy.py), and models/speed.py times the app's own inference path."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from models.accuracy import Target, evaluate_model, head_sizes, largest_people, pck_hits, predict_in_box
from models.speed import main as speed_main
from models.speed import time_infer
from pose_app.errors import PoseAppError
from pose_app.inference.engine import PoseEngine

# posenet-075 measured 0.557 at 353 px on coco-dev (box-centre baseline 0.021); the floor leaves
# room for decoder or resize changes but fails if localisation breaks (e.g. swapped offsets).
PCK_FLOOR_075 = 0.45


def test_head_size_prefers_ears_then_eyes_then_box() -> None:
    keypoints = np.zeros((3, 17, 3), np.float32)
    keypoints[0, 3:5] = [[10, 0, 2], [40, 0, 1]]  # both ears: 30 px
    keypoints[0, 1:3] = [[20, 0, 2], [25, 0, 2]]
    keypoints[1, 1:3] = [[20, 0, 2], [26, 0, 2]]  # eyes only: 2 x 6 px
    keypoints[1, 3] = [10, 0, 2]
    boxes = np.array([[0, 0, 30, 40]] * 3, np.float32)  # diagonal 50 -> 5 px fallback
    assert np.allclose(head_sizes(keypoints, boxes), [30, 12, 5])


def test_pck_hits_use_half_the_head_size() -> None:
    truth = np.zeros((1, 17, 3), np.float32)
    predicted = np.zeros((1, 17, 2), np.float32)
    predicted[0, 0] = [3, 4]  # 5 px away
    predicted[0, 1] = [6, 0]  # 6 px away
    hits = pck_hits(predicted, truth, np.array([10.0]))
    assert hits[0, 0] and not hits[0, 1] and hits[0, 2:].all()


def test_default_model_localises_the_largest_person(shared_dir: Path) -> None:
    targets = largest_people(shared_dir / "data" / "coco-dev")
    assert len(targets) == 78
    result = evaluate_model("posenet-075", targets, resolution=353)
    assert result.keypoints > 800
    assert result.centre_baseline_pck < 0.1
    assert result.pck > PCK_FLOOR_075
    assert result.pck > 5 * result.centre_baseline_pck


def test_default_model_localises_the_hand_labelled_people(labelled_stills) -> None:
    """The same measurement end to end on the generated stills: the largest person of each holds
    hand-labelled eyes, nose and shoulders (no ears, so the head size is twice the eye distance
    and a hit must lie within one eye distance, about 25 px here)."""
    targets = largest_people(labelled_stills.folder)
    assert [t.image_path.name for t in targets] == [still.name for still in labelled_stills.stills]
    result = evaluate_model("posenet-075", targets, resolution=353)
    assert (result.people, result.keypoints) == (2, 10)
    assert result.centre_baseline_pck < 0.1
    assert result.pck > PCK_FLOOR_075


def test_unreadable_image_is_a_clear_app_error(tmp_path: Path) -> None:
    engine = PoseEngine("posenet-050", provider="cpu", threads=1)
    box = np.array([0, 0, 10, 10], np.float32)
    missing = Target(tmp_path / "missing.jpg", np.zeros((17, 3), np.float32), box)
    with pytest.raises(PoseAppError, match="image not found"):
        predict_in_box(engine, missing, 129)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(PoseAppError, match="cannot decode image"):
        predict_in_box(engine, Target(tmp_path / "broken.jpg", missing.keypoints, box), 129)


def test_speed_times_the_engine_on_a_square_frame() -> None:
    engine = PoseEngine("posenet-050", provider="cpu", threads=1)
    times = time_infer(engine, 129, runs=3)
    assert times.input_size == (129, 129)
    assert 0 < times.wall.p50_ms <= times.wall.p90_ms and times.wall.mean_ms > 0
    assert times.cpu_ms_per_frame > 0
    # A size that is not k * 16 + 1 is snapped like the app's resolution setting.
    assert time_infer(engine, 140, runs=1).input_size == (145, 145)


@pytest.mark.parametrize(
    "extra, fetched",
    [([], "heads only"), (["--features", "feature_5"], "+feature_5"), (["--features"], "+feature_0,")],
)
def test_speed_command_prints_its_figures(capsys, extra: list[str], fetched: str) -> None:
    speed_main(["posenet-050", "--size", "129", "--runs", "2", "--threads", "1", *extra])
    line = capsys.readouterr().out.strip()
    assert line.startswith("posenet-050 129x129 (network input 129x129) cpu threads=1 ")
    assert fetched in line
    number = r"([\d.]+)"
    figures = re.search(
        rf"mean {number} ms, median {number} ms, p90 {number} ms over 2 runs; CPU {number} ms", line
    )
    assert figures is not None, line
    assert all(float(value) > 0 for value in figures.groups())


def test_speed_command_rejects_an_unknown_feature() -> None:
    with pytest.raises(SystemExit, match="no feature output"):
        speed_main(["posenet-050", "--size", "129", "--runs", "1", "--features", "feature_99"])
