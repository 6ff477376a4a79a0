"""Teaching the network a new point in the real window on the generated walker clip: `--view
teach` opens the dock on it, clicks on paused frames mark the point, Train fits the head off the
GUI thread, the taught heatmap then finds the point on frames it never saw, a weight bar opens
its channel, and the point is saved and loaded."""

from __future__ import annotations

import numpy as np
import pytest
from media import WALK
from PySide6.QtCore import QPoint, Qt
from support import GUI_WAIT_MS, wait_for_result

CHIN = (167.0, 122.0)  # photo pixels of tests/data/astronaut.jpg (tests/test_teach.py)
CLICKED_FRAMES = range(0, 30, 3)


@pytest.fixture
def walk(walk_clip):
    return str(walk_clip)


def teach_result(frame: int, phrase: str = ""):
    def condition(result) -> bool:
        view = result.panel_view
        return (result.frame.index == frame and view is not None and view.mode == "teach"
                and phrase in view.caption)
    return condition


def chin(frame: int) -> np.ndarray:
    return WALK.actors[0].to_frame(frame, np.array(CHIN))


def show_frame(qtbot, window, frame: int, phrase: str = ""):
    window.seek(frame)
    return wait_for_result(qtbot, window, teach_result(frame, phrase))


def test_clicks_on_paused_frames_teach_a_point_that_is_then_found_live(make_window, qtbot, walk, tmp_path):
    window = make_window(panel_visible=True, panel_view="teach", resolution=257, output_dir=str(tmp_path))
    panel, teach = window.panel, window.panel.teach
    window.open_source(walk)
    wait_for_result(qtbot, window, lambda r: r.panel_view is not None and r.panel_view.mode == "teach")
    window.toggle_pause()
    assert teach.isVisible() and panel.form.isRowVisible(panel.block) and not teach.train_button.isEnabled()
    for frame in CLICKED_FRAMES:  # a real mouse click on the chin of each frame
        result = show_frame(qtbot, window, frame)
        picture_xy = result.panel_view.geometry.to_picture(chin(frame))
        point = panel.picture.widget_point(*picture_xy.tolist())
        qtbot.mouseClick(panel.picture, Qt.MouseButton.LeftButton, pos=QPoint(round(point.x()), round(point.y())))
    assert [click.frame for click in teach.clicks] == list(CLICKED_FRAMES)
    assert max(np.hypot(*(np.array(c.point) - chin(c.frame))) for c in teach.clicks) < 3  # widget pixels, rounded
    result = show_frame(qtbot, window, CLICKED_FRAMES[-1], "10 clicks on 10 frames")
    teach.name.setText("chin")
    progress = []
    panel.teacher.progress.connect(progress.append)
    qtbot.mouseClick(teach.train_button, Qt.MouseButton.LeftButton)
    assert teach.training and not teach.train_button.isEnabled()
    qtbot.waitUntil(lambda: teach.point is not None, timeout=GUI_WAIT_MS)
    point = teach.point
    # The loss curve was handed over as it fell, 10 steps at a time, and is the point's own.
    assert len(progress) == 30 and [len(losses) for losses in progress] == list(range(10, 301, 10))
    assert progress[-1] == pytest.approx(point.losses) and not teach.training
    assert (point.name, point.block, point.clicks) == ("chin", panel.current_block(), 10)
    assert point.losses[-1] < point.losses[0] and teach.save_button.isEnabled()
    # A frame it never saw: the yellow cross sits on her chin.
    held_out = 47
    result = show_frame(qtbot, window, held_out, "taught from 10 clicks")
    found = [float(v) for v in result.panel_view.caption.split("found at (")[1].split(")")[0].split(",")]
    x0, y0, x1, y1 = WALK.actors[0].person_box(held_out)
    assert np.hypot(*(np.array(found) - chin(held_out))) < 0.1 * (y1 - y0)
    # Save and load it back.
    saved = teach.save(tmp_path / "chin.npz")
    teach.point = None
    loaded = teach.load(saved)
    np.testing.assert_array_equal(loaded.weights, point.weights)
    # A weight bar opens its channel of the block over the frame.
    result = show_frame(qtbot, window, held_out, "taught from 10 clicks")
    x0, y0, x1, y1, channel = result.panel_view.regions[0]
    bar = panel.picture.widget_point((x0 + x1) / 2, (y0 + y1) / 2)
    qtbot.mouseClick(panel.picture, Qt.MouseButton.LeftButton, pos=QPoint(round(bar.x()), round(bar.y())))
    assert panel.current_mode() == "features" and panel.channel == channel
    result = wait_for_result(qtbot, window, lambda r: r.panel_view is not None and r.panel_view.mode == "features")
    assert f"channel {channel} of" in result.panel_view.caption


def test_one_click_per_frame_undo_clear_and_train_needs_two(qtbot):
    from pose_app.gui.teach_panel import TeachControls

    teach = TeachControls()
    qtbot.addWidget(teach)
    changes = []
    teach.changed.connect(lambda: changes.append(teach.request()))
    image = np.zeros((4, 4, 3), np.uint8)
    teach.add_click(3, image, (10.0, 20.0))
    assert not teach.train_button.isEnabled() and changes[-1].clicks == ((3, 10.0, 20.0),)
    teach.add_click(3, image, (11.0, 21.0))  # the same frame again: the point moves
    teach.add_click(7, image, (30.0, 40.0))
    assert changes[-1].clicks == ((3, 11.0, 21.0), (7, 30.0, 40.0)) and teach.train_button.isEnabled()
    teach.undo()
    assert changes[-1].clicks == ((3, 11.0, 21.0),) and not teach.train_button.isEnabled()
    teach.clear()
    assert changes[-1].clicks == () and not teach.undo_button.isEnabled() and not teach.save_button.isEnabled()
    messages = []
    teach.message.connect(messages.append)
    assert teach.save("/nonexistent/x.npz") is None and "nothing taught yet" in messages[-1]
