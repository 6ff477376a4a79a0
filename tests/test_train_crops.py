"""Crop training (models/train/crops.py): crops cut as the app cuts them, targets that decode back
to the person's keypoints, augmentation that keeps keypoints on the person, a training step that
learns, and an exported crop model that the app runs as its crop network.

Everything runs on the generated stills with hand-labelled people (tests/media.py) and Google's
weights read back from the committed ONNX files: no ../shared needed."""

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("pycocotools")

from support import committed_posenet  # noqa: E402

from models.train.__main__ import main as train_main  # noqa: E402
from models.train.crops import (  # noqa: E402
    CropAugment,
    PersonCropCutter,
    PersonCropDataset,
    labelled_box,
    person_crops,
)
from models.train.dataset import read_coco_keypoints  # noqa: E402
from models.train.evaluation import TorchEngine  # noqa: E402
from models.train.losses import posenet_loss  # noqa: E402
from models.train.trainer import LAST_CHECKPOINT, TrainConfig, Trainer, load_checkpoint, model_from_checkpoint  # noqa: E402
from pose_app.cli.main import main as app_main  # noqa: E402
from pose_app.core.skeleton import FLIP_PERMUTATION, KEYPOINT_INDEX, NUM_KEYPOINTS  # noqa: E402
from pose_app.inference.config import PipelineConfig  # noqa: E402
from pose_app.inference.crops import CropSettings, crop_batch  # noqa: E402
from pose_app.inference.decode import decode_single_pose  # noqa: E402
from pose_app.inference.engine import PoseEngine  # noqa: E402
from pose_app.inference.families.posenet import HEAD_OUTPUTS  # noqa: E402
from pose_app.inference.pipeline import build_pipeline  # noqa: E402
from pose_app.inference.refine import CropRefiner  # noqa: E402
from pose_app.io.sources import read_image  # noqa: E402

STRIDE = 16
BALANCED_CROPS = CropSettings(resolution=257)  # the balanced preset's crops: 193x257


@pytest.fixture(scope="module")
def stills(labelled_stills):
    return read_coco_keypoints(labelled_stills.annotations, labelled_stills.images)


def test_crops_are_cut_as_the_app_cuts_them(stills):
    # Without augmentation a training crop is, pixel for pixel, the crop the app's refiner cuts
    # around a pose that found exactly the person's labelled keypoints.
    crops = person_crops(stills)
    assert len(crops) >= 4
    dataset = PersonCropDataset(crops, BALANCED_CROPS, STRIDE)
    refiner = CropRefiner(PoseEngine("posenet-075-int8", provider="cpu", threads=1), BALANCED_CROPS)
    for index, sample in enumerate(crops):
        image = read_image(sample.image.path)
        found = sample.image.keypoints[sample.person : sample.person + 1].copy()
        found[..., 2] = (found[..., 2] > 0) * 0.9  # the labelled joints, found with a high score
        expected = crop_batch(image, refiner.crops_for(image.shape, found), flip=False)[0]
        item = dataset[index]
        assert item["image"].shape == (3, 257, 193)
        np.testing.assert_array_equal(item["image"].numpy(), expected)


def test_a_crop_samples_targets_decode_back_to_its_keypoints(stills):
    crops = person_crops(stills)
    dataset = PersonCropDataset(crops, BALANCED_CROPS, STRIDE)
    for index, sample in enumerate(crops):
        item = dataset[index]
        heatmaps, offsets = item["heatmaps"].numpy(), item["offsets"].numpy()
        decoded, _ = decode_single_pose(heatmaps, offsets, STRIDE)
        image = read_image(sample.image.path)
        keypoints = sample.image.keypoints[sample.person]
        transform = dataset.cutter.transform(labelled_box(keypoints), image.shape)
        labelled = keypoints[:, 2] > 0
        assert labelled.sum() >= 3
        # The app's decoder reads the targets like network outputs: the peak cell plus its offset
        # is the keypoint, mapped back to frame pixels with the crop's own transform.
        frame_xy = transform.to_frame(decoded[0, :, :2])
        np.testing.assert_allclose(frame_xy[labelled], keypoints[labelled, :2], atol=1e-3)
        np.testing.assert_array_equal(decoded[0, labelled, 2], 1.0)
        assert heatmaps[~labelled].sum() == 0  # unlabelled joints make no disc


