"""Engine: model loading, providers, preprocessing geometry and real inference."""

import cv2
import numpy as np
import pytest

from pose_app.core.skeleton import KEYPOINT_INDEX
from pose_app.errors import PoseAppError
from pose_app.inference.decode import DecodeSettings
from pose_app.inference.engine import PoseEngine, available_providers
from pose_app.inference.families.posenet import HEAD_OUTPUTS, PAD_VALUE, input_transform, snap_to_valid_size
from pose_app.inference.preprocess import preprocess
from pose_app.inference.estimator import PoseEstimator


def test_valid_sizes_are_k_times_stride_plus_one():
    assert snap_to_valid_size(353, 16) == 353
    assert snap_to_valid_size(360, 16) == 353
    assert snap_to_valid_size(362, 16) == 369
    assert snap_to_valid_size(198.6, 16, round_up=True) == 209
    assert snap_to_valid_size(3, 16) == 17
    # exactly half-way between two valid sizes always rounds up
    assert snap_to_valid_size(361, 16) == 369 and snap_to_valid_size(377, 16) == 385


@pytest.mark.parametrize(("width", "height"), [(768, 432), (432, 768), (640, 640), (1920, 1080), (101, 37)])
def test_transform_keeps_aspect_and_pads_to_valid_sizes(width, height):
    transform = input_transform(width, height, 353, 16)
    resized_w, resized_h = transform.resized_size
    input_w, input_h = transform.input_size
    assert max(resized_w, resized_h) == 353
    assert abs(resized_w / resized_h - width / height) < 2.0 / min(resized_w, resized_h)
    assert (input_w - 1) % 16 == 0 and (input_h - 1) % 16 == 0
    assert resized_w <= input_w < resized_w + 16 and resized_h <= input_h < resized_h + 16


def test_coordinates_round_trip_and_hit_known_geometry():
    transform = input_transform(1920, 1080, 513, 16)
    points = np.array([[0.0, 0.0], [1919.0, 1079.0], [960.3, 17.25]])
    np.testing.assert_allclose(transform.to_frame(transform.to_input(points)), points, atol=1e-3)
    # Pixel centres: input pixel 0 covers frame pixels [0, s) with s = frame / resized size, so
    # its centre is at s/2 - 0.5. 1080 * 513 / 1920 = 288.6 rounds to 289 resized rows.
    assert transform.resized_size == (513, 289)
    scale = np.array([1920 / 513, 1080 / 289])
    np.testing.assert_allclose(transform.to_frame(np.array([0.0, 0.0])), 0.5 * scale - 0.5, atol=1e-4)


def test_known_geometry_through_real_resize():
    """A bright dot drawn in the frame appears where to_input says after preprocess."""
    frame = np.zeros((432, 768, 3), np.uint8)
    cv2.circle(frame, (600, 100), 6, (255, 255, 255), -1)
    transform = input_transform(768, 432, 353, 16)
    blob = preprocess(frame, transform, PAD_VALUE)
    assert blob.shape == (1, 3, transform.input_size[1], transform.input_size[0])
    brightness = blob[0, 0, : transform.resized_size[1], : transform.resized_size[0]]
    ys, xs = np.nonzero(brightness > 200)
    centre = np.array([xs.mean(), ys.mean()])
    np.testing.assert_allclose(centre, transform.to_input(np.array([600.0, 100.0])), atol=0.5)
    # padding is mid-grey (0 after the graph's normalisation)
    assert np.all(blob[0, :, transform.resized_size[1]:, :] == 127.5)


def test_gray_and_bgra_frames_are_accepted(engine):
    bgr = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    for frame in (gray, gray[..., None], bgra):
        output = engine.infer(frame, 161)
        assert output.heatmaps.shape == (17, 9, 11)  # 161x121 resized, padded to 161x129
    np.testing.assert_allclose(engine.infer(bgra, 161).heatmaps, engine.infer(bgr, 161).heatmaps, atol=1e-6)


def test_metadata_and_feature_outputs(engine):
    assert engine.provider == "cpu"
    assert engine.info.output_stride == 16 and engine.info.width_multiplier == 0.75
    assert [b.name for b in engine.info.feature_blocks][:2] == ["feature_0", "feature_1"]
    frame = np.zeros((240, 320, 3), np.uint8)
    plain = engine.infer(frame, 257)
    assert plain.features == {}
    # Without a feature request the session that runs has no feature outputs at all, so the
    # hidden feature panel costs no computation.
    assert [o.name for o in engine._session_for(()).get_outputs()] == list(HEAD_OUTPUTS)
    # A feature request runs a session with just that feature added, not all fourteen.
    session = engine._session_for(("feature_3",))
    assert [o.name for o in session.get_outputs()] == [*HEAD_OUTPUTS, "feature_3"]
    assert engine._session_for(("feature_3",)) is session
    with_features = engine.infer(frame, 257, features=("feature_13", "feature_3"))
    block13 = next(b for b in engine.info.feature_blocks if b.name == "feature_13")
    assert with_features.features["feature_13"].shape == (block13.channels, 13, 17)
    np.testing.assert_array_equal(plain.heatmaps, with_features.heatmaps)
    with pytest.raises(PoseAppError, match="no feature output"):
        engine.infer(frame, 257, features=("feature_99",))


