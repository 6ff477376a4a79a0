"""End-to-end training on CPU: overfit two COCO images (with an interruption and --resume),
then export the checkpoint and run it in the app's onnxruntime engine; keep the best epoch.

Those runs start from Google's TF.js weights and score AP on COCO, so they need ../shared. The
command-line checks and the augmentation replay run on the generated stills with hand-labelled
people (tests/media.py) instead."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("pycocotools")

from support import COCO_DEV, COCO_TRAIN, requires_shared  # noqa: E402

from models.train.__main__ import main  # noqa: E402
from models.train.trainer import BEST_CHECKPOINT, HISTORY_FILE, LAST_CHECKPOINT, load_checkpoint  # noqa: E402


def on_shared_data(test):
    """Marks a test of a real run: Google's TF.js weights and COCO from ../shared, minutes of CPU."""
    for mark in (requires_shared, pytest.mark.shared, pytest.mark.slow):
        test = mark(test)
    return test


ANN = COCO_TRAIN / "person_keypoints.json"
IMAGES = COCO_TRAIN / "images"
HALF_EPOCHS, EPOCHS = 60, 120  # one image pair per step: 120 optimiser steps in all


def overfit_args(out, epochs: int) -> list[str]:
    """Two images, 129x129, pretrained 0.50 network, no augmentation, one batch per epoch."""
    return [
        "--data", str(IMAGES), "--ann", str(ANN), "--max-images", "2",
        "--init", "posenet-050", "--input-size", "129", "--batch-size", "2", "--lr", "1e-3",
        "--no-augment", "--epochs", str(epochs), "--device", "cpu", "--threads", "1",
        "--val-ann", str(ANN), "--val-data", str(IMAGES), "--val-max-images", "2",
        "--val-every", str(EPOCHS), "--out", str(out),
    ]


@pytest.fixture(scope="module")
def overfit_run(tmp_path_factory):
    """(run folder, exported model): interrupted (Ctrl-C) after epoch 60, then resumed."""
    from models.train.trainer import Trainer

    threads = torch.get_num_threads()  # --threads changes the process-wide setting
    out = tmp_path_factory.mktemp("overfit")
    save = Trainer.save

    def save_then_interrupt(trainer):
        path = save(trainer)
        if trainer.epoch == HALF_EPOCHS:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C right after the checkpoint
        return path

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Trainer, "save", save_then_interrupt)
            with pytest.raises(KeyboardInterrupt):
                main(overfit_args(out, EPOCHS))
        assert load_checkpoint(out / LAST_CHECKPOINT)["epoch"] == HALF_EPOCHS
        exported = out / "overfit.onnx"
        assert main([*overfit_args(out, EPOCHS), "--resume", "--export", str(exported)]) == 0
    finally:
        torch.set_num_threads(threads)
    return out, exported


@on_shared_data
def test_resume_continues_the_interrupted_run(overfit_run):
    out, _ = overfit_run
    history = json.loads((out / HISTORY_FILE).read_text())
    assert [record["epoch"] for record in history] == list(range(EPOCHS + 1))  # 0 = before training
    assert "val" not in history[HALF_EPOCHS]  # validation only before training and at the end
    checkpoint = load_checkpoint(out / LAST_CHECKPOINT)
    assert checkpoint["epoch"] == EPOCHS
    assert checkpoint["scheduler"]["last_epoch"] == EPOCHS  # one step per epoch, none repeated
    # AP rose, so the last epoch is the best one and --export (from best) exported it.
    assert checkpoint["best"] == {"epoch": EPOCHS, "AP": history[-1]["val"]["AP"]}
    assert load_checkpoint(out / BEST_CHECKPOINT)["epoch"] == EPOCHS


@on_shared_data
def test_overfitting_two_images_drives_the_loss_down_and_finds_their_people(overfit_run):
    out, _ = overfit_run
    history = json.loads((out / HISTORY_FILE).read_text())
    first, last = history[1]["train"]["loss"], history[-1]["train"]["loss"]
    print(f"overfit loss {first:.4f} -> {last:.4f} ({first / last:.1f}x); "
          f"AP {history[0]['val']['AP']:.3f} -> {history[-1]['val']['AP']:.3f}")
    assert first / last >= 10
    # Decoded poses land on the annotated keypoints: OKS AP on the two images rises from 0 to
    # about 0.4 (measured 0.39; its people are 15-45 px tall at this 129 px input, 1-3 cells,
    # so OKS is strict with them).
    assert history[-1]["val"]["AP"] >= 0.3
    assert history[-1]["val"]["AP"] > history[0]["val"]["AP"]


@on_shared_data
def test_export_runs_in_the_app_engine_like_the_checkpoint(overfit_run):
    from models.train.evaluation import TorchEngine
    from models.train.trainer import model_from_checkpoint
    from pose_app.inference.engine import PoseEngine
    from pose_app.io.sources import read_image

    out, exported = overfit_run
    engine = PoseEngine(model=exported, provider="cpu")
    assert engine.info.name == "overfit" and engine.info.output_stride == 16
    assert engine.info.width_multiplier == 0.5
    frame = read_image(IMAGES / json.loads(ANN.read_text())["images"][0]["file_name"])
    app_output = engine.infer(frame, resolution=129)

    model = model_from_checkpoint(load_checkpoint(out / LAST_CHECKPOINT))
    torch_output = TorchEngine(model.eval(), torch.device("cpu")).infer(frame, 129)

    assert app_output.heatmaps.shape == torch_output.heatmaps.shape
    assert app_output.heatmaps.shape[0] == 17
    np.testing.assert_allclose(app_output.heatmaps, torch_output.heatmaps, atol=1e-4)
    np.testing.assert_allclose(app_output.heads["offsets"], torch_output.heads["offsets"], atol=1e-2)


