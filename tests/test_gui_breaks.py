"""What breaks it in the real window: `--view breaks` opens the dock on the generated walker clip,
the perturbation, its slider, the covered part and the upright switch reach the view, and a
paused frame redraws for the slider without sweeping again."""

from __future__ import annotations

from support import wait_for_result

from pose_app.explain.panel import view_kind


def breaks_result(phrase: str = ""):
    def condition(result) -> bool:
        view = result.panel_view
        return view is not None and view.mode == "breaks" and phrase in view.caption
    return condition


def test_the_dock_perturbs_the_person_and_plots_the_scores(make_window, qtbot, walk_clip, tmp_path):
    window = make_window(panel_visible=True, panel_view="breaks", resolution=257, output_dir=str(tmp_path))
    panel, controls = window.panel, window.panel.breaks
    window.open_source(str(walk_clip))
    result = wait_for_result(qtbot, window, breaks_result("on the person's crop turned, 10 amounts"))
    # Its controls: the perturbation and the keypoint; no block list, no lab, no teaching.
    assert controls.isVisible() and panel.form.isRowVisible(panel.keypoint)
    assert not panel.form.isRowVisible(panel.block) and not panel.teach.isVisible() and not panel.lab.isVisible()
    assert controls.upright.isVisible() and not controls.part.isVisible()
    assert panel.picture.has_image() and panel.caption.text() == result.panel_view.caption
    assert result.features_requested == ()  # it runs the crop network itself
    window.toggle_pause()
    controls.upright.setChecked(True)
    wait_for_result(qtbot, window, breaks_result("Stood upright again"))
    controls.kind.setCurrentIndex(controls.kind.findData("occlude"))
    assert controls.part.isVisible() and not controls.upright.isVisible()
    controls.part.setCurrentIndex(controls.part.findData("face"))
    wait_for_result(qtbot, window, breaks_result("grey box over the face"))
    controls.kind.setCurrentIndex(controls.kind.findData("blur"))
    result = wait_for_result(qtbot, window, breaks_result("blurred, 9 amounts"))
    sweeps = window.inference.panel_state("breaks").computed
    controls.set_amount(2.0)
    assert controls.value.text() == "sigma 2.0"
    result = wait_for_result(qtbot, window, breaks_result("at the slider's sigma 2.0"))
    assert window.inference.panel_state("breaks").computed == sweeps  # the slider redrew, no new sweep
    assert result.panel_view.picture.shape[0] < result.panel_view.picture.shape[1]  # landscape, as the dock
    assert view_kind("breaks").controls(panel._shown()) == {"breaks", "keypoint"}