# 17 well-separated BGR colours: each keypoint painted with its own, so a crop shows which joint
# landed where after rotation, jitter and mirroring.
MARKER_COLOURS = np.array(
    [[int(c) for c in cv2.cvtColor(np.uint8([[[h, 255, 255 if i % 2 else 150]]]), cv2.COLOR_HSV2BGR)[0, 0]]
     for i, h in enumerate(np.linspace(0, 170, NUM_KEYPOINTS).astype(np.uint8))],
    np.float32,
)


def painted_person(stills):
    """(image, keypoints (17, 3)) of the best-labelled person, every labelled keypoint painted
    as a 5 px disc of its own colour; only joints 12 px or more from every other one count."""
    sample = max(person_crops(stills), key=lambda crop: (crop.image.keypoints[crop.person, :, 2] > 0).sum())
    image = read_image(sample.image.path).copy()
    keypoints = sample.image.keypoints[sample.person].copy()
    xy = keypoints[:, :2]
    distance = np.linalg.norm(xy[:, None] - xy[None], axis=-1) + np.eye(NUM_KEYPOINTS) * 1e9
    keypoints[distance.min(axis=1) < 12, 2] = 0
    for k in np.flatnonzero(keypoints[:, 2] > 0):
        cv2.circle(image, (int(round(xy[k, 0])), int(round(xy[k, 1]))), 5, MARKER_COLOURS[k].tolist(), -1)
    return image, keypoints


def test_augmentation_keeps_keypoints_on_the_person_and_a_flip_swaps_sides(stills):
    image, keypoints = painted_person(stills)
    assert (keypoints[:, 2] > 0).sum() == 5  # the photo labels nose, eyes and shoulders
    geometry_only = CropAugment(blur_probability=0, jpeg_probability=0, brightness=0, contrast=0, occlusion_probability=0)
    cutter = PersonCropCutter(BALANCED_CROPS, STRIDE, geometry_only)
    left, right = KEYPOINT_INDEX["left_shoulder"], KEYPOINT_INDEX["right_shoulder"]
    flips = 0
    for seed in range(12):
        crop, points = cutter(image, keypoints, np.random.default_rng(seed))
        bgr = crop[::-1].transpose(1, 2, 0)
        seen = points[:, 2] > 0
        assert seen.sum() >= 4
        at = points[seen, :2].round().astype(int)
        colours = bgr[at[:, 1], at[:, 0]]
        nearest = np.linalg.norm(colours[:, None] - MARKER_COLOURS[None], axis=-1).argmin(axis=1)
        own, swapped = np.flatnonzero(seen), np.array(FLIP_PERMUTATION)[seen]
        # Every keypoint sits on its own marker, or (mirrored crop) on its mirror twin's.
        flipped = bool((nearest == swapped).all() and not (nearest == own).all())
        assert flipped or (nearest == own).all(), seed
        flips += flipped
        # A mirror image is a real person: the left shoulder stays on the same side of the right
        # one as in the photo (the slots were swapped with the pixels).
        if points[left, 2] > 0 and points[right, 2] > 0 and keypoints[left, 2] > 0 and keypoints[right, 2] > 0:
            assert np.sign(points[left, 0] - points[right, 0]) == np.sign(keypoints[left, 0] - keypoints[right, 0])
    assert 0 < flips < 12


def crop_trainer(labelled_stills, out, **settings) -> Trainer:
    """A crop-training Trainer on the stills whose model holds Google's posenet-075 weights."""
    config = TrainConfig(
        data=str(labelled_stills.images), ann=str(labelled_stills.annotations), out=str(out), init="scratch",
        crops=True, epochs=1, batch_size=4, **settings,
    )
    trainer = Trainer(config, torch.device("cpu"))
    trainer.model.load_state_dict(committed_posenet("posenet-075").state_dict())
    return trainer


