"""COCO keypoint AP through pycocotools, test-time augmentation merging, and `pose-app eval`."""

import json
import re

import cv2
import numpy as np
import pytest

from pose_app.analysis.evaluate import (
    METRIC_NAMES,
    coco_keypoint_ap,
    first_images_by_id,
    load_ground_truth,
    person_category_id,
)
from pose_app.cli.main import main
from pose_app.core.geometry import mirror_x
from pose_app.core.skeleton import FLIP_PERMUTATION, OKS_SIGMAS
from pose_app.errors import PoseAppError
from pose_app.inference.config import PRESETS
from pose_app.inference.engine import PoseEngine
from pose_app.inference.estimator import PoseEstimator, merge_views

OKS_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # COCOeval's
MEDIUM_AREA, LARGE_AREA = 60.0**2, 150.0**2  # COCO: medium 32^2..96^2, large above


def person(annotation_id: int, image_id: int, keypoints_xy: np.ndarray, area: float) -> dict:
    """A ground-truth person with all 17 keypoints labelled visible."""
    keypoints = np.concatenate([keypoints_xy, np.full((17, 1), 2.0)], axis=1)
    x0, y0 = keypoints_xy.min(axis=0)
    x1, y1 = keypoints_xy.max(axis=0)
    return {
        "id": annotation_id, "image_id": image_id, "category_id": 1, "iscrowd": 0, "area": area,
        "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
        "keypoints": keypoints.reshape(-1).tolist(), "num_keypoints": 17,
    }


def random_pose(rng: np.random.Generator, centre: tuple[float, float], size: float) -> np.ndarray:
    return np.asarray(centre) + rng.uniform(-size / 2, size / 2, (17, 2))


@pytest.fixture
def ground_truth() -> dict:
    """Two images: a medium and a large person in image 1, a large person in image 2."""
    rng = np.random.default_rng(0)
    people = [
        person(1, 1, random_pose(rng, (100, 100), 60), MEDIUM_AREA),
        person(2, 1, random_pose(rng, (400, 300), 150), LARGE_AREA),
        person(3, 2, random_pose(rng, (300, 300), 150), LARGE_AREA),
    ]
    return {
        "images": [{"id": 1, "width": 640, "height": 480, "file_name": "a.jpg"},
                   {"id": 2, "width": 640, "height": 480, "file_name": "b.jpg"}],
        "annotations": people,
        "categories": [{"id": 1, "name": "person"}],
    }


def as_detection(annotation: dict, score: float = 0.9, shift_xy=(0.0, 0.0)) -> dict:
    keypoints = np.asarray(annotation["keypoints"], float).reshape(17, 3)
    keypoints[:, :2] += shift_xy
    return {"image_id": annotation["image_id"], "category_id": 1, "keypoints": keypoints.reshape(-1).tolist(), "score": score}


def test_ground_truth_as_detections_scores_one(ground_truth):
    metrics = coco_keypoint_ap(ground_truth, [as_detection(a) for a in ground_truth["annotations"]])
    assert set(metrics) == set(METRIC_NAMES)
    assert all(value == pytest.approx(1.0) for value in metrics.values()), metrics


def test_empty_detections_score_zero(ground_truth):
    metrics = coco_keypoint_ap(ground_truth, [])
    assert metrics["AP"] == 0.0 and metrics["AR"] == 0.0


def test_shifted_detection_scores_the_oks_thresholds_it_passes(ground_truth):
    """One person, shifted by 6 px: AP = share of OKS thresholds its OKS reaches (one detection)."""
    target = ground_truth["annotations"][2]
    shift = np.array([6.0, 0.0])
    # COCO OKS: mean over keypoints of exp(-d^2 / (2 * area * (2 sigma)^2)).
    oks = np.mean(np.exp(-(shift**2).sum() / (2 * LARGE_AREA * (2 * np.asarray(OKS_SIGMAS)) ** 2)))
    assert 0.5 < oks < 0.95 and np.abs(OKS_THRESHOLDS - oks).min() > 0.01  # the test's premise
    metrics = coco_keypoint_ap(ground_truth, [as_detection(target, shift_xy=shift)], image_ids=[2])
    assert metrics["AP"] == pytest.approx(np.mean(OKS_THRESHOLDS <= oks))
    assert metrics["AP"] < 1.0 and metrics["AP50"] == pytest.approx(1.0)