@on_shared_data
def test_best_checkpoint_keeps_the_pretrained_weights_when_training_ruins_them(tmp_path):
    """A learning rate of 1 wrecks the network in one step; best.pt and the default export
    (--export-from best) must then hold the untouched pretrained weights of epoch 0."""
    from models.convert import pretrained_posenet
    from models.train.evaluation import TorchEngine
    from pose_app.inference.engine import PoseEngine
    from pose_app.io.sources import read_image

    ann, images = COCO_DEV / "person_keypoints.json", COCO_DEV / "images"
    exported = tmp_path / "best.onnx"
    threads = torch.get_num_threads()
    try:
        assert main([
            "--data", str(images), "--ann", str(ann), "--max-images", "2", "--init", "posenet-050",
            "--input-size", "129", "--batch-size", "2", "--lr", "1", "--no-augment", "--epochs", "1",
            "--device", "cpu", "--threads", "1", "--val-ann", str(ann), "--val-data", str(images),
            "--val-max-images", "2", "--out", str(tmp_path), "--export", str(exported),
        ]) == 0
    finally:
        torch.set_num_threads(threads)
    history = json.loads((tmp_path / HISTORY_FILE).read_text())
    before, after = history[0]["val"]["AP"], history[1]["val"]["AP"]
    assert before > 0.05 and after < before  # measured 0.10 before training
    assert load_checkpoint(tmp_path / LAST_CHECKPOINT)["best"] == {"epoch": 0, "AP": before}

    pretrained = pretrained_posenet("posenet-050").eval()
    best = load_checkpoint(tmp_path / BEST_CHECKPOINT)
    assert best["epoch"] == 0
    for name, weight in pretrained.state_dict().items():
        torch.testing.assert_close(best["model"][name], weight)
    frame = read_image(images / json.loads(ann.read_text())["images"][0]["file_name"])
    app_output = PoseEngine(model=exported, provider="cpu").infer(frame, resolution=129)
    np.testing.assert_allclose(
        app_output.heatmaps, TorchEngine(pretrained, torch.device("cpu")).infer(frame, 129).heatmaps, atol=1e-4
    )


def test_exporting_the_best_epoch_without_validation_fails_before_training(tmp_path, capsys, labelled_stills):
    args = ["--data", str(labelled_stills.images), "--ann", str(labelled_stills.annotations),
            "--out", str(tmp_path), "--export", str(tmp_path / "m.onnx")]
    assert main(args) == 2
    assert "--export-from best needs a validation set" in capsys.readouterr().err
    assert not (tmp_path / LAST_CHECKPOINT).exists()


def test_val_every_below_one_is_rejected_up_front(tmp_path, capsys, labelled_stills):
    args = ["--data", str(labelled_stills.images), "--ann", str(labelled_stills.annotations),
            "--val-ann", str(labelled_stills.annotations), "--val-every", "0", "--out", str(tmp_path)]
    assert main(args) == 2
    assert "--val-every must be >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / LAST_CHECKPOINT).exists()


@on_shared_data
def test_resume_warns_about_changed_settings_it_ignores(overfit_run, capsys):
    out, _ = overfit_run
    threads = torch.get_num_threads()
    try:
        # All epochs are done, so this only rebuilds the run and exits.
        assert main([*overfit_args(out, EPOCHS), "--resume", "--lr", "5e-3", "--batch-size", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    err = capsys.readouterr().err
    assert "ignoring --batch-size, --lr" in err
    checkpoint = load_checkpoint(out / LAST_CHECKPOINT)
    assert checkpoint["train_config"]["lr"] == 1e-3 and checkpoint["train_config"]["batch_size"] == 2


def test_an_empty_scaler_state_from_a_cpu_run_leaves_an_enabled_scaler_fresh():
    from models.train.trainer import restore_scaler

    cpu_state = torch.amp.GradScaler("cuda", enabled=False).state_dict()
    assert cpu_state == {}
    enabled = torch.amp.GradScaler("cpu", enabled=True, init_scale=2.0**16)
    restore_scaler(enabled, cpu_state)  # loading {} directly raises "The source state dict is empty"
    assert enabled.state_dict()["scale"] == 2.0**16
    saved = torch.amp.GradScaler("cpu", enabled=True, init_scale=8.0).state_dict()
    restore_scaler(enabled, saved)
    assert enabled.state_dict()["scale"] == 8.0


def test_a_resumed_epoch_draws_the_augmentation_of_an_uninterrupted_run(tmp_path, labelled_stills):
    """Epoch 2's augmented batches are the same whether epoch 1 ran in this process or not."""
    from models.train.trainer import TrainConfig, Trainer

    config = TrainConfig(
        data=str(labelled_stills.images), ann=str(labelled_stills.annotations), out=str(tmp_path),
        init="scratch", width=0.5, epochs=2, batch_size=2, input_size=129, max_images=2,
    )

    def epoch_images(trainer) -> list:
        """The augmented input batches of the next epoch (no optimiser step is taken)."""
        batches = []
        trainer.train_step = lambda batch: (batches.append(batch["image"]), {"loss": 0.0})[1]
        trainer.train_epoch()
        trainer.epoch += 1
        return batches

    uninterrupted = Trainer(config, torch.device("cpu"))
    first = epoch_images(uninterrupted)
    second = epoch_images(uninterrupted)
    resumed = Trainer(config, torch.device("cpu"))
    resumed.epoch = 1  # as after --resume from epoch 1's checkpoint
    replayed = epoch_images(resumed)
    assert not torch.equal(first[0], second[0])  # epochs draw different augmentations
    for expected, got in zip(second, replayed):
        torch.testing.assert_close(got, expected)
