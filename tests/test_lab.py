"""The CNN lab's computations (pose_app/explain/lab.py) and pictures (lab_view.py): a known
kernel on a synthetic image, the shape rules of stride and padding, pooling by hand, the real
model's first-layer filters and heatmap head, the top patches of a channel on frames built here,
and occlusion sensitivity on the shipped photo with the real network."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
from media import photo, photo_labels

from pose_app.core.poses import FramePoses
from pose_app.core.skeleton import KEYPOINT_INDEX
from pose_app.errors import PoseAppError
from pose_app.explain.compose import PanelRequest
from pose_app.explain.lab import (
    LAB_PARTS,
    TOUR,
    LabFilter,
    LabRequest,
    closest_filter,
    convolve,
    head_sum,
    head_weights,
    learnt_filters,
    network_input,
    output_size,
    pool,
    preset_filter,
    resized_pattern,
)
from pose_app.explain.lab_probes import TOP_PATCHES, TopPatches, crop_box, drop_at, occlusion_sensitivity
from pose_app.explain.lab_view import LabSession
from pose_app.explain.network import receptive_field_box
from pose_app.inference.engine import PoseEngine
from pose_app.inference.families.posenet import input_transform, letterbox
from pose_app.inference.model_info import FeatureBlock


@pytest.fixture(scope="module")
def engines():
    cache = {}

    def get(name: str) -> PoseEngine:
        if name not in cache:
            cache[name] = PoseEngine(name, provider="cpu", threads=2)
        return cache[name]

    return get


# --- your own filter ----------------------------------------------------------------------------

VERTICAL_EDGE = np.array([[-1, 0, 1]] * 3, np.float32)


def step_image(height: int = 6, width: int = 8, edge: int = 4) -> np.ndarray:
    """0 left of column `edge`, 1 from it on."""
    image = np.zeros((height, width), np.float32)
    image[:, edge:] = 1.0
    return image


def test_a_vertical_edge_kernel_on_a_step_gives_the_known_map():
    values = convolve(step_image(), VERTICAL_EDGE, stride=1, padding="same")
    assert values.shape == (6, 8)
    # Inner rows: the 3x3 window straddling the edge (columns 3 and 4) sees 3 ones on its right
    # and none (column 3) or 3 (column 4) ... on its left: 3 - 0 = 3 at column 3, 3 - 0 = 3 at 4.
    expected_row = np.array([0, 0, 0, 3, 3, 0, 0, -3], np.float32)  # the last column: zeros padded right
    for row in range(1, 5):
        np.testing.assert_allclose(values[row], expected_row)
    # Top and bottom rows: one row of the window is zero padding, so 2 of 3 rows count.
    np.testing.assert_allclose(values[0], expected_row * 2 / 3)
    np.testing.assert_allclose(values[5], expected_row * 2 / 3)
    # ReLU keeps the positive answers only: the padding's -3 on the right edge goes.
    relu = convolve(step_image(), VERTICAL_EDGE, relu=True)
    np.testing.assert_allclose(relu, np.maximum(values, 0))
    assert values.min() < 0 and relu.min() == 0
    # No padding: only windows wholly inside the image, 8 - 3 + 1 = 6 columns, 4 rows.
    valid = convolve(step_image(), VERTICAL_EDGE, padding="valid")
    np.testing.assert_allclose(valid, np.tile([0, 0, 3, 3, 0, 0], (4, 1)))


@pytest.mark.parametrize(("size", "kernel", "stride", "padding", "expected"), [
    (9, 3, 1, "same", 9), (9, 3, 1, "valid", 7), (9, 3, 2, "same", 5), (9, 3, 2, "valid", 4),
    (10, 3, 2, "same", 5), (10, 5, 1, "valid", 6), (10, 5, 2, "valid", 3), (11, 5, 2, "same", 6),
])
def test_stride_and_padding_shape_rules(size, kernel, stride, padding, expected):
    assert output_size(size, kernel, stride, padding) == expected
    rng = np.random.default_rng(size * 100 + kernel * 10 + stride)
    image = rng.random((size, size + 3, 3), dtype=np.float32)
    weights = rng.standard_normal((3, kernel, kernel)).astype(np.float32)
    values = convolve(image, weights, stride, padding)
    assert values.shape == (expected, output_size(size + 3, kernel, stride, padding))
    # Stride 2 is stride 1 read every other cell (from the first whole window when unpadded).
    dense = convolve(image, weights, 1, padding)
    np.testing.assert_allclose(values, dense[::stride, ::stride][:expected], rtol=1e-5, atol=1e-5)
    # Cell (i, j) is the sum of kernel x the (zero padded) patch at its position.
    pad = kernel // 2 if padding == "same" else 0
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
    i, j = expected - 1, 1
    patch = padded[i * stride:i * stride + kernel, j * stride:j * stride + kernel]
    assert values[i, j] == pytest.approx(float((patch.transpose(2, 0, 1) * weights).sum()), abs=1e-4)


def test_presets_and_colour_weights():
    sobel = preset_filter("Sobel (vertical edges)")
    np.testing.assert_allclose(sobel.weights()[0], np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 3, atol=1e-4)
    assert preset_filter("Sobel (horizontal edges)", 5).weights().shape == (3, 5, 5)
    np.testing.assert_allclose(preset_filter("blur", 5).weights().sum(), 1.0, atol=1e-3)
    # The red detector answers red, not white or green (the image as the network reads it: -1..1).
    red = preset_filter("red detector")
    colours = np.zeros((1, 3, 3), np.uint8)
    colours[0] = [(0, 0, 255), (255, 255, 255), (0, 255, 0)]  # BGR: red, white, green
    image = network_input(np.repeat(np.repeat(colours, 5, axis=0), 5, axis=1))
    values = convolve(image, red.weights(), padding="valid")
    assert values[1, 2] > 1.5 and abs(values[1, 7]) < 1e-5 and values[1, 12] < 0
    with pytest.raises(PoseAppError, match="unknown filter preset"):
        preset_filter("emboss")
    with pytest.raises(PoseAppError, match="3 or 5"):
        preset_filter("blur", 7)


def test_pooling_matches_a_hand_computation():
    values = np.array([[1, 2, 0, 5, 9],
                       [3, 4, 1, 1, 9],
                       [0, 0, 6, 2, 9],
                       [7, 1, 2, 8, 9]], np.float32)
    # 2x2 windows two cells apart; the odd fifth column has no whole window and is left out.
    np.testing.assert_array_equal(pool(values, 2, 2, "max"), [[4, 5], [7, 8]])
    np.testing.assert_allclose(pool(values, 2, 2, "average"), [[2.5, 1.75], [2.0, 4.5]])
    assert pool(values, 2, 1, "max").shape == (3, 4)
    with pytest.raises(PoseAppError, match="unknown pooling"):
        pool(values, how="median")


def edge_response(engine: PoseEngine, channel: int, horizontal: bool, dark_first: bool) -> tuple[float, float]:
    """(mean activation of first-conv `channel` along a step edge, its largest mean over the two
    flat sides), measured with the real network on a grey step image."""
    dark, bright = 60, 200
    image = np.full((129, 129, 3), bright if dark_first else dark, np.uint8)
    first = (slice(0, 64), slice(None)) if horizontal else (slice(None), slice(0, 64))
    image[first] = dark if dark_first else bright
    blob, _ = letterbox(image, 129, engine.info.output_stride)
    maps = engine.run(blob, ["feature_0"])[4][0, channel]  # stride 2: input pixel 64 is cell 32
    line = maps[31:33, 8:-8] if horizontal else maps[8:-8, 31:33]
    side_a = maps[8:24, 8:-8] if horizontal else maps[8:-8, 8:24]
    side_b = maps[40:56, 8:-8] if horizontal else maps[8:-8, 40:56]
    return float(line.max(axis=0 if horizontal else 1).mean()), max(float(side_a.mean()), float(side_b.mean()))


@pytest.mark.parametrize(("model", "preset"), [
    ("posenet-075", "Sobel (horizontal edges)"), ("posenet-075-int8", "Sobel (horizontal edges)"),
    ("posenet-050", "Sobel (horizontal edges)"), ("posenet-050", "Sobel (vertical edges)"),
])
def test_the_closest_first_layer_filter_of_a_sobel_kernel_is_an_edge_filter_of_the_real_model(engines, model, preset):
    engine = engines(model)
    filters = learnt_filters(engine)
    closest = closest_filter(preset_filter(preset).weights(), filters)
    assert closest is not None and abs(closest.cosine) > 0.4
    # An edge filter: the network's own map of it (feature_0) is stronger along a step edge of
    # the kernel's orientation than on either flat side (the polarity its weights' sign says).
    along, flat = edge_response(engine, closest.index, "horizontal" in preset, dark_first=closest.cosine > 0)
    assert along > flat + 1.0, (closest, along, flat)
    # A 5x5 version of the same kernel finds the same filter.
    assert closest_filter(preset_filter(preset, 5).weights(), filters).index == closest.index


def test_closest_filter_skips_filters_that_look_at_nothing():
    filters = np.zeros((3, 3, 3, 3), np.float32)
    filters[0] = preset_filter("blur").weights()  # alive, cosine 0 with a vertical edge
    filters[1] = 1e-6 * preset_filter("vertical edge").weights()  # dead (a millionth of the others), cosine 1
    filters[2] = preset_filter("Sobel (vertical edges)").weights()  # alive, cosine 8 / sqrt(72) = 0.943
    closest = closest_filter(preset_filter("vertical edge").weights(), filters)
    assert closest.index == 2
    assert closest.cosine == pytest.approx(8 / np.sqrt(72), abs=1e-3)
    assert closest_filter(np.zeros((3, 3, 3), np.float32), filters) is None


# --- the heatmap head as a fully connected layer ------------------------------------------------


@pytest.mark.parametrize(("model", "tolerance"), [("posenet-075", 1e-5), ("posenet-075-int8", 0.02)])
def test_the_heatmap_head_is_a_weighted_sum_over_the_last_blocks_channels(engines, model, tolerance):
    engine = engines(model)
    head = head_weights(engine)
    last = engine.info.feature_blocks[-1]
    assert head.feature == last.name and head.sigmoid and head.weights.shape == (17, last.channels)
    blob, _ = letterbox(photo(), 257, engine.info.output_stride)
    outputs = engine.run(blob, [head.feature])
    heatmaps, features = outputs[0][0], outputs[4][0]
    nose = np.unravel_index(int(heatmaps[0].argmax()), heatmaps[0].shape)
    for keypoint, cell in ((0, nose), (KEYPOINT_INDEX["left_wrist"], (3, 12)), (16, (0, 0))):
        total = head_sum(head, features, keypoint, tuple(int(a) for a in cell))
        assert total.value == pytest.approx(float(heatmaps[keypoint][cell]), abs=tolerance)
        assert total.logit == pytest.approx(float(total.terms.sum()) + total.bias, abs=1e-4)
    with pytest.raises(PoseAppError, match="not a head"):
        head_weights(engine, "feature_3")


# --- what a channel looks for -------------------------------------------------------------------

BLOCK = FeatureBlock("feature_x", 5, 2, 8, 1, 24)  # 2 channels, stride 8, 24 px receptive field


def built_frame(colour: tuple[int, int, int], square: tuple[int, int]) -> np.ndarray:
    """A grey 128x96 frame with a 24 px square of `colour` centred at input pixel `square`."""
    frame = np.full((96, 128, 3), 100, np.uint8)
    x, y = square
    frame[y - 12:y + 12, x - 12:x + 12] = colour
    return frame


def test_the_top_patches_of_a_channel_are_its_largest_activations_on_built_frames():
    transform = input_transform(128, 96, 129, 8)  # 129x97 input: the frame at scale 1 (plus padding)
    top = TopPatches(BLOCK)
    rng = np.random.default_rng(3)
    # 14 frames, each with one coloured square at its own spot (cells 3 apart: 24 px receptive
    # fields that do not overlap) and channel 0 excited there by a value of its own.
    spots = [(i, j) for i in (2, 5, 8) for j in (2, 5, 8, 11, 14)]  # whole squares inside the frame
    chosen = rng.permutation(len(spots))[:14]
    strengths = rng.permutation(14) + 1.0
    shown = []
    for frame_index, (spot, value) in enumerate(zip(chosen, strengths)):
        cell = spots[spot]
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        image = built_frame(colour, (cell[1] * 8, cell[0] * 8))
        values = np.zeros((2, 13, 17), np.float32)
        values[0][cell] = value
        values[0, 0, 0] = 0.5  # weaker elsewhere on the same frame: only the strongest cell counts
        top.update(image, values, transform, frame_index)  # channel 1 stays 0: never excited
        shown.append((value, receptive_field_box(BLOCK, cell, transform), colour, frame_index))
    kept = top.channels()[0]
    assert len(kept) == TOP_PATCHES and top.channels()[1] == () and top.frames == 14
    expected = sorted(shown, key=lambda s: -s[0])[:TOP_PATCHES]
    assert [p.value for p in kept] == [e[0] for e in expected]
    for patch, (value, box, colour, frame) in zip(kept, expected):
        assert patch.box == pytest.approx(box) and patch.frame == frame
        # The patch is the cell's receptive field: the coloured square fills it.
        assert np.abs(patch.image[4:-4, 4:-4].reshape(-1, 3).mean(axis=0) - colour).max() < 3


def test_a_still_scene_does_not_fill_a_channel_with_copies_of_one_spot():
    transform = input_transform(128, 96, 129, 8)
    top = TopPatches(BLOCK)
    values = np.zeros((2, 13, 17), np.float32)
    values[0, 5, 7] = 2.0
    for _ in range(5):
        top.update(built_frame((0, 0, 255), (56, 40)), values, transform)
    assert len(top.channels()[0]) == 1
    values[0, 5, 7] = 3.0  # stronger at the same spot: replaces it
    top.update(built_frame((0, 255, 0), (56, 40)), values, transform)
    assert [p.value for p in top.channels()[0]] == [3.0]


def test_top_patches_on_real_activations_are_where_each_channel_peaked(engines):
    engine = engines("posenet-075-int8")
    block = next(b for b in engine.info.feature_blocks if b.stride == 8)
    top = TopPatches(block)
    frames = []
    for n, (dx, scale) in enumerate(((0, 1.0), (60, 0.8), (-40, 0.6))):
        canvas = np.full((480, 640, 3), 120, np.uint8)
        person = cv2.resize(photo(), None, fx=scale, fy=scale)
        x0 = 60 + dx + 40
        canvas[10:10 + person.shape[0], x0:x0 + person.shape[1]] = person
        output = engine.infer(canvas, 257, [block.name])
        top.update(canvas, output.features[block.name], output.transform, n)
        frames.append((canvas, output))
    for channel in (0, 7, 31):
        for patch in top.channels()[channel]:
            canvas, output = frames[patch.frame]
            values = output.features[block.name][channel]
            cell = np.unravel_index(int(values.argmax()), values.shape)
            assert patch.value == pytest.approx(float(values.max()))
            assert patch.box == pytest.approx(receptive_field_box(block, cell, output.transform))
            np.testing.assert_array_equal(patch.image, crop_box(canvas, patch.box))


# --- which pixels matter ------------------------------------------------------------------------


def test_occluding_a_keypoint_lowers_its_score_more_than_occluding_far_away(engines):
    engine = engines("posenet-075-int8")
    image = photo()
    labels, _ = photo_labels()
    progress = []
    for name in ("nose", "left_shoulder"):
        keypoint = KEYPOINT_INDEX[name]
        occlusion = occlusion_sensitivity(engine, image, keypoint, 257, progress=lambda d, t: progress.append((d, t)))
        point = labels[keypoint, :2]
        height, width = image.shape[:2]
        corners = np.array([(10, 10), (width - 10, 10), (10, height - 10), (width - 10, height - 10)], np.float64)
        far_corner = corners[np.argmax(np.linalg.norm(corners - point, axis=1))]
        near, far = drop_at(occlusion, point), drop_at(occlusion, far_corner)
        assert occlusion.baseline > 0.5 and near > 0.2 and near > far + 0.2, (name, near, far)
    assert progress[-1][0] == progress[-1][1] and len(progress) > 3


def test_occlusion_can_be_cancelled(engines):
    cancelled = threading.Event()
    cancelled.set()
    assert occlusion_sensitivity(engines("posenet-075-int8"), photo(), 0, 129, cancelled=cancelled) is None


# --- the lab's views and the tour ---------------------------------------------------------------


def test_each_part_asks_for_what_it_reads_and_draws_a_picture(engines):
    engine = engines("posenet-075-int8")
    blocks = tuple(block.name for block in engine.info.feature_blocks)
    session = LabSession()
    for part in LAB_PARTS:
        for lab in (LabRequest(part=part, block="feature_5"),
                    LabRequest(part=part, block="feature_5", filter=preset_filter("sharpen", 5), stride=2,
                               padding="valid", relu=True, pooling_channel_strongest=False, channel=3, keypoint=9)):
            request = PanelRequest(mode="lab", blocks=blocks, lab=lab, width=300)
            expected = {"filter": ("feature_0",), "pool": ("feature_5",), "patches": ("feature_5",),
                        "fc": (blocks[-1],), "occlusion": ()}[part]
            assert request.features == expected
            view = session.view(engine, photo(), poses_for(engine, request.features), request)
            assert view.mode == "lab" and view.picture is not None and view.picture.shape[1] <= 300
            assert view.caption
    lab = LabRequest(filter=LabFilter(tuple(range(25)), (1, 0, 0)), stride=2, padding="valid")
    request = PanelRequest(mode="lab", blocks=blocks, lab=lab, width=362)  # the frame at 180 px beside its map
    caption = session.view(engine, photo(), poses_for(engine, ("feature_0",)), request).caption
    assert "5×5 filter" in caption and f"180×180 in → {output_size(180, 5, 2, 'valid')}×88 out" in caption


@pytest.mark.parametrize(("box", "columns"), [
    ((362, 0), 2),  # no height known: the 2 x 2 grid at the width, as before
    ((362, 300), 2),  # the dock's usual box
    ((362, 1400), 1),  # a tall narrow dock: one column, each picture the whole width
    ((380, 60), 4),  # a wide low one: one row
])
def test_the_filter_pictures_fill_the_docks_box(engines, box, columns):
    """The filter view's four pictures are laid out as fills the dock's picture box best: the
    picture is as wide as asked, and fitted into the box (keeping its aspect) its pictures are
    larger than in any other layout."""
    engine = engines("posenet-075-int8")
    blocks = tuple(block.name for block in engine.info.feature_blocks)
    width, height = box
    request = PanelRequest(mode="lab", blocks=blocks, width=width, height=height)
    view = LabSession().view(engine, photo(), poses_for(engine, ("feature_0",)), request)
    half = (width - 2 * (columns - 1)) // columns  # the photo is square: each picture half x half
    assert f"{half}×{half} in" in view.caption
    assert view.picture.shape[:2] == (4 // columns * (half + 2) - 2, columns * (half + 2) - 2)
    assert abs(view.picture.shape[1] - width) < columns
    if height:
        fitted = min(width / view.picture.shape[1], height / view.picture.shape[0]) * half
        for other in {1, 2, 4} - {columns}:
            side = min((width - 2 * (other - 1)) / other, (height - 2 * (4 // other - 1)) / (4 // other))
            assert fitted > side - 1
    # The network's map is the third picture: in the grid's next row, or right in a row.
    x, y = ((2 * (half + 2), 0) if columns == 4 else (0, half + 2) if columns == 2 else (0, 2 * (half + 2)))
    assert "network's map" in view.caption or "network's first-layer filter" in view.caption
    assert np.ptp(view.picture[y + 20:y + half - 2, x + 2:x + half - 2]) > 0


def poses_for(engine: PoseEngine, features: tuple[str, ...]) -> FramePoses:
    """The photo's full-frame pass with `features`, as the pipeline hands it to the dock."""
    output = engine.infer(photo(), 257, features)
    return FramePoses(np.zeros((0, 17, 3), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64),
                      output.heatmaps, output.features, output.transform)