def test_finding_one_of_two_people_gives_51_of_101_recall_points(ground_truth):
    """Image 1 has two people; one perfect detection: precision 1 up to recall 0.5, then none."""
    detections = [as_detection(ground_truth["annotations"][1])]
    metrics = coco_keypoint_ap(ground_truth, detections, image_ids=[1])
    assert metrics["AP"] == pytest.approx(51 / 101)
    assert metrics["AR"] == pytest.approx(0.5)
    assert metrics["AP_medium"] == 0.0 and metrics["AP_large"] == pytest.approx(1.0)


def test_scoring_leaves_the_callers_records_untouched(ground_truth):
    detections = [as_detection(a) for a in ground_truth["annotations"]]
    before = json.dumps(detections)
    coco_keypoint_ap(ground_truth, detections)
    assert json.dumps(detections) == before


def test_detections_for_unknown_images_are_an_error(ground_truth):
    detection = dict(as_detection(ground_truth["annotations"][0]), image_id=99)
    with pytest.raises(PoseAppError, match="99"):
        coco_keypoint_ap(ground_truth, [detection])


def test_ground_truth_without_num_keypoints_area_or_iscrowd_is_completed(ground_truth):
    """pycocotools reads num_keypoints, area and iscrowd; hand-made files often omit them."""
    bare = json.loads(json.dumps(ground_truth))
    for annotation in bare["annotations"]:
        for name in ("num_keypoints", "area", "iscrowd"):
            del annotation[name]
    bare["annotations"][0]["keypoints"][2::3] = [0] * 5 + [2] * 12  # 12 labelled keypoints
    completed = load_ground_truth(bare)
    first = completed["annotations"][0]
    assert first["num_keypoints"] == 12 and first["iscrowd"] == 0
    assert first["area"] == pytest.approx(first["bbox"][2] * first["bbox"][3])
    assert "area" not in bare["annotations"][0]  # the caller's dict is left alone
    detections = [as_detection(a) for a in bare["annotations"]]
    assert coco_keypoint_ap(bare, detections)["AP"] == pytest.approx(1.0)


def test_ground_truth_missing_a_required_field_names_it(ground_truth):
    del ground_truth["annotations"][1]["bbox"]
    with pytest.raises(PoseAppError, match="annotation 2 lacks the field 'bbox'"):
        load_ground_truth(ground_truth)


def test_person_category_is_found_by_name_or_keypoints(ground_truth):
    ground_truth["categories"] = [{"id": 3, "name": "dog"}, {"id": 7, "name": "person"}]
    assert person_category_id(ground_truth) == 7
    ground_truth["categories"] = [{"id": 3, "name": "dog"}, {"id": 5, "name": "human", "keypoints": ["nose"]}]
    assert person_category_id(ground_truth) == 5
    ground_truth["categories"] = [{"id": 3, "name": "dog"}]
    with pytest.raises(PoseAppError, match="no person category"):
        person_category_id(ground_truth)


def test_first_images_by_id_sorts_then_cuts():
    images = [{"id": 9}, {"id": 2}, {"id": 5}]
    assert first_images_by_id(images, 2) == [{"id": 2}, {"id": 5}]
    assert first_images_by_id(images) == [{"id": 2}, {"id": 5}, {"id": 9}]


def test_unflip_mirrors_x_about_the_pixel_centres():
    keypoints = np.zeros((1, 17, 3), np.float32)
    keypoints[0, :, 0] = [0, 9, 4.5] + [1] * 14
    keypoints[0, :, 2] = 0.7
    unflipped = mirror_x(keypoints, image_width=10)
    np.testing.assert_allclose(unflipped[0, :3, 0], [9, 0, 4.5])
    np.testing.assert_array_equal(unflipped[..., 1:], keypoints[..., 1:])


