"""The feature panel's views as one registry (explain/panel.py, explain/compose.py: PANEL_VIEWS):
each view is one class that says what it needs, which controls it uses and which layers it shows,
and no code outside the views compares a view's name."""

from __future__ import annotations

import ast

import numpy as np
import pytest
from support import REPO

from pose_app.explain.compose import HEAD_FIELD_MODES, PANEL_MODES, PANEL_VIEWS
from pose_app.explain.lab import LabRequest
from pose_app.explain.panel import CONTROLS, PanelRequest, PanelViewKind, register_views, view_kind, view_opened_by
from pose_app.explain.teach import TaughtPoint, TeachRequest
from pose_app.inference.families.posenet import HEAD_OUTPUTS

TAUGHT = TaughtPoint("chin", "feature_9", 16, np.zeros(8, np.float32), 0.0)

BLOCKS = tuple(f"feature_{n}" for n in range(14))


def test_every_view_is_registered_once_in_the_menu_order():
    assert PANEL_MODES == ("features", "heatmaps", "offsets", "displacements", "stats", "walk", "lab", "teach",
                           "compare", "breaks")
    assert [view.name for view in PANEL_VIEWS] == list(PANEL_MODES)
    assert all(view_kind(name) is view for name, view in zip(PANEL_MODES, PANEL_VIEWS))
    labels = [view.label for view in PANEL_VIEWS]
    assert all(labels) and len(set(labels)) == len(labels)
    assert HEAD_FIELD_MODES == ("offsets", "displacements", "walk")


def test_a_name_is_registered_only_once_and_controls_must_exist():
    class Again(PanelViewKind):
        name = "heatmaps"

    class Odd(PanelViewKind):
        name = "odd-controls"

        def controls(self, request):
            return frozenset({"a knob nobody has"})

    with pytest.raises(ValueError, match="a name of its own"):
        register_views(Again())
    with pytest.raises(ValueError, match="unknown controls"):
        register_views(Odd())
    assert "odd-controls" not in PANEL_MODES and view_kind("heatmaps") is not Again
    with pytest.raises(ValueError, match="unknown panel mode 'odd-controls'"):
        view_kind("odd-controls")


@pytest.mark.parametrize(("request_", "features", "controls", "layers"), [
    (PanelRequest(mode="features", block="feature_5"), ("feature_5",), {"block", "channels", "hover"}, {"feature_5"}),
    (PanelRequest(mode="features", block="feature_5", channel=3), ("feature_5",),
     {"block", "channels", "hover", "back"}, {"feature_5"}),
    (PanelRequest(mode="features"), (), {"block", "channels", "hover"}, {""}),
    (PanelRequest(mode="heatmaps", blocks=BLOCKS), (), {"keypoint", "hover"}, {"heatmaps"}),
    (PanelRequest(mode="offsets", blocks=BLOCKS), (), {"keypoint", "hover"}, {"offsets"}),
    (PanelRequest(mode="displacements", blocks=BLOCKS), (), {"edge"}, {"displacement_fwd", "displacement_bwd"}),
    (PanelRequest(mode="stats", blocks=BLOCKS), BLOCKS, {"chart"}, set(BLOCKS)),
    (PanelRequest(mode="walk", blocks=BLOCKS), (), {"steps"}, set(HEAD_OUTPUTS)),
    (PanelRequest(mode="lab", blocks=BLOCKS), ("feature_0",), {"lab"}, {"feature_0"}),
    (PanelRequest(mode="lab", blocks=BLOCKS, lab=LabRequest(part="pool", block="feature_9")), ("feature_9",),
     {"lab", "block"}, {"feature_9"}),
    (PanelRequest(mode="lab", blocks=BLOCKS, lab=LabRequest(part="fc")), ("feature_13",), {"lab", "hover", "cell"},
     {"feature_13", "heatmaps"}),
    (PanelRequest(mode="lab", blocks=BLOCKS, lab=LabRequest(part="occlusion")), (), {"lab", "occlusion"},
     {"heatmaps"}),
    # Before a point is taught the teaching view draws the frame and the clicks: it reads no block
    # (the pipeline may follow on crops); a taught head reads the dock's block and its own.
    (PanelRequest(mode="teach", block="feature_5", blocks=BLOCKS), (), {"block", "teach", "hover"}, {"feature_5"}),
    (PanelRequest(mode="teach", block="feature_5", blocks=BLOCKS, teach=TeachRequest(point=TAUGHT)),
     ("feature_5", "feature_9"), {"block", "teach", "hover"}, {"feature_5", "feature_9"}),
    (PanelRequest(mode="compare", blocks=BLOCKS), BLOCKS, {"keypoint"}, {*BLOCKS, "heatmaps"}),
    # The breaks view runs the crop network itself: no block of the strip's network is read.
    (PanelRequest(mode="breaks", blocks=BLOCKS), (), {"breaks", "keypoint"}, set()),
])
def test_each_view_says_what_it_needs_uses_and_shows(request_, features, controls, layers):
    kind = request_.kind
    assert request_.features == features
    # Only the breaks view (it runs the crop network itself) and the teaching view before a point
    # is taught are drawn without the full-frame pass.
    assert request_.full_frame == (request_.mode != "breaks" and (request_.mode != "teach" or
                                                                  request_.teach.point is not None))
    assert kind.controls(request_) == controls and controls <= set(CONTROLS)
    assert kind.layers(request_) == layers


def test_a_click_in_the_network_strip_opens_the_view_that_shows_that_layer():
    assert view_opened_by("feature_7", BLOCKS) == "features"
    assert view_opened_by("heatmaps", BLOCKS) == "heatmaps"
    assert view_opened_by("offsets", BLOCKS) == "offsets"
    assert view_opened_by("displacement_fwd", BLOCKS) == view_opened_by("displacement_bwd", BLOCKS) == "displacements"
    assert view_opened_by("feature_7", ()) is None  # not a block of this model
    assert view_opened_by("centers", BLOCKS) is None


def _compared_view_names(path) -> list[str]:
    """`x == "walk"`, `"lab" != mode`, `mode in ("heatmaps", ...)` where x mentions a mode or a
    step's view: comparisons of a view's name, as `file name:line`."""
    names = set(PANEL_MODES)
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        strings = set()
        for operand in operands:
            if isinstance(operand, ast.Constant) and isinstance(operand.value, str):
                strings.add(operand.value)
            elif isinstance(operand, (ast.Tuple, ast.Set, ast.List)):
                strings |= {e.value for e in operand.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
        others = [ast.unparse(o) for o in operands if not isinstance(o, (ast.Constant, ast.Tuple, ast.Set, ast.List))]
        if strings & names and any("mode" in text or text.endswith(".view") for text in others):
            found.append(f"{path.name}:{node.lineno}")
    return found


def test_the_scan_finds_a_comparison_of_a_view_name(tmp_path):
    sample = tmp_path / "scanned_sample.txt"
    sample.write_text('if request.mode == "walk":\n    pass\nif step.view in ("lab", "x"):\n    pass\n'
                      'ok = layer == "heatmaps"\n')
    assert _compared_view_names(sample) == ["scanned_sample.txt:1", "scanned_sample.txt:3"]


def test_no_code_outside_the_views_compares_a_view_name():
    found = [hit for path in sorted((REPO / "pose_app").rglob("*.py")) for hit in _compared_view_names(path)]
    assert found == []