def test_the_tour_walks_filter_map_relu_stride_pooling_deeper_heads_decoding():
    assert [step.view for step in TOUR] == ["lab"] * 5 + ["features", "lab", "walk"]
    assert [step.part for step in TOUR[:5]] == ["filter"] * 4 + ["pool"]
    assert [step.relu for step in TOUR[:4]] == [False, False, True, True] and TOUR[3].stride == 2
    assert TOUR[6].part == "fc"
    for step in TOUR:
        preset_filter(step.preset)  # every step's filter exists
        assert len(step.caption) > 80


def test_a_typed_pattern_stays_centred_when_the_kernel_grows_or_shrinks():
    three = tuple(float(v) for v in range(1, 10))
    five = np.asarray(resized_pattern(three, 5)).reshape(5, 5)
    np.testing.assert_array_equal(five[1:4, 1:4].ravel(), three)
    assert five.sum() == sum(three)
    assert resized_pattern(tuple(five.ravel()), 3) == three


@pytest.mark.parametrize("background", [255, 0, 128])
def test_labels_are_readable_on_any_picture_and_their_outline_stays_on_the_text(background):
    from pose_app.explain.lab_view import outlined_label

    picture = np.full((30, 420, 3), background, np.uint8)
    text = "network's map of feature_13, channel 20 of 384"
    outlined_label(picture, text, (4, 18))
    gray = picture[..., 1].astype(int)
    glyphs, outline = gray >= 150, gray <= 40
    # Light text and a dark outline (and plate) side by side, whatever lies under them.
    assert glyphs.sum() > 100 and outline.sum() > 100
    # Nothing is drawn past the text's end (and the plate's 2 px): drawn thick, OpenCV's outline
    # drifted 20 px past this text's end, a second, smeared copy of it.
    text_right = np.nonzero(glyphs.any(axis=0))[0].max()
    assert np.nonzero((gray != background).any(axis=0))[0].max() <= text_right + 4