def test_unavailable_provider_is_an_error_not_a_fallback():
    missing = [p for p in ("cuda", "tensorrt", "coreml", "directml", "openvino") if p not in available_providers()]
    assert missing, "this test needs a provider the installed onnxruntime lacks"
    with pytest.raises(PoseAppError, match=f"'{missing[0]}' is not available"):
        PoseEngine(provider=missing[0])
    with pytest.raises(PoseAppError, match="unknown provider"):
        PoseEngine(provider="quantum")


def test_auto_says_which_provider_it_skipped(monkeypatch):
    """`auto` on a machine whose CUDA provider fails: it runs on the CPU and says why."""
    import pose_app.inference.engine as engine_module

    monkeypatch.setattr(engine_module, "available_providers", lambda: ["cuda", "cpu"])
    real_open = engine_module._open_session

    def open_without_cuda(model, path, provider, threads):
        if provider == "cuda":
            raise PoseAppError(f"execution provider '{provider}' failed to initialise for {path}")
        return real_open(model, path, provider, threads)

    monkeypatch.setattr(engine_module, "_open_session", open_without_cuda)
    engine = PoseEngine(provider="auto")
    assert engine.provider == "cpu"
    assert engine.provider_label.startswith("cpu (execution provider 'cuda' failed to initialise")
    assert PoseEngine(provider="cpu").provider_label == "cpu"


@pytest.mark.parametrize("content", [b"", b"not an onnx model at all" * 10])
def test_invalid_model_file_is_a_one_line_error(tmp_path, content):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(content)
    with pytest.raises(PoseAppError, match="cannot load model") as error:
        PoseEngine(bad)
    assert "\n" not in str(error.value)
    with pytest.raises(PoseAppError, match="model not found"):
        PoseEngine(tmp_path / "missing.onnx")


def first_frame(clip) -> np.ndarray:
    capture = cv2.VideoCapture(str(clip))
    ok, frame = capture.read()
    capture.release()
    assert ok
    return frame


def test_estimator_finds_the_walking_person_in_frame_pixels(engine, walk_clip):
    frame = first_frame(walk_clip)
    poses = PoseEstimator(engine, 353, DecodeSettings()).estimate(frame)
    assert len(poses) >= 1
    best = poses.keypoints[0]
    confident = best[best[:, 2] > 0.5]
    assert len(confident) >= 8
    assert np.all((confident[:, 0] >= 0) & (confident[:, 0] < 640))
    assert np.all((confident[:, 1] >= 0) & (confident[:, 1] < 480))
    # In frame pixels, not the network input's: on the walker's photo, and her eyes and nose
    # within a few pixels of where the hand labels put them (the photo is 300 px here).
    assert walk_clip.actor_of(0, best) == 0
    labels = walk_clip.actors[0].keypoints(0)
    face = [KEYPOINT_INDEX[name] for name in ("nose", "left_eye", "right_eye")]
    assert np.all(best[face, 2] > 0.5)
    assert np.all(np.linalg.norm(best[face, :2] - labels[face, :2], axis=1) < 8.0)
    # The same frame at another resolution puts the keypoints within a few pixels.
    again = PoseEstimator(engine, 513, DecodeSettings()).estimate(frame).keypoints[0]
    both = (best[:, 2] > 0.5) & (again[:, 2] > 0.5)
    assert np.median(np.linalg.norm(best[both, :2] - again[both, :2], axis=1)) < 8.0


def test_mirrored_input_keeps_anatomical_labels(engine, walk_clip):
    frame = first_frame(walk_clip)
    plain = PoseEstimator(engine, 353).estimate(frame).keypoints[0]
    mirrored = PoseEstimator(engine, 353, mirrored_input=True).estimate(cv2.flip(frame, 1)).keypoints[0]
    # Unflip the mirrored result's x: the same body part must come back under the same label.
    mirrored_x_back = 639 - mirrored[:, 0]
    sure = (plain[:, 2] > 0.6) & (mirrored[:, 2] > 0.6)
    assert sure.sum() >= 6
    assert np.median(np.abs(mirrored_x_back[sure] - plain[sure, 0])) < 10.0
