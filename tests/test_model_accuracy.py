"""The shipped default model localises people on real COCO images (PCK, see models/accuracy.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.accuracy import evaluate_model, head_sizes, largest_people, pck_hits

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
