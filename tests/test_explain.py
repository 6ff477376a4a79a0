"""The network made visible (pose_app/explain/network.py, pose_app/explain/decode_walk.py): layer cards against the
real model's outputs, cell <-> frame geometry on a letterboxed frame, heads as arrows, block
statistics, first-conv filters, image grids, and the decoding walk against the decoder."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from media import PHOTO
from synthetic_fields import STRIDE, duplicate_nose_fields, person_at, render_fields, uniform_scores

from pose_app.core.skeleton import KEYPOINT_INDEX, NUM_KEYPOINTS, PART_TREE_EDGES
from pose_app.draw.featuremaps import colorize, normalise_per_tile, view_to_cell_affine
from pose_app.errors import PoseAppError
from pose_app.explain.decode_walk import STEP_KINDS, decoding_walk
from pose_app.explain.network import (
    LayerCard,
    arrows_to_frame,
    block_statistics,
    cell_at_frame_point,
    cell_centre_in_frame,
    channel_grid,
    displacement_arrows,
    filter_tiles,
    first_conv_filters,
    first_conv_parameters,
    network_layers,
    offset_arrows,
    receptive_field_box,
)
from pose_app.inference.decode import DecodeSettings, decode_multiple_poses, decode_single_pose
from pose_app.inference.engine import PoseEngine
from pose_app.inference.families.posenet import HEAD_OUTPUTS, input_transform, letterbox
from pose_app.io.output_files import save_png
from pose_app.io.sources import read_image

NUM_EDGES = len(PART_TREE_EDGES)


@pytest.fixture(scope="module")
def engines():
    cache = {}

    def get(name: str) -> PoseEngine:
        if name not in cache:
            cache[name] = PoseEngine(name, provider="cpu")
        return cache[name]

    return get


# --- network_layers -----------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["posenet-075", "posenet-075-s8"])
def test_layer_shapes_are_those_of_the_real_outputs(model, engines, group_image):
    engine = engines(model)
    names = [block.name for block in engine.info.feature_blocks]
    out = engine.infer(read_image(group_image.path), 353, features=names)
    height = {16: 209, 8: 201}[engine.info.output_stride]  # 198 rows padded to k * stride + 1
    assert out.transform.input_size == (353, height)  # letterboxed, not square
    cards = network_layers(engine.info, out.transform.input_size)
    assert [card.name for card in cards] == ["image", *names, "heatmaps", "offsets", "displacement_fwd", "displacement_bwd"]
    assert [card.kind for card in cards] == ["input", "conv"] + ["depthwise-separable"] * 13 + ["head"] * 4
    assert cards[0].shape == (3, height, 353)
    real = {**out.features, **out.heads}
    for card in cards[1:]:
        assert card.shape == real[card.name].shape, card.name
        assert card.caption and all(isinstance(c, str) for c in card.concepts)
    # Each 3x3 conv widens the receptive field by 2 * dilation * (output stride before it);
    # the metadata's figures agree with the layer strides and dilations.
    field, previous = 1, cards[0]
    for card in cards[1:15]:
        field += 2 * card.dilation * previous.output_stride
        assert card.receptive_field == field and card.output_stride == previous.output_stride * card.stride
        assert card.halves_resolution == (card.stride == 2) and card.kernel == 3
        previous = card
    assert [card.receptive_field for card in cards[1:6]] == [3, 7, 11, 19, 27]
    heads = cards[15:]
    assert all(h.output_stride == engine.info.output_stride and h.receptive_field == cards[14].receptive_field for h in heads)
    strides = [card.stride for card in cards[1:15]]
    if model == "posenet-075":
        assert strides == [2, 1, 2, 1, 2, 1, 2] + [1] * 7 and {c.dilation for c in cards[1:15]} == {1}
        assert "stride 2" in cards[7].caption
    else:  # stride 8: block 6 keeps stride 1 and the later depthwise convs dilate
        assert strides == [2, 1, 2, 1, 2, 1, 1] + [1] * 7
        assert [card.dilation for card in cards[1:15]] == [1] * 7 + [2] * 7
        assert "dilation 2" in cards[8].caption and "dilation" in cards[8].concepts


def test_receptive_field_bounds_what_one_input_pixel_changes(engines):
    # A pixel changed at (y0, x0) can only change cells whose receptive field holds it.
    engine = engines("posenet-075")
    rng = np.random.default_rng(0)
    blob = rng.uniform(0, 255, (1, 3, 129, 129)).astype(np.float32)
    y0, x0 = 64, 70
    changed = blob.copy()
    changed[0, :, y0, x0] = 255 - changed[0, :, y0, x0]
    names = ["feature_3", "feature_5"]
    before, after = engine.run(blob, names)[4:], engine.run(changed, names)[4:]
    cards = {card.name: card for card in network_layers(engine.info, (129, 129))}
    for name, a, b in zip(names, before, after):
        card = cards[name]
        rows, cols = np.nonzero(np.abs(a[0] - b[0]).max(axis=0) > 1e-4)
        assert len(rows) > 0
        half = (card.receptive_field - 1) / 2
        assert np.all(np.abs(rows * card.output_stride - y0) <= half)
        assert np.all(np.abs(cols * card.output_stride - x0) <= half)


# --- geometry -----------------------------------------------------------------------------------


def test_hot_cell_maps_to_its_frame_pixel_and_receptive_field_on_a_letterboxed_frame():
    transform = input_transform(640, 360, 353, 16)  # resized 353x199, padded to 353x209
    assert transform.resized_size == (353, 199) and transform.input_size == (353, 209)
    card = LayerCard("feature_9", "depthwise-separable", 3, 1, 16, 1, 384, (384, 14, 23), 155, False, "", ())
    activation = np.zeros(card.shape, np.float32)
    activation[7, 9, 13] = 5.0
    _, i, j = np.unravel_index(activation.argmax(), activation.shape)
    sx, sy = 640 / 353, 360 / 199
    x, y = cell_centre_in_frame(16, (i, j), transform)
    assert (x, y) == pytest.approx(((13 * 16 + 0.5) * sx - 0.5, (9 * 16 + 0.5) * sy - 0.5), abs=1e-3)
    # featuremaps' heatmap overlay puts the same frame pixel on the same cell.
    cell_xy = view_to_cell_affine(transform, (14, 23), 1.0) @ np.array([x, y, 1.0])
    assert cell_xy == pytest.approx([13, 9], abs=1e-4)
    assert cell_at_frame_point(16, (14, 23), (x, y), transform) == (9, 13)
    assert cell_at_frame_point(16, (14, 23), (x + 0.45 * 16 * sx, y - 0.45 * 16 * sy), transform) == (9, 13)
    assert cell_at_frame_point(16, (14, 23), (x + 0.55 * 16 * sx, y), transform) == (9, 14)
    # Outside the frame (the padding below it, or beyond its edges): no cell.
    assert cell_at_frame_point(16, (14, 23), (100.0, 362.0), transform) is None
    assert cell_at_frame_point(16, (14, 23), (-1.0, 10.0), transform) is None
    assert cell_at_frame_point(16, (14, 23), (639.4, 359.4), transform) == (12, 22)
    x0, y0, x1, y1 = receptive_field_box(card, (i, j), transform)
    assert (x0, x1) == pytest.approx(((13 * 16 - 77.5 + 0.5) * sx - 0.5, (13 * 16 + 77.5 + 0.5) * sx - 0.5), abs=1e-3)
    assert (y0, y1) == pytest.approx(((9 * 16 - 77.5 + 0.5) * sy - 0.5, (9 * 16 + 77.5 + 0.5) * sy - 0.5), abs=1e-3)
    assert (x0 + x1) / 2 == pytest.approx(x, abs=1e-3) and (y0 + y1) / 2 == pytest.approx(y, abs=1e-3)
    assert x1 - x0 == pytest.approx(155 * sx, abs=1e-3)


def test_receptive_field_box_of_a_feature_block(engines):
    transform = input_transform(640, 360, 353, 16)
    block = engines("posenet-075").info.feature_blocks[0]  # 3x3 conv, stride 2, field 3
    assert receptive_field_box(block, (0, 0), transform) == pytest.approx(
        (-1.0 * 640 / 353 - 0.5, -1.0 * 360 / 199 - 0.5, 2.0 * 640 / 353 - 0.5, 2.0 * 360 / 199 - 0.5), abs=1e-3
    )


# --- heads as arrows ----------------------------------------------------------------------------


def test_offset_arrows_start_at_confident_cells_and_end_where_the_offset_points():
    heatmaps = np.zeros((NUM_KEYPOINTS, 5, 6), np.float32)
    offsets = np.full((2 * NUM_KEYPOINTS, 5, 6), 99.0, np.float32)
    heatmaps[3, 1, 4], heatmaps[3, 2, 0], heatmaps[9, 4, 5], heatmaps[9, 0, 0] = 0.8, 0.5, 0.95, 0.49
    for k, i, j, dy, dx in [(3, 1, 4, -5.0, 7.5), (3, 2, 0, 2.0, -3.0), (9, 4, 5, 1.25, 0.5)]:
        offsets[k, i, j], offsets[NUM_KEYPOINTS + k, i, j] = dy, dx
    arrows, ids = offset_arrows(heatmaps, offsets, 16, 0.5, labels=True)
    assert arrows.dtype == np.float32
    np.testing.assert_array_equal(arrows, [[64, 16, 71.5, 11], [0, 32, -3, 34], [80, 64, 80.5, 65.25]])
    np.testing.assert_array_equal(ids, [3, 3, 9])
    np.testing.assert_array_equal(offset_arrows(heatmaps, offsets, 16, 0.5, keypoint=9), [[80, 64, 80.5, 65.25]])
    assert offset_arrows(heatmaps, offsets, 16, 0.99).shape == (0, 4)


def test_displacement_arrows_follow_the_part_tree_from_confident_keypoints():
    shape = (9, 12)
    fwd = np.full((2 * NUM_EDGES, *shape), 500.0, np.float32)  # wrong everywhere but where read
    bwd = np.full((2 * NUM_EDGES, *shape), 500.0, np.float32)
    keypoints = np.zeros((1, NUM_KEYPOINTS, 3), np.float32)
    shoulder, elbow = KEYPOINT_INDEX["left_shoulder"], KEYPOINT_INDEX["left_elbow"]
    edge = PART_TREE_EDGES.index((shoulder, elbow))
    keypoints[0, shoulder] = (70.0, 41.0, 0.9)  # nearest cell (3, 4) at stride 16: y 41 -> 2.56 -> 3
    keypoints[0, elbow] = (90.0, 80.0, 0.8)  # nearest cell (5, 6)
    fwd[edge, 3, 4], fwd[NUM_EDGES + edge, 3, 4] = 38.0, 21.0
    bwd[edge, 5, 6], bwd[NUM_EDGES + edge, 5, 6] = -40.0, -19.5
    arrows = displacement_arrows(keypoints, fwd, bwd, 16, 0.5, edge)
    np.testing.assert_array_equal(arrows, [[70, 41, 91, 79], [90, 80, 70.5, 40]])
    # All edges: only edges touching the two confident keypoints give arrows (bwd from the
    # shoulder to the nose, fwd and bwd between shoulder and elbow, fwd from the elbow to the
    # wrist and from the shoulder to the hip).
    arrows, edges, forward = displacement_arrows(keypoints, fwd, bwd, 16, 0.5, labels=True)
    hip, nose, wrist = KEYPOINT_INDEX["left_hip"], KEYPOINT_INDEX["nose"], KEYPOINT_INDEX["left_wrist"]
    expected = [(PART_TREE_EDGES.index((nose, shoulder)), False), (edge, True), (edge, False),
                (PART_TREE_EDGES.index((elbow, wrist)), True), (PART_TREE_EDGES.index((shoulder, hip)), True)]
    assert list(zip(edges.tolist(), forward.tolist())) == expected
    assert displacement_arrows(keypoints, fwd, bwd, 16, 0.95).shape == (0, 4)
    transform = input_transform(640, 360, 353, 16)
    framed = arrows_to_frame(arrows, transform)
    np.testing.assert_allclose(framed[:, :2], transform.to_frame(arrows[:, :2]), atol=1e-4)
    np.testing.assert_allclose(framed[:, 2:], transform.to_frame(arrows[:, 2:]), atol=1e-4)


# --- statistics, filters, images ----------------------------------------------------------------


def test_block_statistics():
    maps = np.zeros((4, 2, 5), np.float32)
    maps[0] = 6.0
    maps[1, 0, :] = 1.0
    stats = block_statistics({"feature_1": maps, "feature_2": np.full((2, 1, 1), 0.5, np.float32)})
    assert list(stats) == ["feature_1", "feature_2"]
    s = stats["feature_1"]
    assert (s.mean, s.zero_share, s.max, s.dead_channels) == pytest.approx((65 / 40, 25 / 40, 6.0, 2))
    assert stats["feature_2"].zero_share == 0 and stats["feature_2"].dead_channels == 0


def _first_conv_by_hand(blob, weights, bias, cells):
    """feature_0 at `cells` computed in numpy: 3x3 conv, stride 2, zero padding 1 on x/127.5-1."""
    image = np.pad(blob[0] / 127.5 - 1.0, ((0, 0), (1, 1), (1, 1)))
    return np.array([
        np.clip(np.einsum("cdyx,dyx->c", weights, image[:, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3]) + bias, 0, 6)
        for i, j in cells
    ])


def test_first_conv_filters_reproduce_feature_0_in_rgb_order(engines):
    engine = engines("posenet-075")
    blob, _ = letterbox(read_image(PHOTO), 129, 16)
    weights, bias = first_conv_parameters(engine)
    assert weights.shape == (24, 3, 3, 3) and weights.dtype == np.float32
    np.testing.assert_array_equal(first_conv_filters(engine), weights)
    feature_0 = engine.run(blob, ["feature_0"])[4][0]
    cells = [(0, 0), (10, 31), (40, 22), (64, 64), (33, 5)]
    expected = np.stack([feature_0[:, i, j] for i, j in cells])
    np.testing.assert_allclose(_first_conv_by_hand(blob, weights, bias, cells), expected, atol=1e-4)
    # The channel order matters: the same kernels read as BGR do not give feature_0.
    swapped = _first_conv_by_hand(blob, weights[:, ::-1], bias, cells)
    assert np.abs(swapped - expected).max() > 0.05
    # The int8 model's kernels are the float ones, quantised per output channel (models/quantize.py:
    # a channel's step is its largest same-sign weight pair / 127, at most twice its largest weight
    # / 127, and GPTQ rounding moves a weight by a step or two).
    quantised = first_conv_filters(engines("posenet-075-int8"))
    step = 2 * np.abs(weights).max(axis=(1, 2, 3), keepdims=True) / 127
    assert quantised.shape == weights.shape and np.all(np.abs(quantised - weights) <= 2 * step + 1e-6)


def test_filter_tiles_grid_size_and_colours():
    filters = np.zeros((24, 3, 3, 3), np.float32)
    filters[0, 0, 0, 0] = 1.0  # filter 0: red weight at its top left tap
    tiles = filter_tiles(filters, scale=8)
    assert tiles.dtype == np.uint8 and tiles.shape == (5 * 24 + 4, 5 * 24 + 4, 3)  # 5x5 grid, gap 1
    assert tiles[0, 0].tolist() == [0, 0, 255] and tiles[23, 23].tolist() == [0, 0, 0]
    assert tiles[0, 25].tolist() == [128, 128, 128]  # filter 1 is constant: mid-grey
    assert filter_tiles(filters, scale=4, columns=6).shape == (4 * 12 + 3, 6 * 12 + 5, 3)


def test_channel_grid_shows_every_channel_labelled_in_place():
    rng = np.random.default_rng(2)
    features = rng.uniform(0, 6, (10, 7, 9)).astype(np.float32)
    plain = channel_grid(features, 4, labels=False, scale=5)
    assert plain.dtype == np.uint8 and plain.shape == (3 * 35 + 2, 4 * 45 + 3, 3)
    tiles = colorize(normalise_per_tile(features)).repeat(5, axis=1).repeat(5, axis=2)
    np.testing.assert_array_equal(plain[36:71, 46:91], tiles[5])  # channel 5: row 1, column 1
    labelled = channel_grid(features, 4)  # scale chosen for readable labels: ceil(32 / 7) = 5
    assert labelled.shape == plain.shape
    assert np.any(labelled[36:50, 46:70] != plain[36:50, 46:70])  # "5" written at the top left
    np.testing.assert_array_equal(labelled[60:71, 80:91], plain[60:71, 80:91])  # rest untouched
    assert channel_grid(features, 4, labels=False).shape == (3 * 7 + 2, 4 * 9 + 3, 3)


def test_save_png_writes_a_readable_png_and_says_why_it_cannot(tmp_path):
    image = channel_grid(np.random.default_rng(1).uniform(0, 6, (6, 5, 5)).astype(np.float32), 3)
    path = save_png(image, tmp_path / "grid.png")
    np.testing.assert_array_equal(cv2.imread(str(path)), image)
    with pytest.raises(PoseAppError, match="cannot write .*missing"):
        save_png(image, tmp_path / "missing" / "grid.png")
    (tmp_path / "file").write_text("")
    with pytest.raises(PoseAppError, match="cannot write"):
        save_png(image, tmp_path / "file" / "grid.png")


# --- the decoding walk --------------------------------------------------------------------------


def rebuilt_poses(steps):
    """Poses as the walk's steps built them (acceptance order), then ordered and filtered as its
    scores step says: (keypoints (P, 17, 3), scores (P,))."""
    poses = [s for s in steps if s.kind == "pose"]
    if not poses:
        return np.zeros((0, NUM_KEYPOINTS, 3), np.float32), np.zeros(0, np.float32)
    built = poses[-1].keypoints
    scores = next(s for s in steps if s.kind == "scores").scores
    dropped = {s.pose for s in steps if s.kind == "drop"}
    kept = [p for p in np.argsort(-scores, kind="stable") if p not in dropped]
    return built[kept], scores[kept]


def assert_walk_matches_decoder(fields, stride, settings):
    steps = decoding_walk(*fields, stride, settings)
    keypoints, scores = decode_multiple_poses(
        *fields, stride, max_poses=settings.max_poses, part_score_threshold=settings.part_score_threshold,
        nms_radius=settings.nms_radius, min_pose_score=settings.min_pose_score,
    )
    result = steps[-1]
    assert result.kind == "result"
    np.testing.assert_array_equal(result.keypoints, keypoints)
    np.testing.assert_array_equal(result.scores, scores)
    built, built_scores = rebuilt_poses(steps)
    np.testing.assert_array_equal(built, keypoints)
    np.testing.assert_array_equal(built_scores, scores)
    assert {s.kind for s in steps} <= set(STEP_KINDS) and all(s.caption for s in steps)
    assert steps[0].kind == "queue"
    roots = [s for s in steps if s.kind == "root"]
    assert len(roots) == sum(s.kind == "pose" for s in steps)
    assert sum(s.kind == "edge" for s in steps) == 16 * len(roots)
    return steps


def test_walk_over_three_synthetic_people_shows_roots_edges_and_poses():
    people = np.stack([person_at(40.3, 80.7), person_at(45.1, 250.2), person_at(35.8, 420.6)])
    fields = render_fields(people, uniform_scores(0.95, 0.85, 0.75), (33, 33))
    steps = assert_walk_matches_decoder(fields, STRIDE, DecodeSettings(min_pose_score=0.0))
    roots = [s for s in steps if s.kind == "root"]
    assert roots[0].caption == "pose 1 root: nose at (81, 40), score 0.95"
    np.testing.assert_allclose(roots[0].points, [[80.7, 40.3]], atol=1e-4)
    # The first edge walked from pose 1's root (backward edges start at the ears, whose
    # parents are not decoded yet, so the first edge followed is nose -> left_eye).
    edge = next(s for s in steps if s.kind == "edge")
    nose, eye = people[0, 0], people[0, 1]
    # (-6.2, 5.3) to the eye, plus the error (3, -2): 4.6 px.
    assert edge.caption.startswith("edge nose → left_eye: displaced 5 px, refined twice") and edge.forward
    # Arrows: nose -> nose + displacement (off by the fields' error), then two refinements
    # ending on the eye.
    np.testing.assert_allclose(edge.arrows[0], [*nose[::-1], *(eye + [3.0, -2.0])[::-1]], atol=1e-4)
    np.testing.assert_allclose(edge.arrows[-1, 2:], eye[::-1], atol=1e-3)
    np.testing.assert_allclose(edge.keypoints[0, 1], [*eye[::-1], 0.95], atol=1e-3)
    assert np.isnan(edge.keypoints[0, 3, 0])  # the left ear is not reached yet
    assert steps[-1].caption == "3 poses, best first: scores 0.95, 0.85, 0.75"


def test_walk_shows_suppressed_candidates_dropped_poses_and_the_pose_limit():
    person, fields = duplicate_nose_fields()
    steps = assert_walk_matches_decoder(fields, STRIDE, DecodeSettings(min_pose_score=0.0))
    suppress = [s for s in steps if s.kind == "suppress"]
    assert len(suppress) == 1 and suppress[0].pose == 0
    # The peaks of the person's other 16 keypoints, and the duplicate nose 10 px off, named first.
    assert suppress[0].caption.startswith(
        "pose 1 suppresses 17 candidates within 20 px of its keypoints of the same kind: "
        f"nose at ({person[0, 1] + 10:.0f}, {person[0, 0]:.0f}), 10 px from its nose; "
    ) and suppress[0].caption.endswith("; and 14 more, closer")
    assert suppress[0].point_keypoints.tolist() == list(range(1, NUM_KEYPOINTS)) + [0]
    np.testing.assert_allclose(suppress[0].arrows[-1], [person[0, 1] + 10, person[0, 0], person[0, 1], person[0, 0]], atol=1e-3)
    np.testing.assert_allclose(suppress[0].arrows[:-1, :2], suppress[0].arrows[:-1, 2:], atol=1e-3)
    # A 5 px radius keeps the duplicate as a second pose, whose score (0.7 / 17) is then too low.
    steps = assert_walk_matches_decoder(fields, STRIDE, DecodeSettings(nms_radius=5.0, min_pose_score=0.25))
    drop = [s for s in steps if s.kind == "drop"]
    assert [s.caption for s in drop] == ["pose 2 dropped: score 0.04 below min pose score 0.25"]
    assert len(steps[-1].scores) == 1
    people = np.stack([person_at(40.3, 420.6), person_at(45.1, 80.7), person_at(35.8, 250.2)])
    fields = render_fields(people, uniform_scores(0.9, 0.8, 0.7), (33, 33))
    steps = assert_walk_matches_decoder(fields, STRIDE, DecodeSettings(max_poses=2))
    assert [s.caption for s in steps if s.kind == "limit"] == ["max poses (2) reached: 17 candidates left undecoded"]
    steps = assert_walk_matches_decoder(fields, STRIDE, DecodeSettings(part_score_threshold=0.95))
    assert [s.kind for s in steps] == ["queue", "result"] and steps[-1].caption == "0 poses, best first"


def test_tracing_leaves_the_decoder_unchanged_on_random_fields():
    rng = np.random.default_rng(4)
    heatmaps = rng.uniform(0, 1, (NUM_KEYPOINTS, 9, 14)).astype(np.float32)
    offsets = rng.uniform(-40, 40, (2 * NUM_KEYPOINTS, 9, 14)).astype(np.float32)
    fwd, bwd = rng.uniform(-80, 80, (2, 2 * NUM_EDGES, 9, 14)).astype(np.float32)
    trace = []
    plain = decode_multiple_poses(heatmaps, offsets, fwd, bwd, 16, max_poses=20, nms_radius=10.0)
    traced = decode_multiple_poses(heatmaps, offsets, fwd, bwd, 16, max_poses=20, nms_radius=10.0, trace=trace)
    for a, b in zip(plain, traced):
        np.testing.assert_array_equal(a, b)
    assert [e["event"] for e in trace[:3]] == ["queue", "root", "edge"] and trace[-1]["event"] == "scores"
    assert_walk_matches_decoder((heatmaps, offsets, fwd, bwd), 16, DecodeSettings(max_poses=20, nms_radius=10.0))


@pytest.mark.parametrize("resolution", [353, 513])
def test_walk_on_real_model_output_ends_with_the_decoders_poses(engines, group_image, resolution):
    engine = engines("posenet-075")
    stride = engine.info.output_stride
    for frame in (read_image(group_image.path), read_image(PHOTO)):
        out = engine.infer(frame, resolution)
        fields = tuple(out.heads[name] for name in HEAD_OUTPUTS)
        steps = assert_walk_matches_decoder(fields, stride, DecodeSettings())
        assert len(steps[-1].scores) >= 1
        # In frame pixels: the same poses mapped as the estimator maps them.
        framed = decoding_walk(*fields, stride, DecodeSettings(), out.transform)
        np.testing.assert_allclose(framed[-1].keypoints[..., :2], out.transform.to_frame(steps[-1].keypoints[..., :2]), atol=1e-3)
        assert [(s.kind, s.pose, s.keypoint) for s in framed] == [(s.kind, s.pose, s.keypoint) for s in steps]
        root = next(s for s in framed if s.kind == "root")
        x, y = out.transform.to_frame(next(s for s in steps if s.kind == "root").points[0])
        assert f" at ({x:.0f}, {y:.0f})," in root.caption


def test_single_pose_walk_takes_each_keypoints_best_cell():
    person = person_at(60.2, 240.9)
    heatmaps, offsets, fwd, bwd = render_fields(person[None], uniform_scores(0.9), (33, 33))
    steps = decoding_walk(heatmaps, offsets, fwd, bwd, STRIDE, DecodeSettings(single_pose=True))
    keypoints, scores = decode_single_pose(heatmaps, offsets, STRIDE)
    assert [s.kind for s in steps] == ["keypoint"] * NUM_KEYPOINTS + ["result"]
    np.testing.assert_array_equal(steps[-1].keypoints, keypoints)
    np.testing.assert_allclose(steps[-2].keypoints, keypoints, atol=1e-6)
    assert steps[0].caption.startswith("nose: best cell (4, 15), score 0.90")
