"""The CNN lab in the real window on the generated walker clip: each part asks inference for the
feature outputs it reads and shows its picture, the heatmap head's weighted sum follows the
mouse, the kept patches grow, clear and save, occlusion runs off the GUI thread with progress,
the guided tour moves through the dock's views, and `--view` opens the dock on a view."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPoint
from support import GUI_WAIT_MS, wait_for_result

from pose_app.cli import main as cli
from pose_app.cli.app import settings_with_options
from pose_app.explain.lab import TOUR, head_weights
from pose_app.explain.lab_probes import TOP_PATCHES, same_spots
from pose_app.explain.lab_view import strongest_channel
from pose_app.gui.settings import AppSettings, load_settings_file

WAIT_MS = GUI_WAIT_MS


@pytest.fixture
def walk(walk_clip):
    return str(walk_clip)


def lab_shows(part_phrase: str):
    def condition(result) -> bool:
        view = result.panel_view
        return view is not None and view.mode == "lab" and part_phrase in view.caption
    return condition


def choose_part(window, part: str) -> None:
    combo = window.panel.lab.part
    combo.setCurrentIndex(combo.findData(part))


def lab_window(make_window, qtbot, walk: str, **settings):
    window = make_window(panel_visible=True, panel_view="lab", resolution=257, **settings)
    window.open_source(walk)
    wait_for_result(qtbot, window, lab_shows("Your 3×3 filter"))
    return window


def test_each_part_of_the_lab_asks_for_the_outputs_it_reads(make_window, qtbot, walk):
    window = lab_window(make_window, qtbot, walk)
    panel = window.panel
    blocks = [block.name for block in window.engine.info.feature_blocks]
    assert panel.current_mode() == "lab" and window.panel_request().features == (blocks[0],)
    result = wait_for_result(qtbot, window, lab_shows("the network learnt this one itself"))
    assert blocks[0] in result.poses.features and set(result.features_requested) == {blocks[0]}
    # Stride 2 and no padding: the caption gives the map's new size.
    panel.lab.stride.setCurrentIndex(panel.lab.stride.findData(2))
    panel.lab.padding.setCurrentIndex(panel.lab.padding.findData("valid"))
    result = wait_for_result(qtbot, window, lab_shows("valid padding"))
    view = result.panel_view
    assert "stride 2" in view.caption
    frame_w = result.frame.image.shape[1]
    half = (window.panel_request().width - 2) // 2
    height = round(result.frame.image.shape[0] * half / frame_w)
    assert f"{half}×{height} in → {(half - 3) // 2 + 1}×{(height - 3) // 2 + 1} out" in view.caption
    # Pooling and the patches read the dock's block, the head the last block.
    choose_part(window, "pool")
    result = wait_for_result(qtbot, window, lab_shows("2×2 pooling"))
    block = panel.current_block()
    assert result.features_requested == (block,) and panel.form.isRowVisible(panel.block)
    channel = strongest_channel(result.poses.features[block])
    assert f"its strongest channel {channel}:" in result.panel_view.caption
    choose_part(window, "fc")
    result = wait_for_result(qtbot, window, lab_shows("fully connected layer"))
    assert result.features_requested == (blocks[-1],)
    choose_part(window, "occlusion")
    result = wait_for_result(qtbot, window, lab_shows("Run occlusion"))
    assert result.features_requested == ()


def test_the_heatmap_heads_weighted_sum_follows_the_cell_under_the_mouse(make_window, qtbot, walk):
    window = lab_window(make_window, qtbot, walk)
    choose_part(window, "fc")
    wait_for_result(qtbot, window, lab_shows("fully connected layer"))
    window.toggle_pause()
    qtbot.wait(200)  # results in flight land
    picture = window.panel.picture
    view = picture.view
    # Hover the picture pixel over cell (3, 5) of the heatmap: the request asks for that cell.
    transform, stride = view.geometry.transform, window.engine.info.output_stride
    frame_xy = transform.to_frame(np.array([5 * stride, 3 * stride], np.float64))
    x, y = view.geometry.to_picture(frame_xy).tolist()
    target = picture.widget_point(x, y)
    qtbot.mouseMove(picture, QPoint(round(target.x()), round(target.y())))
    qtbot.waitUntil(lambda: window.panel_request().lab.cell == (3, 5), timeout=WAIT_MS)
    result = wait_for_result(qtbot, window, lab_shows("Cell (3, 5)"))
    # The value shown is the dot product of that cell's features with the head's weights.
    head = head_weights(window.engine)
    last = window.engine.info.feature_blocks[-1].name
    features = result.poses.features[last][:, 3, 5]
    value = 1 / (1 + np.exp(-(features.astype(np.float64) @ head.weights[0] + head.bias[0])))
    assert f"Cell (3, 5): {value:.3f}" in result.panel_view.caption
    assert abs(value - result.poses.heatmaps[0, 3, 5]) < 0.02  # what the int8 network itself output


def test_kept_patches_grow_clear_and_save(make_window, qtbot, walk, tmp_path):
    window = lab_window(make_window, qtbot, walk, output_dir=str(tmp_path))
    choose_part(window, "patches")
    wait_for_result(qtbot, window, lab_shows("over 5 frames"))
    result = wait_for_result(qtbot, window, lab_shows("over 8 frames"))
    top = window.inference.panel_state("lab").patches
    assert top.block.name == window.panel.current_block() and top.frames >= 8
    # A walking person: several spots per channel, strongest first, never one spot twice.
    assert max(len(kept) for kept in top.channels()) >= 3
    for kept in top.channels():
        assert len(kept) <= TOP_PATCHES and [p.value for p in kept] == sorted((p.value for p in kept), reverse=True)
        boxes = np.array([p.box for p in kept]).reshape(-1, 4)
        overlaps = same_spots(boxes, np.repeat(boxes[None], len(boxes), axis=0))
        assert not (overlaps & ~np.eye(len(boxes), dtype=bool)).any()
    window.panel.lab.clear_button.click()
    wait_for_result(qtbot, window, lab_shows("over 1 frames"))
    path = window.panel.save_channels()
    assert path is not None and "patches" in path.name
    qtbot.waitUntil(lambda: path.stat().st_size > 0 and cv2.imread(str(path)) is not None, timeout=WAIT_MS)
    channels = result.poses.features[window.panel.current_block()].shape[0]
    side = int(np.ceil(np.sqrt(channels)))
    grid = cv2.imread(str(path))
    mosaic_h, mosaic_w = 14 + 3 * 32 + 2, 3 * 32 + 2
    rows = int(np.ceil(channels / side))
    assert grid.shape == (rows * mosaic_h + (rows - 1) * 4, side * mosaic_w + (side - 1) * 4, 3)


def test_occlusion_runs_off_the_gui_thread_with_progress(make_window, qtbot, walk):
    window = lab_window(make_window, qtbot, walk)
    choose_part(window, "occlusion")
    wait_for_result(qtbot, window, lab_shows("Run occlusion"))
    window.toggle_pause()
    qtbot.wait(200)
    steps, threads = [], []
    window.panel.occlusion.progress.connect(lambda done, total: (steps.append((done, total)),
                                                                 threads.append(threading.current_thread())))
    window.panel.lab.occlude_button.click()
    qtbot.waitUntil(lambda: window.panel.occlusion_result is not None, timeout=WAIT_MS)
    assert len(steps) > 3 and steps[-1][0] == steps[-1][1]
    assert window.panel.lab.progress.value() == window.panel.lab.progress.maximum()
    assert window.panel.picture.view is window.panel.occlusion_result
    assert window.panel.caption.text().startswith("Occlusion of nose")
    # A new paused-frame result keeps showing the occlusion until the part changes.
    window.panel.request_changed.emit()
    qtbot.wait(300)
    assert window.panel.picture.view is window.panel.occlusion_result
    choose_part(window, "filter")
    assert window.panel.occlusion_result is None


def test_the_guided_tour_moves_through_the_docks_views(make_window, qtbot, walk):
    window = lab_window(make_window, qtbot, walk)
    panel = window.panel
    seen = []
    for step in TOUR:
        panel.lab.tour_next.click()
        assert panel.current_mode() == step.view
        assert step.title in panel.lab.tour_label.text() and panel.lab.tour_widget.isVisible()
        if step.view == "lab":
            assert panel.lab.current_part() == step.part and panel.lab.relu.isChecked() == step.relu
            assert panel.lab.stride.currentData() == step.stride
            result = wait_for_result(qtbot, window, lambda r, part=step.part: r.panel_view is not None
                                     and r.panel_view.mode == "lab" and window.panel_request().lab.part == part)
        else:
            result = wait_for_result(qtbot, window, lambda r, view=step.view: r.panel_view is not None
                                     and r.panel_view.mode == view)
        seen.append(result.panel_view.mode)
    assert panel.current_block() == window.engine.info.feature_blocks[-1].name  # "deeper blocks": the last
    assert seen == [step.view for step in TOUR]
    panel.lab.tour_back.click()
    assert panel.current_mode() == TOUR[-2].view


def test_view_option_opens_the_dock_on_a_view(capsys, tmp_path):
    from pose_app.explain.compose import PANEL_MODES

    for view in PANEL_MODES:  # every registered view, the lab's, teach, compare and breaks among them
        args = cli.build_parser().parse_args(["--panel", "--view", view])
        settings = settings_with_options(AppSettings(), args)
        assert (settings.panel_visible, settings.panel_view) == (True, view)
    assert {"lab", "teach", "compare", "breaks"} <= set(PANEL_MODES)
    with pytest.raises(SystemExit) as stopped:
        cli.build_parser().parse_args(["--view", "lens"])
    assert stopped.value.code == 2 and "argument --view: invalid choice: 'lens'" in capsys.readouterr().err
    # A settings file of an earlier version names the view panel_mode.
    old = tmp_path / "old.ini"
    old.write_text("[pose-app]\npanel_mode=walk\n")
    assert load_settings_file(old).panel_view == "walk"


def test_the_kernel_editor_types_numbers_picks_presets_and_keeps_a_typed_kernel_centred(qtbot):
    from pose_app.explain.lab import preset_filter
    from pose_app.gui.lab_panel import LabControls

    lab = LabControls()
    qtbot.addWidget(lab)
    changes = []
    lab.changed.connect(lambda: changes.append(lab.request("feature_5")))
    lab.preset.setCurrentIndex(lab.preset.findData("red detector"))
    assert changes[-1].filter == preset_filter("red detector")
    lab.cells[1][1].setValue(4.0)  # typed: no longer the preset
    assert lab.preset.currentData() == "" and changes[-1].filter.pattern[4] == 4.0
    typed = changes[-1].filter.pattern
    lab.size.setCurrentIndex(lab.size.findData(5))
    pattern = np.asarray(changes[-1].filter.pattern).reshape(5, 5)
    np.testing.assert_allclose(pattern[1:4, 1:4].ravel(), typed)
    assert not pattern[0].any() and not pattern[:, 4].any() and not lab.cells[4][4].isHidden()
    lab.size.setCurrentIndex(lab.size.findData(3))
    assert changes[-1].filter.pattern == pytest.approx(typed)
    lab.preset.setCurrentIndex(lab.preset.findData("Sobel (vertical edges)"))
    lab.size.setCurrentIndex(lab.size.findData(5))
    assert changes[-1].filter == preset_filter("Sobel (vertical edges)", 5)
