"""Two networks side by side in the real window: `--view compare` opens the dock on the generated
walker clip, the video pipeline's MoveNet crop engine is the second network, the keypoint menu
picks the heatmaps both show, and the similarity matrix fills over the frames played."""

from __future__ import annotations

import numpy as np
import pytest
from support import wait_for_result

from pose_app.core.skeleton import KEYPOINT_INDEX


def compare_result(phrase: str = ""):
    def condition(result) -> bool:
        view = result.panel_view
        return view is not None and view.mode == "compare" and phrase in view.caption
    return condition


@pytest.mark.parametrize("keypoint", ["left_wrist"])
def test_the_dock_shows_both_networks_on_the_video(make_window, qtbot, walk_clip, tmp_path, keypoint):
    window = make_window(panel_visible=True, panel_view="compare", resolution=257, output_dir=str(tmp_path))
    panel = window.panel
    window.open_source(str(walk_clip))
    result = wait_for_result(qtbot, window, compare_result("MoveNet (movenet-lightning) on the person crop"))
    # Its one control is the keypoint; the block list and the lab's controls are hidden.
    assert panel.form.isRowVisible(panel.keypoint) and not panel.form.isRowVisible(panel.block)
    assert not panel.teach.isVisible()
    assert panel.picture.has_image() and panel.caption.text() == result.panel_view.caption
    # Every PoseNet block is computed for the matrix's rows.
    assert set(result.features_requested) == {b.name for b in window.engine.info.feature_blocks}
    # Playing on, the matrix counts several frames of the clip.
    wait_for_result(qtbot, window, compare_result("over the last 2 frames"))
    window.toggle_pause()
    index = panel.keypoint.findData(KEYPOINT_INDEX[keypoint])
    panel.keypoint.setCurrentIndex(index)
    result = wait_for_result(qtbot, window, compare_result(f"{keypoint} heatmap"))
    picture = result.panel_view.picture
    assert picture.shape[1] >= 134 and picture.shape[0] < picture.shape[1]  # landscape, as the dock
    # The matrix counted several frames of the clip (a paused frame redrawn counts once).
    frames = int(result.panel_view.caption.split("over the last ")[1].split(" frame")[0])
    assert frames >= 2
    assert np.ptp(picture[40:, picture.shape[1] // 2 + 30:]) > 100  # the matrix, right of the heatmaps
