"""The feature dock's lab, teaching and tour actions (a mixin of FeaturePanel, which owns the
widgets): clicks that mark a taught point, training it off the GUI thread, occlusion runs and
the guided tour's steps."""

from __future__ import annotations

from pose_app.explain.compose import PanelView
from pose_app.explain.panel import view_kind


class LabActions:
    """FeaturePanel's actions for the lab's parts, the teaching view and the tour."""

    # --- teaching a point ----------------------------------------------------------------------
    def _frame_clicked(self, x: float, y: float) -> None:
        """A click on the frame while teaching: the point on the frame shown."""
        result = self.last_result
        if "teach" in self._controls() and result is not None:
            self.teach.add_click(result.frame.index, result.frame.image, (x, y))

    def train_point(self) -> None:
        """Train the taught point's head on the dock's block, off the GUI thread."""
        engine, block = self.engine(), self.current_block()
        if engine is None or self.info is None or not block:
            self.message.emit("training needs a model: open a source first")
            return
        stride = next(b.stride for b in self.info.feature_blocks if b.name == block)
        self.teach.training_started()
        self.teacher.start(engine, self.teach.clicks, self.teach.name.text().strip() or "my point", block, stride,
                           self.resolution)

    # --- the lab ------------------------------------------------------------------------------
    def _lab_changed(self) -> None:
        if self.lab.current_part() != "occlusion":
            self.occlusion_result = None
        self._enable_for_mode()
        self.request_changed.emit()

    def _showing_occlusion(self) -> bool:
        return "occlusion" in self._controls() and self.occlusion_result is not None

    def run_occlusion(self) -> None:
        """Occlusion sensitivity of the lab's keypoint on the frame shown (off the GUI thread)."""
        engine, result = self.engine(), self.last_result
        if engine is None or result is None:
            self.message.emit("occlusion needs a frame: open a source first")
            return
        self.occlusion_result = None
        self.occlusion.start(engine, result.frame.image, self.lab.keypoint.currentData(), self.resolution,
                             max(120, self.picture.width()))

    def _occlusion_done(self, view: PanelView) -> None:
        self.occlusion_result = view
        if self._showing_occlusion():
            self.picture.set_view(view)
            self.caption.setText(view.caption)
        self.message.emit("occlusion done")

    def _tour_step(self, step) -> None:
        """Show the view a tour step asks for (the lab's controls are already set)."""
        self.mode.blockSignals(True)
        self.mode.setCurrentIndex(self.mode.findData(step.view))
        self.mode.blockSignals(False)
        if view_kind(step.view).opened_by_blocks and self.info is not None:
            blocks = self.info.feature_blocks
            chosen = {"first": blocks[0], "last": blocks[-1]}.get(step.depth, blocks[len(blocks) // 2])
            self.block.blockSignals(True)
            self.block.setCurrentIndex(self.block.findData(chosen.name))
            self.block.blockSignals(False)
        self.channel = None
        self.occlusion_result = None
        self._enable_for_mode()
        self.changed.emit()