def test_merge_views_averages_one_person_and_keeps_two_apart():
    rng = np.random.default_rng(1)
    person_a = np.concatenate([random_pose(rng, (100, 100), 80), np.full((17, 1), 0.8)], axis=1)
    person_b = np.concatenate([random_pose(rng, (400, 300), 80), np.full((17, 1), 0.6)], axis=1)
    nudged_a = person_a + [2.0, 0.0, 0.0]
    keypoints, scores = merge_views(
        [(np.stack([person_a, person_b]), np.array([0.8, 0.6])), (nudged_a[None], np.array([0.8]))]
    )
    assert keypoints.shape == (2, 17, 3)
    # person a, seen in both views: the mean position, full score
    np.testing.assert_allclose(keypoints[0, :, :2], person_a[:, :2] + [1.0, 0.0], atol=1e-4)
    assert scores[0] == pytest.approx(0.8)
    # person b, missed by the second view: its position, half its score
    np.testing.assert_allclose(keypoints[1, :, :2], person_b[:, :2], atol=1e-4)
    assert scores[1] == pytest.approx(0.3) and keypoints[1, 0, 2] == pytest.approx(0.3)


def test_mirrored_image_gives_the_same_poses_after_unflipping(group_image):
    """The flip augmentation's premise: the model sees a mirrored person as the same person."""
    image = cv2.imread(str(group_image))
    engine = PoseEngine("posenet-075", provider="cpu")
    # 353 of 854 px: the people are 80-120 px tall in the network input, as a COCO picture's
    # are at 257 of 640 px.
    poses = PoseEstimator(engine, 353).estimate(image)
    mirrored = PoseEstimator(engine, 353, mirrored_input=True).estimate(cv2.flip(image, 1))
    unflipped = mirror_x(mirrored.keypoints, image.shape[1])
    # Without the estimator's relabelling the labels would disagree: each left keypoint of the
    # mirrored view would land on the person's right one, far from the unmirrored view's.
    unrelabelled = mirror_x(mirrored.keypoints[:, list(FLIP_PERMUTATION)], image.shape[1])
    sided = np.asarray(FLIP_PERMUTATION) != np.arange(len(FLIP_PERMUTATION))
    for actor in range(len(group_image.actors)):  # each of the three people, in both views
        found = [k for k, pose in enumerate(poses.keypoints) if group_image.actor_of(0, pose) == actor]
        found_mirrored = [k for k, pose in enumerate(unflipped) if group_image.actor_of(0, pose) == actor]
        assert found and found_mirrored, f"person {actor} missed"
        pose, pose_mirrored = poses.keypoints[found[0]], unflipped[found_mirrored[0]]
        confident = (pose[:, 2] > 0.5) & (pose_mirrored[:, 2] > 0.5)
        assert confident.sum() >= 8
        distances = np.linalg.norm(pose[confident, :2] - pose_mirrored[confident, :2], axis=1)
        assert np.median(distances) < 0.03 * max(image.shape[:2])
        swapped = unrelabelled[found_mirrored[0]]
        confident_sided = sided & (pose[:, 2] > 0.5) & (swapped[:, 2] > 0.5)
        assert confident_sided.sum() >= 4
        swapped_distances = np.linalg.norm(pose[confident_sided, :2] - swapped[confident_sided, :2], axis=1)
        assert np.median(swapped_distances) > 3 * np.median(distances)


def printed_metric_rows(printed: str) -> dict[str, list[float]]:
    """The AP and AR rows of `pose-app eval`'s table (OKS .5:.95, .50, .75, medium, large; n/a -> -1)."""
    rows = {}
    for kind in ("AP", "AR"):
        row = re.search(rf"^{kind}((?:\s+(?:[\d.]+|n/a)){{5}})$", printed, re.MULTILINE)
        assert row, printed
        rows[kind] = [-1.0 if value == "n/a" else float(value) for value in row.group(1).split()]
    return rows


