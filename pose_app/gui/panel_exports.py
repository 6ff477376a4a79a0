"""The feature-map dock's teaching PNGs: "Save view" (the picture with the hovered receptive field
and the caption, or the statistics chart as drawn) and "Save all channels" (every channel of the
layer shown as one labelled grid; the lab's patches: every channel's top patches). The PNGs are
made and written in the background (explainer.PngExporter), each under a name reserved at once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject

from pose_app.errors import PoseAppError
from pose_app.explain.compose import all_channels_picture, teaching_picture
from pose_app.gui.explainer import PngExporter
from pose_app.io.output_files import unused_stem

EXPLAINER_PREFIX, CHANNELS_PREFIX = "pose-explainer", "pose-channels"


class PanelExports(QObject):
    """The exports of a FeaturePanel `panel` (its picture, chart, last result, output folder and
    message signal)."""

    def __init__(self, panel):
        super().__init__(panel)
        self.panel = panel
        self.exporter = PngExporter(self)
        self.exporter.saved.connect(lambda path: panel.message.emit(f"Saved {path}"))
        self.exporter.failed.connect(panel.message.emit)

    def layer_values(self) -> tuple[str, np.ndarray] | None:
        """(name, (C, H, W)) of the layer the view shows, for 'save all channels'."""
        result = self.panel.last_result
        view = result.panel_view if result is not None else None
        if view is None or not view.layer or view.all_channels is not None:
            return None
        poses = result.poses
        values = poses.features.get(view.layer)
        if values is None:  # a head: the heatmaps, or one the estimator kept (offsets, displacements)
            values = poses.heatmaps if view.layer == "heatmaps" else poses.heads.get(view.layer)
        return None if values is None else (view.layer, values)

    def new_png(self, prefix: str) -> Path:
        """<output folder>/<prefix>-YYYYmmdd-HHMMSS.png (-2, -3, ... when taken), reserved at once:
        exports written in the background never share a name."""
        while True:
            path = Path(f"{unused_stem(self.panel.output_dir(), prefix, ('.png',))}.png")
            try:
                path.open("x").close()
            except FileExistsError:
                continue
            except OSError as error:
                raise PoseAppError(f"cannot write {path}: {error.strerror or error}") from None
            return path

    def save_view(self, chart: bool) -> Path | None:
        """Write the view as a PNG (picture, receptive-field square and caption; with `chart`, the
        statistics chart as drawn) to the output folder; the path, or None when there is nothing
        to save."""
        panel = self.panel
        if chart:
            if not panel.chart.stats:
                panel.message.emit("nothing to save yet")
                return None
            try:
                path = self.new_png(EXPLAINER_PREFIX)
            except PoseAppError as error:
                panel.message.emit(str(error))
                return None
            if not panel.chart.grab().save(str(path), "PNG"):
                panel.message.emit(f"cannot write {path}")
                return None
            panel.message.emit(f"Saved {path}")
            return path
        view = panel.picture.view
        if view is None or view.picture is None:
            panel.message.emit("nothing to save yet")
            return None
        hover = panel.picture.hover
        return self.export(EXPLAINER_PREFIX, lambda: teaching_picture(view, hover))

    def save_channels(self) -> Path | None:
        """Write every channel of the layer shown as one labelled grid PNG (the lab's patches:
        every channel's top patches); the path, or None."""
        result = self.panel.last_result
        view = result.panel_view if result is not None else None
        if view is not None and view.all_channels is not None:
            return self.export(f"{CHANNELS_PREFIX}-{view.layer}-patches", view.all_channels)
        layer = self.layer_values()
        if layer is None:
            self.panel.message.emit("this view shows no single layer's channels")
            return None
        name, values = layer
        return self.export(f"{CHANNELS_PREFIX}-{name}", lambda: all_channels_picture(values))

    def export(self, prefix: str, make: Callable[[], np.ndarray]) -> Path | None:
        """Make and write the PNG in the background (the exporter says when it is saved)."""
        try:
            path = self.new_png(prefix)
        except PoseAppError as error:
            self.panel.message.emit(str(error))
            return None
        self.exporter.export(make, path)
        return path