def test_one_training_step_lowers_the_loss_on_a_fixed_batch(labelled_stills, tmp_path):
    trainer = crop_trainer(labelled_stills, tmp_path, lr=1e-4, freeze_layers=10)
    batch = next(iter(trainer.loader(0)))

    def loss() -> float:
        with torch.no_grad():
            return posenet_loss(trainer.model(batch["image"]), batch)["loss"].item()

    before = loss()
    trainer.train_step(batch)
    assert loss() < before


def test_distilled_heatmap_targets_are_the_starting_weights_own(labelled_stills, tmp_path):
    trainer = crop_trainer(labelled_stills, tmp_path, lr=1e-4, freeze_layers=10, distill_heatmaps=True)
    trainer.teacher.load_state_dict(trainer.model.state_dict())  # the starting weights
    start = {name: value.clone() for name, value in trainer.teacher.state_dict().items()}
    batch = next(iter(trainer.loader(0)))
    with torch.no_grad():
        logits = trainer.model(batch["image"]).heatmap_logits
        expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.sigmoid(logits)).item()
    # The heatmap term of the step is the BCE against the teacher's probabilities, not the discs.
    assert trainer.train_step(batch)["heatmap"] == pytest.approx(expected, rel=1e-4)
    assert all(torch.equal(value, start[name]) for name, value in trainer.teacher.state_dict().items())
    # At the start the heatmap term has no gradient (student = teacher): the offsets learn.
    assert not torch.equal(trainer.model.offset.weight, start["offset.weight"])


@pytest.mark.slow
def test_an_exported_crop_model_runs_as_the_apps_crop_network(labelled_stills, tmp_path, capsys):
    out, exported = tmp_path / "run", tmp_path / "crops.onnx"
    data = ["--data", str(labelled_stills.images), "--ann", str(labelled_stills.annotations)]
    assert train_main([
        *data, "--crops", "--init", "scratch", "--width", "0.5", "--epochs", "1", "--batch-size", "4",
        "--device", "cpu", "--threads", "1", "--out", str(out), "--export", str(exported), "--export-from", "last",
    ]) == 0
    model = model_from_checkpoint(load_checkpoint(out / LAST_CHECKPOINT)).eval()
    # The app's engine loads it (the ONNX contract: input, heads, features, metadata) and computes
    # what PyTorch does on a batch of crops.
    engine = PoseEngine(exported, provider="cpu", threads=1)
    assert engine.info.output_stride == STRIDE and len(engine.info.feature_blocks) == 14
    crops = PersonCropDataset(person_crops(read_coco_keypoints(labelled_stills.annotations, labelled_stills.images)),
                              BALANCED_CROPS, STRIDE)
    batch = np.stack([crops[i]["image"].numpy() for i in range(3)])
    for name, actual, expected in zip(HEAD_OUTPUTS, engine.run(batch), TorchEngine(model, torch.device("cpu")).run(batch)):
        assert actual.shape == expected.shape == (3, *actual.shape[1:2], 17, 13), name
        np.testing.assert_allclose(actual, expected, rtol=0, atol=2e-4 * max(1.0, float(np.abs(expected).max())), err_msg=name)
    # `pose-app eval --crop-model` runs it on the crops (the full frame keeps the preset's model)
    # and says so; a pipeline's header names both.
    assert app_main([
        "eval", "--gt", str(labelled_stills.annotations), "--images", str(labelled_stills.images),
        "--crop-model", str(exported), "--threads", "1",
    ]) == 0
    described = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("preset "))
    assert "posenet-075-int8 (output stride 16)" in described and described.endswith("by crops")
    header = build_pipeline(PipelineConfig(crop_model=str(exported), threads=1), is_still=True).header()
    assert (header["model"], header["crop_model"]) == ("posenet-075-int8", "crops")
    assert build_pipeline(PipelineConfig(threads=1), is_still=True).header()["crop_model"] == "movenet-thunder"
    assert build_pipeline(PipelineConfig(crop_model="", threads=1), is_still=True).header()["crop_model"] == "posenet-075-int8"
    assert build_pipeline(PipelineConfig(threads=1)).header()["crop_model"] == "movenet-lightning"  # videos