def test_eval_command_prints_ap_and_writes_detections(tmp_path, capsys, labelled_stills):
    """Two generated stills whose five people carry hand-labelled keypoints (eyes, nose,
    shoulders; tests/data/astronaut-keypoints.json), independent of any model."""
    out = tmp_path / "detections.json"
    gt_path = labelled_stills.annotations
    argv = ["eval", "--gt", str(gt_path), "--images", str(labelled_stills.images),
            "--provider", "cpu", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "2 images, 5 people with keypoints" in printed
    ap, ar = printed_metric_rows(printed)["AP"], printed_metric_rows(printed)["AR"]
    # Every person is found where the labels put her (OKS >= 0.5, and >= 0.75 too: people of
    # 200-300 px, sharp eyes) and no false positive outranks one; the stricter thresholds cost
    # a little, as hand labels and the network disagree by a few pixels on the shoulders.
    assert ap[1] == pytest.approx(1.0) and ar[1] == pytest.approx(1.0)
    assert 0.6 < ap[0] < 1.0
    assert ap[3] == -1.0 and ap[4] == pytest.approx(ap[0])  # all five are COCO "large" people
    assert re.search(r"inference [\d.]+", printed)

    records = json.loads(out.read_text())
    assert {r["image_id"] for r in records} == {1, 2}
    assert all(r["category_id"] == 1 and len(r["keypoints"]) == 51 and 0 <= r["score"] <= 1 for r in records)
    assert coco_keypoint_ap(gt_path, records)["AP"] == pytest.approx(ap[0], abs=5e-4)

    # The same detections against labels with left and right swapped score far lower: AP
    # measures where the keypoints are, against the hand labels.
    swapped = json.loads(gt_path.read_text())
    for annotation in swapped["annotations"]:
        keypoints = np.asarray(annotation["keypoints"]).reshape(17, 3)
        annotation["keypoints"] = keypoints[list(FLIP_PERMUTATION)].reshape(-1).tolist()
    assert coco_keypoint_ap(swapped, records)["AP"] < 0.5 * ap[0]


def test_eval_command_limit_runs_the_first_images_only(tmp_path, capsys, labelled_stills):
    out = tmp_path / "detections.json"
    argv = ["eval", "--gt", str(labelled_stills.annotations), "--images", str(labelled_stills.images),
            "--max-frames", "1", "--resolution", "257", "--provider", "cpu", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "1 images, 3 people with keypoints" in printed
    assert "resolution 257" in printed
    printed_ap = printed_metric_rows(printed)["AP"][0]
    assert 0.0 < printed_ap <= 1.0
    records = json.loads(out.read_text())
    assert records and {r["image_id"] for r in records} == {1}  # the group image, id 1
    assert coco_keypoint_ap(labelled_stills.annotations, records, [1])["AP"] == pytest.approx(printed_ap, abs=5e-4)


def test_eval_command_compares_every_preset(capsys, labelled_stills):
    argv = ["eval", "--gt", str(labelled_stills.annotations), "--images", str(labelled_stills.images),
            "--provider", "cpu", "--compare-presets"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("2 images, 5 people with keypoints\n")
    rows = {
        match["preset"]: match
        for match in re.finditer(
            r"^(?P<preset>\w+)\s+(?P<AP>[\d.]+)\s+(?P<AP50>[\d.]+)\s+(?P<AP_M>-?[\d.]+)\s+(?P<AP_L>[\d.]+)"
            r"\s+(?P<AR>[\d.]+)\s+(?P<ms>[\d.]+)\s+(?P<pipeline>preset .*)$",
            printed, re.MULTILINE,
        )
    }
    assert list(rows) == list(PRESETS), printed
    for preset, row in rows.items():
        assert row["pipeline"].startswith(f"preset {preset}: ")
        assert float(row["AP50"]) == pytest.approx(1.0)  # every preset finds the five people
        # accurate's Thunder crops with their mirror images place all five within OKS 0.95 (AP 1.0).
        assert 0.6 < float(row["AP"]) <= 1.0 and float(row["AP"]) == pytest.approx(float(row["AP_L"]))
        assert float(row["AP_M"]) == -1.0  # no medium people
        assert float(row["ms"]) > 0
    # The presets differ: not every one is perfect (the scores are measured, not saturated).
    assert min(float(row["AP"]) for row in rows.values()) < 1.0
    # Each row ran its own preset's pipeline (the other options given still apply: cpu).
    assert "resolution 257" in rows["fast"]["pipeline"]
    assert "posenet-075-s8" in rows["accurate"]["pipeline"] and "+ mirror" in rows["accurate"]["pipeline"]
    assert all(" on cpu," in row["pipeline"] for row in rows.values())


def test_eval_command_reports_a_missing_ground_truth(tmp_path, capsys):
    assert main(["eval", "--gt", str(tmp_path / "none.json"), "--images", str(tmp_path)]) == 2
    assert "ground-truth file not found" in capsys.readouterr().err


def test_eval_help_gives_evals_own_decoding_floor(capsys):
    # eval keeps fainter poses than the app (AP ranks every detection); its help must say so.
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "drop poses whose score is below this (default 0.05; 0.25 elsewhere)" in help_text
    assert "most people per frame (default 20; 10 elsewhere)" in help_text
