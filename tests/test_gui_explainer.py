"""The explainer in the feature-map dock: the network strip, the channel inspector (receptive
field under the mouse), the first conv's filters, the offset and displacement arrows, the
activation statistics, the decoding walk stepped through the window, and the PNG exports.

Synthetic maps check the geometry exactly (compose.py draws, the dock's widgets answer the
mouse); the real window on the generated walker clip checks the wiring end to end."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from support import GUI_WAIT_MS, wait_for_result

from pose_app.core.poses import FramePoses
from pose_app.core.skeleton import KEYPOINT_INDEX, NUM_KEYPOINTS, NUM_PART_TREE_EDGES, PART_TREE_EDGES
from pose_app.draw.featuremaps import grid_columns
from pose_app.explain.compose import PanelRequest, compose_panel, hover_at, keypoint_color, region_at
from pose_app.explain.network import (
    MIN_LABELLED_TILE,
    cell_centre_in_frame,
    filter_tiles,
    first_conv_filters,
    receptive_field_box,
)
from pose_app.gui.network_strip import stride_mark
from pose_app.inference.decode import decode_multiple_poses
from pose_app.inference.families.posenet import input_transform
from pose_app.inference.model_info import FeatureBlock, ModelInfo

WAIT_MS = GUI_WAIT_MS
GREY = 128


@pytest.fixture
def walk(walk_clip):
    return str(walk_clip)


def shows(mode: str, layer: str | None = None):
    def condition(result) -> bool:
        view = result.panel_view
        return view is not None and view.mode == mode and (layer is None or view.layer == layer)
    return condition


def paused_on_a_person(qtbot, window, walk: str):
    """Open the walker clip with the panel open and pause on a frame showing her."""
    window.open_source(walk)
    wait_for_result(qtbot, window, lambda r: r.frame.index >= 5 and len(r.poses) >= 1 and r.panel_view is not None)
    window.toggle_pause()
    qtbot.waitUntil(lambda: window.last_result.frame.index == window.capture.last_index, timeout=WAIT_MS)
    qtbot.wait(100)  # a result still in flight lands before the tests look
    return window.last_result


# --- synthetic maps --------------------------------------------------------------------------


# A 640x360 frame letterboxed to 353x209 (resized 353x199): cells are not square in the frame.
TRANSFORM = input_transform(640, 360, 353, 16)
HOT_BLOCK = FeatureBlock("feature_9", 9, 4, 16, 1, 155)
HOT_CELL, HOT_CHANNEL = (9, 13), 2


def synthetic_info(output_stride: int = 16) -> ModelInfo:
    return ModelInfo("synthetic", Path("synthetic.onnx"), "posenet", output_stride, (), (HOT_BLOCK,), "", "", width_multiplier=0.75)


def synthetic_poses(transform, features=None, heatmaps=None, offsets=None, fwd=None, bwd=None, keypoints=None):
    keypoints = np.zeros((0, NUM_KEYPOINTS, 3), np.float32) if keypoints is None else keypoints
    w, h = transform.input_size
    cells = ((h - 1) // 16 + 1, (w - 1) // 16 + 1)
    return FramePoses(
        keypoints=keypoints, scores=np.ones(len(keypoints), np.float32), ids=np.arange(len(keypoints)),
        heatmaps=np.zeros((NUM_KEYPOINTS, *cells), np.float32) if heatmaps is None else heatmaps,
        features=features or {}, transform=transform,
        heads={} if offsets is None else {"offsets": offsets, "displacement_fwd": fwd, "displacement_bwd": bwd},
    )


def hot_cell_view(mirror: bool):
    features = np.zeros((4, 14, 23), np.float32)
    features[HOT_CHANNEL][HOT_CELL] = 5.0
    features[0, 3, 4] = 1.0  # other channels hold other things
    poses = synthetic_poses(TRANSFORM, features={"feature_9": features})
    frame = np.full((360, 640, 3), GREY, np.uint8)
    request = PanelRequest(mode="features", block="feature_9", channel=HOT_CHANNEL, width=640)
    return frame, compose_panel(frame, poses, request, mirror=mirror, info=synthetic_info())


@pytest.mark.parametrize("mirror", [False, True])
def test_a_hot_cell_maps_to_its_frame_pixel_and_receptive_field_square_in_the_inspector(qtbot, mirror):
    from PySide6.QtCore import QPoint

    from pose_app.gui.feature_panel import FeaturePanel

    frame, view = hot_cell_view(mirror)
    sx, sy = 640 / 353, 360 / 199
    x, y = (13 * 16 + 0.5) * sx - 0.5, (9 * 16 + 0.5) * sy - 0.5  # where the letterbox puts cell (9, 13)
    shown_x = 639 - x if mirror else x
    # The channel blended over the frame (one picture pixel per frame pixel): the heat peaks there.
    change = np.abs(view.picture.astype(np.int16) - frame).sum(axis=2)
    peak_y, peak_x = np.unravel_index(change.argmax(), change.shape)
    assert abs(peak_x - shown_x) <= 1.0 and abs(peak_y - y) <= 1.0
    assert change[round(y), round(639 - shown_x)] == 0 or abs(shown_x - (639 - shown_x)) < 2  # not the mirror image

    panel = FeaturePanel()
    qtbot.addWidget(panel)
    panel.resize(700, 900)
    panel.show()
    panel.picture.set_view(view)
    qtbot.waitExposed(panel)
    target = panel.picture.widget_point(shown_x, y)
    qtbot.mouseMove(panel.picture, QPoint(round(target.x()), round(target.y())))
    qtbot.waitUntil(lambda: panel.picture.hover is not None, timeout=5000)
    hover = panel.picture.hover
    assert hover.cell == HOT_CELL and hover.value == 5.0
    assert hover.centre == pytest.approx((x, y), abs=1e-3)
    # The receptive field: 155 input pixels around the cell, through the letterbox's scale.
    x0, y0, x1, y1 = hover.box
    assert (x0, x1) == pytest.approx(((13 * 16 - 77.5 + 0.5) * sx - 0.5, (13 * 16 + 77.5 + 0.5) * sx - 0.5), abs=1e-3)
    assert (y0, y1) == pytest.approx(((9 * 16 - 77.5 + 0.5) * sy - 0.5, (9 * 16 + 77.5 + 0.5) * sy - 0.5), abs=1e-3)
    # Painted as a square centred on the mouse, 155 input px = 155 * sx frame px wide.
    rect = panel.picture.hover_rect()
    widget_per_pixel = panel.picture.widget_point(1, 0).x() - panel.picture.widget_point(0, 0).x()
    assert rect.width() == pytest.approx(155 * sx * widget_per_pixel, rel=1e-3)
    assert rect.center().x() == pytest.approx(target.x(), abs=widget_per_pixel)
    assert rect.center().y() == pytest.approx(target.y(), abs=widget_per_pixel)
    assert "cell (9, 13) = 5" in panel.hover_label.text()
    # One cell to the right on screen is one cell further from the hot one (mirrored: to its left).
    step = panel.picture.widget_point(shown_x + 16 * sx, y)
    qtbot.mouseMove(panel.picture, QPoint(round(step.x()), round(step.y())))
    qtbot.waitUntil(lambda: panel.picture.hover is not None and panel.picture.hover.cell != HOT_CELL, timeout=5000)
    assert panel.picture.hover.cell == (9, 12 if mirror else 14) and panel.picture.hover.value == 0.0


def test_hover_is_none_off_the_picture_and_tiles_answer_clicks():
    _, view = hot_cell_view(False)
    assert hover_at(view, (-3.0, 10.0)) is None and hover_at(view, (100.0, 360.2)) is None
    features = np.zeros((4, 14, 23), np.float32)
    features[3] = 1.0
    features[3, 0, 0] = 2.0
    poses = synthetic_poses(TRANSFORM, features={"feature_9": features})
    grid = compose_panel(np.zeros((360, 640, 3), np.uint8), poses,
                         PanelRequest(block="feature_9", how="range", count=4), mirror=False,
                         info=synthetic_info())
    # 4 tiles of 23x14 in grid_columns(4, 14, 23) = 2 columns, 1 pixel apart.
    assert grid.picture.shape == (14 * 2 + 1, 23 * 2 + 1, 3)
    assert region_at(grid, (1, 1)) == 0 and region_at(grid, (25, 1)) == 1 and region_at(grid, (30, 20)) == 3
    assert region_at(grid, (23, 5)) is None  # the gap between tiles
    assert hover_at(grid, (1, 1)) is None  # tiles are not over the frame


# --- arrows ----------------------------------------------------------------------------------


def changed_box(picture: np.ndarray, background: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(np.abs(picture.astype(np.int16) - background).sum(axis=2))
    return xs.min(), ys.min(), xs.max(), ys.max()


@pytest.mark.parametrize("mirror", [False, True])
def test_offset_arrows_start_at_the_confident_cell_and_end_at_the_keypoint(mirror):
    transform = input_transform(640, 360, 353, 16)
    heatmaps = np.zeros((NUM_KEYPOINTS, 14, 23), np.float32)
    offsets = np.zeros((2 * NUM_KEYPOINTS, 14, 23), np.float32)
    wrist = KEYPOINT_INDEX["left_wrist"]
    heatmaps[wrist, 6, 10], heatmaps[wrist, 2, 2] = 0.9, 0.3  # the second is below the threshold
    offsets[wrist, 6, 10], offsets[NUM_KEYPOINTS + wrist, 6, 10] = -12.0, 30.0  # dy, dx input px
    poses = synthetic_poses(transform, heatmaps=heatmaps, offsets=offsets)
    frame = np.full((360, 640, 3), GREY, np.uint8)
    view = compose_panel(frame, poses, PanelRequest(mode="offsets", width=640, min_score=0.5), mirror=mirror,
                         info=synthetic_info())
    start = transform.to_frame(np.array([160.0, 96.0]))
    end = transform.to_frame(np.array([190.0, 84.0]))
    np.testing.assert_allclose(view.arrows, [[*start, *end]], atol=1e-3)
    assert view.caption.startswith("offsets (all keypoints): 1 arrows")
    # Drawn where it is: from the cell's white dot to the keypoint, in the wrist's colour.
    x0, y0, x1, y1 = changed_box(view.picture, frame)
    xs = sorted([639 - start[0], 639 - end[0]]) if mirror else [start[0], end[0]]
    assert x0 == pytest.approx(xs[0], abs=3) and x1 == pytest.approx(xs[1], abs=3)
    assert y0 == pytest.approx(end[1], abs=6) and y1 == pytest.approx(start[1], abs=3)
    tip_x = 639 - end[0] if mirror else end[0]
    near_tip = view.picture[round(end[1]) - 3:round(end[1]) + 4, round(tip_x) - 3:round(tip_x) + 4]
    assert (np.abs(near_tip.astype(int) - keypoint_color(wrist)).sum(axis=2) < 60).any()
    assert (view.picture[round(start[1]), round(639 - start[0] if mirror else start[0])] > 200).all()
    # One keypoint: another keypoint's arrows are left out.
    other = compose_panel(frame, poses, PanelRequest(mode="offsets", width=640, keypoint=0), mirror=mirror,
                          info=synthetic_info())
    assert other.arrows.shape == (0, 4) and np.array_equal(other.picture, cv2.flip(frame, 1) if mirror else frame)


def test_displacement_arrows_leave_each_detected_keypoint_along_its_edges():
    transform = input_transform(640, 360, 353, 16)
    fwd = np.zeros((2 * NUM_PART_TREE_EDGES, 14, 23), np.float32)
    bwd = np.zeros_like(fwd)
    shoulder, elbow = KEYPOINT_INDEX["left_shoulder"], KEYPOINT_INDEX["left_elbow"]
    edge = PART_TREE_EDGES.index((shoulder, elbow))
    keypoints = np.zeros((1, NUM_KEYPOINTS, 3), np.float32)
    shoulder_input, elbow_input = np.array([96.0, 64.0]), np.array([128.0, 112.0])  # on cells (4, 6), (7, 8)
    keypoints[0, shoulder] = (*transform.to_frame(shoulder_input), 0.9)
    keypoints[0, elbow] = (*transform.to_frame(elbow_input), 0.8)
    fwd[edge, 4, 6], fwd[NUM_PART_TREE_EDGES + edge, 4, 6] = 44.0, 30.0  # dy, dx from the shoulder
    bwd[edge, 7, 8], bwd[NUM_PART_TREE_EDGES + edge, 7, 8] = -50.0, -34.0  # back from the elbow
    poses = synthetic_poses(transform, keypoints=keypoints, fwd=fwd, bwd=bwd,
                            offsets=np.zeros((2 * NUM_KEYPOINTS, 14, 23), np.float32))
    frame = np.full((360, 640, 3), GREY, np.uint8)
    view = compose_panel(frame, poses, PanelRequest(mode="displacements", width=640, edge=edge), mirror=False,
                         info=synthetic_info())
    expected = [[*transform.to_frame(shoulder_input), *transform.to_frame(shoulder_input + [30.0, 44.0])],
                [*transform.to_frame(elbow_input), *transform.to_frame(elbow_input + [-34.0, -50.0])]]
    np.testing.assert_allclose(view.arrows, expected, atol=1e-2)
    assert "1 forward (orange, parent → child) and 1 backward" in view.caption
    x0, y0, x1, y1 = changed_box(view.picture, frame)
    corners = np.array(expected).reshape(-1, 2)
    assert x0 == pytest.approx(corners[:, 0].min(), abs=4) and x1 == pytest.approx(corners[:, 0].max(), abs=4)
    assert y0 == pytest.approx(corners[:, 1].min(), abs=4) and y1 == pytest.approx(corners[:, 1].max(), abs=4)
    # All edges: the other edges at the two keypoints read zero displacements (arrows of length 0).
    everything = compose_panel(frame, poses, PanelRequest(mode="displacements", width=640), mirror=False,
                               info=synthetic_info())
    assert len(everything.arrows) == 5


# --- the real window -------------------------------------------------------------------------


def test_clicking_the_strip_selects_the_block_and_the_heads(make_window, qtbot, walk):
    from PySide6.QtCore import Qt

    window = make_window(max_speed=True, panel_visible=True)
    result = paused_on_a_person(qtbot, window, walk)
    strip = window.panel.strip
    cards = {card.name: card for card in strip.layers()}
    assert list(cards)[:2] == ["image", "feature_0"] and list(cards)[-4:] == [
        "heatmaps", "offsets", "displacement_fwd", "displacement_bwd"]
    # Drawn to scale for this input: the shapes are those of the real outputs...
    block = window.panel.current_block()
    assert cards[block].shape == result.poses.features[block].shape
    assert cards["heatmaps"].shape[1:] == result.poses.heatmaps.shape[1:]
    # ...heights in proportion to H, and the blocks that halve the resolution marked.
    tall, short = strip.block_rect("feature_1"), strip.block_rect("feature_2")
    assert tall.height() / short.height() == pytest.approx(cards["feature_1"].shape[1] / cards["feature_2"].shape[1], rel=0.1)
    assert [stride_mark(c) for c in cards.values()].count("s2") == 4 and stride_mark(cards["feature_2"]) == "s2"

    qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=strip.block_rect("feature_3").center())
    assert window.panel.current_block() == "feature_3" and strip.selected() == {"feature_3"}
    shown = wait_for_result(qtbot, window, shows("features", "feature_3"))
    assert shown.features_requested == ("feature_3",) and window.settings.panel_block == "feature_3"
    assert "feature_3 · 96×" in window.panel.layer_line.text() and "receptive field 19 px" in window.panel.layer_line.text()

    qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=strip.block_rect("offsets").center())
    offsets = wait_for_result(qtbot, window, shows("offsets"))
    assert window.panel.current_mode() == "offsets" and offsets.features_requested == ()
    # The arrows run from confident cells to the person's keypoints of the same kind.
    stride = window.engine.info.output_stride
    frame_per_input = float(result.poses.transform.frame_per_input.mean())
    ends = offsets.panel_view.arrows[:, 2:]
    assert len(ends) >= 5
    nearest = np.linalg.norm(ends[:, None] - offsets.poses.keypoints[0, None, :, :2], axis=2).min(axis=1)
    assert np.median(nearest) < stride * frame_per_input

    qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=strip.block_rect("displacement_bwd").center())
    wait_for_result(qtbot, window, shows("displacements"))
    assert strip.selected() == {"displacement_fwd", "displacement_bwd"}
    # The input selects the first conv, whose tiles show each 3x3 RGB filter beside its map.
    qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=strip.block_rect("image").center())
    first = wait_for_result(qtbot, window, shows("features", "feature_0"))
    maps = first.poses.features["feature_0"]
    filters = first_conv_filters(window.engine)
    x0, y0, x1, y1, channel = first.panel_view.regions[0]
    height, width = maps.shape[1:]
    scale = height // 3
    assert (y1 - y0, x1 - x0) == (height, 3 * scale + 1 + width)
    kernel = filter_tiles(filters[[channel]], scale=scale, columns=1, gap=0)
    top = y0 + (height - 3 * scale) // 2
    np.testing.assert_array_equal(first.panel_view.picture[top:top + 3 * scale, x0:x0 + 3 * scale], kernel)


def test_clicking_a_tile_inspects_that_channel_over_the_frame(make_window, qtbot, walk):
    from PySide6.QtCore import QPoint, Qt

    window = make_window(max_speed=True, panel_visible=True)
    paused_on_a_person(qtbot, window, walk)
    grid = wait_for_result(qtbot, window, shows("features")) if window.last_result.panel_view is None else window.last_result
    view = window.panel.picture
    x0, y0, x1, y1, channel = grid.panel_view.regions[1]
    point = view.widget_point((x0 + x1) / 2, (y0 + y1) / 2)
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(round(point.x()), round(point.y())))
    assert window.panel.channel == channel and window.panel.back.isVisible()
    inspected = wait_for_result(qtbot, window, lambda r: r.panel_view is not None and r.panel_view.activation is not None)
    block = window.panel.current_block()
    np.testing.assert_array_equal(inspected.panel_view.activation.values, inspected.poses.features[block][channel])
    assert inspected.panel_view.picture.shape[1] <= 640 and f"{block} channel {channel} of" in inspected.panel_caption
    # Hovering the brightest cell shows its value and receptive field.
    values = inspected.panel_view.activation.values
    cell = np.unravel_index(values.argmax(), values.shape)
    card = next(c for c in window.panel.strip.layers() if c.name == block)
    x, y = cell_centre_in_frame(card.output_stride, cell, inspected.poses.transform)
    target = view.widget_point(*inspected.panel_view.geometry.to_picture([x, y]).tolist())
    qtbot.mouseMove(view, QPoint(round(target.x()), round(target.y())))
    qtbot.waitUntil(lambda: view.hover is not None and view.hover.cell == tuple(cell), timeout=5000)
    assert view.hover.value == pytest.approx(values.max())
    assert view.hover.box == pytest.approx(receptive_field_box(card, tuple(cell), inspected.poses.transform))
    window.panel.back.click()
    wait_for_result(qtbot, window, lambda r: r.panel_view is not None and r.panel_view.regions)


def test_statistics_ask_for_every_block_only_while_shown(make_window, qtbot, walk):
    window = make_window(max_speed=True, panel_visible=True)
    paused_on_a_person(qtbot, window, walk)
    panel = window.panel
    label = panel.mode.itemText(panel.mode.findData("stats"))
    assert "costs more" in label
    panel.mode.setCurrentIndex(panel.mode.findData("stats"))
    stats = wait_for_result(qtbot, window, shows("stats"))
    names = tuple(block.name for block in window.engine.info.feature_blocks)
    assert stats.features_requested == names and len(names) == 14
    assert list(stats.panel_view.stats) == list(names) and list(panel.chart.stats) == list(names)
    for name, s in stats.panel_view.stats.items():
        maps = stats.poses.features[name]
        assert s.mean == pytest.approx(float(maps.mean()), rel=1e-4) and 0 <= s.zero_share <= 1
        assert s.max == pytest.approx(float(maps.max()))
    assert panel.stack.currentWidget() is panel.chart and "costs" in panel.layer_line.text()
    panel.mode.setCurrentIndex(panel.mode.findData("features"))
    back = wait_for_result(qtbot, window, shows("features"))
    assert back.features_requested == (panel.current_block(),)


def test_the_decoding_walk_steps_through_the_window_to_the_decoders_poses(make_window, qtbot, walk):
    from PySide6.QtCore import Qt

    window = make_window(max_speed=True, panel_visible=True)
    window.open_source(walk)
    wait_for_result(qtbot, window, lambda r: r.frame.index >= 5 and len(r.poses) >= 1)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    # N pauses the video and shows the walk of the frame shown: its final poses first, then N
    # starts the walk there (frames in flight may land first: then N starts on the newest).
    qtbot.keyClick(window, Qt.Key.Key_N)
    assert window.capture.paused and window.panel.current_mode() == "walk"
    qtbot.waitUntil(lambda: window.last_result.frame.index == window.capture.last_index, timeout=WAIT_MS)
    qtbot.keyClick(window, Qt.Key.Key_N)
    first = wait_for_result(qtbot, window, lambda r: shows("walk")(r) and r.panel_view.step_index == 0)
    frame = first.frame.index
    assert first.panel_view.step.kind == "queue" and first.panel_caption.startswith(f"step 1 of {first.panel_view.steps}: ")
    kinds = ["queue"]
    for index in range(1, first.panel_view.steps):
        qtbot.keyClick(window, Qt.Key.Key_N)
        step = wait_for_result(qtbot, window, lambda r, i=index: shows("walk")(r) and r.panel_view.step_index == i)
        assert step.frame.index == frame and window.panel.walk_label.text() == f"step {index + 1} / {step.panel_view.steps}"
        kinds.append(step.panel_view.step.kind)
    assert kinds[-1] == "result" and "root" in kinds and "edge" in kinds and "pose" in kinds
    # Shift+N goes back one step; the Step buttons do the same.
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ShiftModifier)
    wait_for_result(qtbot, window, lambda r: shows("walk")(r) and r.panel_view.step_index == len(kinds) - 2)
    window.panel.walk_next.click()
    last = wait_for_result(qtbot, window, lambda r: shows("walk")(r) and r.panel_view.step_index == len(kinds) - 1)
    # The walk ends in the decoder's own poses for this frame's heads, in frame pixels.
    poses, settings = last.poses, window.inference.pipeline.estimator.settings
    keypoints, scores = decode_multiple_poses(
        poses.heatmaps, poses.heads["offsets"], poses.heads["displacement_fwd"], poses.heads["displacement_bwd"], window.engine.info.output_stride,
        max_poses=settings.max_poses, part_score_threshold=settings.part_score_threshold,
        nms_radius=settings.nms_radius, min_pose_score=settings.min_pose_score,
    )
    assert len(scores) >= 1
    result = last.panel_view.step
    np.testing.assert_allclose(result.keypoints[..., :2], poses.transform.to_frame(keypoints[..., :2]), atol=1e-3)
    np.testing.assert_array_equal(result.keypoints[..., 2], keypoints[..., 2])
    np.testing.assert_array_equal(result.scores, scores)


def wait_for_file(qtbot, path: Path) -> np.ndarray:
    qtbot.waitUntil(lambda: path.is_file() and path.stat().st_size > 0 and cv2.imread(str(path)) is not None,
                    timeout=WAIT_MS)
    return cv2.imread(str(path))


def test_png_exports_are_written_with_the_expected_size(make_window, qtbot, walk, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    window = make_window(max_speed=True, panel_visible=True, output_dir=str(out))
    result = paused_on_a_person(qtbot, window, walk)
    panel, block = window.panel, window.panel.current_block()
    # Every channel of the block, labelled, about square.
    path = panel.save_channels()
    assert path.parent == out and path.name.startswith(f"pose-channels-{block}-") and path.suffix == ".png"
    grid = wait_for_file(qtbot, path)
    channels, height, width = result.poses.features[block].shape
    columns = grid_columns(channels, height, width)
    rows = math.ceil(channels / columns)
    scale = max(1, math.ceil(MIN_LABELLED_TILE / min(height, width)))
    assert grid.shape == (rows * height * scale + rows - 1, columns * width * scale + columns - 1, 3)
    qtbot.waitUntil(lambda: f"Saved {path}" in window.statusBar().currentMessage(), timeout=WAIT_MS)
    # The view: the picture as shown, with the caption in a band below it.
    view = panel.save_view()
    assert view.name.startswith("pose-explainer-") and view != path
    saved = wait_for_file(qtbot, view)
    picture = panel.picture.view.picture
    assert saved.shape[1] == picture.shape[1] and saved.shape[0] > picture.shape[0] + 10
    np.testing.assert_array_equal(saved[:picture.shape[0]], picture)
    # Two saves within a second get different names.
    again = panel.save_view()
    assert again != view and wait_for_file(qtbot, again).shape == saved.shape
    # The statistics chart is saved as drawn.
    panel.mode.setCurrentIndex(panel.mode.findData("stats"))
    wait_for_result(qtbot, window, shows("stats"))
    chart = panel.save_view()
    image = wait_for_file(qtbot, chart)
    ratio = panel.chart.devicePixelRatioF()
    assert image.shape[:2] == (round(panel.chart.height() * ratio), round(panel.chart.width() * ratio))
    assert panel.save_channels() is None  # the chart is no single layer
