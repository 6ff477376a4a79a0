"""Running the PosePipeline off the GUI thread and preparing everything the window paints.

The worker takes the newest frame from the FrameMailbox, runs `PosePipeline.process` (the one
inference path; feature outputs are requested only while the feature panel wants them), writes
the recording, draws the overlay and the panel picture, and emits a `ViewResult`. The GUI thread
only wraps the ready BGR arrays in QImages and paints them. Everything the feature panel's views
need is prepared here too (compose.compose_panel): tile grids, pictures over the frame, arrows,
block statistics, the first conv's filters (read once per engine) and the decoding walk (once
per frame and decode settings).

A recording handed over by the window is started here, by the pipeline that processes its first
frame (its header names that pipeline), once every settings change asked for before it has been
applied; while it runs, further changes wait: the header names the settings of every row.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QThread, Signal

from pose_app.analysis.angle_history import FrameAngles
from pose_app.core.angles import compute_angles
from pose_app.core.frames import Frame
from pose_app.core.poses import FramePoses
from pose_app.draw.render import OverlayStyle, compose_view
from pose_app.errors import PoseAppError, one_line
from pose_app.explain.compose import (
    PanelContext,
    PanelRequest,
    PanelView,
    compose_in,
    panel_ready,
)
from pose_app.explain.decode_walk import WalkStep, decoding_walk
from pose_app.explain.network import first_conv_filters
from pose_app.explain.panel import view_state
from pose_app.gui.capture_worker import CapturedFrame, FrameMailbox
from pose_app.gui.stats import RateMeter
from pose_app.inference.config import PipelineConfig
from pose_app.inference.engine import PoseEngine
from pose_app.inference.pipeline import PosePipeline, build_pipeline, open_engine
from pose_app.io.recording import Recording
from pose_app.io.stream import PoseStreams
from pose_app.run.frame_loop import process_frame

# How often the idle worker looks for new settings while no frame arrives (seconds).
POLL_S = 0.05


@dataclass(frozen=True)
class ViewOptions:
    """How the overlay is drawn. max_size: the view widget's size in pixels (w, h)."""

    style: OverlayStyle = OverlayStyle()
    mirror: bool = False
    max_size: tuple[int, int] | None = None
    angle_series: bool = False  # compute every angle of every person for the angle dock


@dataclass
class ViewResult:
    """One processed frame, ready to paint."""

    frame: Frame
    poses: FramePoses
    view: np.ndarray  # BGR, overlay drawn, mirrored if asked
    mirrored: bool
    panel: np.ndarray | None  # BGR panel picture, None when the panel is hidden
    panel_caption: str
    features_requested: tuple[str, ...]
    emitted_at: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    panel_view: PanelView | None = None  # the panel picture with what clicks and hovers read
    angles: FrameAngles | None = None  # with ViewOptions.angle_series


def frame_angles(frame: Frame, poses: FramePoses) -> FrameAngles:
    """Every angle of every person of a frame, smoothed and (when smoothed) unsmoothed."""
    unsmoothed = None if poses.unsmoothed_keypoints is None else compute_angles(poses.unsmoothed_keypoints)[0]
    degrees, confidence = compute_angles(poses.keypoints)
    return FrameAngles(frame.time_s, poses.ids, degrees, unsmoothed, confidence)


class InferenceWorker(QThread):
    """Signals: result(ViewResult); engine_ready(PoseEngine); engine_failed(str, PipelineConfig or
    None): the engine could not be built, the previous one (whose config is given) keeps running;
    failed(str): a frame could not be processed; recording_failed(str): the recording could not
    be written and was stopped (closed as incomplete). `rate` counts processed frames per second."""

    result = Signal(object)
    engine_ready = Signal(object)
    engine_failed = Signal(str, object)
    failed = Signal(str)
    recording_failed = Signal(str)

    def __init__(self, mailbox: FrameMailbox, engine_config: PipelineConfig, view: ViewOptions):
        super().__init__()
        self.mailbox = mailbox
        self._lock = threading.Lock()  # guards the settings below
        # A lock of its own: encoding a video frame must not hold up set_view / set_panel.
        self._recording_lock = threading.Lock()
        self._pending_engine: PipelineConfig | None = engine_config
        self._view = view
        self._panel: PanelRequest | None = None
        self._recording: Recording | None = None  # started by this thread at its first frame
        self._streams: PoseStreams | None = None  # every processed frame goes to them (io/stream.py)
        self._refresh = False
        self._stop = threading.Event()
        self._pipeline: PosePipeline | None = None
        self._is_still = False  # the pipeline's kind: for still images or for videos
        # The last frame, its poses and the engine config they were computed with.
        self._last: tuple[CapturedFrame, FramePoses, PipelineConfig] | None = None
        self._epoch = -1
        self.engine: PoseEngine | None = None
        self.engine_config: PipelineConfig | None = None
        self.rate = RateMeter()
        self._filters: tuple[PoseEngine, np.ndarray | None] | None = None  # the first conv's, per engine
        self._walk: tuple[FramePoses, object, list[WalkStep]] | None = None  # poses, decode settings, steps
        # What the panel's views keep between frames (PanelContext.state; the lab's filters, head
        # and top patches of this session).
        self._panel_state: dict[str, object] = {}

    # --- settings, from the GUI thread ------------------------------------------------------
    @property
    def pipeline(self) -> PosePipeline | None:
        """The pipeline frames currently run through (None until the first engine loads)."""
        return self._pipeline

    def panel_state(self, view: str) -> object | None:
        """What the panel's view `view` keeps between frames (e.g. the lab's LabSession), None
        before it drew a frame."""
        return self._panel_state.get(view)

    def set_engine_config(self, config: PipelineConfig) -> None:
        with self._lock:
            self._pending_engine = config
            self._refresh = True

    def set_view(self, view: ViewOptions) -> None:
        with self._lock:
            self._view = view
            self._refresh = True

    def set_panel(self, panel: PanelRequest | None) -> None:
        """None while the panel is hidden: then no feature outputs are computed at all."""
        with self._lock:
            self._panel = panel
            self._refresh = True

    def start_recording(self, recording: Recording) -> None:
        """Write every frame processed from now on to `recording` (not yet started: this thread
        starts it with the pipeline that processes its first frame)."""
        with self._recording_lock:
            self._recording = recording

    def stop_recording(self) -> Recording | None:
        """Stop writing frames and hand the recording back for the caller to finish. One that got
        no frame yet is started now, by the current pipeline, so that its files exist."""
        with self._recording_lock:
            recording, self._recording = self._recording, None
        if recording is not None and not recording.started:
            recording.start(self._pipeline)
        return recording

    def set_streams(self, streams: PoseStreams | None) -> PoseStreams | None:
        """Send every frame processed from now on to `streams` (None: stop); returns the previous
        ones for the caller to close."""
        with self._lock:
            previous, self._streams = self._streams, streams
        return previous

    def stop(self) -> None:
        self._stop.set()

    # --- the worker thread ------------------------------------------------------------------
    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self._apply_engine_config()
            except PoseAppError as error:
                self.engine_failed.emit(str(error), self.engine_config)
            except Exception as error:  # noqa: BLE001 - the window must say why, not lose the worker
                self.engine_failed.emit(f"cannot load the engine: {type(error).__name__}: {one_line(error)}",
                                        self.engine_config)
            try:
                captured = self.mailbox.take(POLL_S)
                if captured is not None:
                    self._process(captured)
                elif self._take_refresh() and self._last is not None:
                    self._redo_last()
            except PoseAppError as error:
                self.failed.emit(str(error))
            except Exception as error:  # noqa: BLE001 - keep the window alive and say what broke
                self.failed.emit(f"inference failed: {type(error).__name__}: {one_line(error)}")

    def _apply_engine_config(self) -> None:
        recording = self._recording
        if recording is not None and recording.started:
            return  # the recording's header names the running pipeline: changes wait until it ends
        with self._lock:
            config, self._pending_engine = self._pending_engine, None
            if config is not None:
                # Show the paused frame with the new config, even when a redraw for the same
                # change already ran with the old one (the change arrived mid-iteration).
                self._refresh = True
        if config is None or config == self.engine_config:
            return
        if self._pipeline is not None and self.engine_config is not None and not self._pipeline.retune(config):
            # Thresholds, max people and smoothing parameters: tracks and filters carry on, and
            # the header names the settings in force.
            self.engine_config = config
            return
        if self.engine_config is None or (config.model, config.provider, config.threads) != (
            self.engine_config.model, self.engine_config.provider, self.engine_config.threads
        ):
            engine = open_engine(config)
        else:
            engine = self.engine
        self._pipeline = build_pipeline(config, is_still=self._is_still, engine=engine)
        self.engine, self.engine_config = engine, config
        self.engine_ready.emit(engine)

    def _take_refresh(self) -> bool:
        with self._lock:
            refresh, self._refresh = self._refresh, False
        return refresh

    def _process(self, captured: CapturedFrame) -> None:
        if self._pipeline is None:
            return
        started = time.perf_counter()
        recording = self._recording
        # Still images are not smoothed, videos are; a started recording keeps the pipeline its
        # header names (as for settings changes) until it ends.
        if captured.is_still != self._is_still and not (recording is not None and recording.started):
            self._is_still = captured.is_still
            self._pipeline = build_pipeline(self.engine_config, is_still=self._is_still, engine=self.engine)
        elif captured.epoch != self._epoch:  # seek or loop restart: tracks and filters start over
            self._pipeline.reset()
        self._epoch = captured.epoch
        with self._lock:
            panel, view = self._panel, self._view
            self._refresh = False  # this frame is shown with the current settings anyway
        # The panel shows the full-frame pass's heads or features: its view decides per frame
        # whether this frame runs that pass (PanelViewKind.frame_needs: the maps' views every
        # frame, the compare view the frames it adds, breaks never); otherwise tracked crops.
        needs = panel is not None and panel.kind.frame_needs(
            panel, view_state(self._panel_state, panel.kind), captured.frame.index, captured.frame.image)
        features = panel.features if needs else ()
        with self._recording_lock:
            recording = self._recording_for_this_frame()
        with self._lock:
            streams = self._streams
        sinks = [lambda *_: self.rate.tick()]
        if recording is not None:
            sinks.append(lambda frame, poses, _: self._write_if_recording(recording, frame, poses))
        if streams is not None:  # returns at once: the senders have threads of their own
            sinks.append(streams.send)
        poses = process_frame(self._pipeline, captured.frame, sinks, captured_at=captured.captured_at,
                              features=features, full_frame=needs)
        self._last = (captured, poses, self.engine_config)
        stages = {"queue": started - captured.captured_at, **poses.timings}
        self._emit(captured, poses, view, panel, features, stages, needs)

    def _recording_for_this_frame(self) -> Recording | None:
        """The recording this frame goes into (call holding the recording lock): a new one is
        started here, by the pipeline about to process the frame, unless a settings change is
        still pending (the next loop applies it first; this frame is not recorded)."""
        recording = self._recording
        if recording is None or recording.started:
            return recording
        with self._lock:
            if self._pending_engine is not None:
                return None
        try:
            recording.start(self._pipeline)
        except Exception as error:  # noqa: BLE001 - the window must say why and stop recording
            self._recording_failed(recording, error)
            return None
        return recording

    def _write_if_recording(self, recording: Recording, frame: Frame, poses: FramePoses) -> None:
        with self._recording_lock:
            if recording is self._recording:  # not stopped meanwhile
                self._write(recording, frame, poses)

    def _write(self, recording: Recording, frame: Frame, poses: FramePoses) -> None:
        try:
            recording.write(frame, poses)
        except Exception as error:  # noqa: BLE001 - e.g. a full disk: stop, keep what was written
            self._recording_failed(recording, error)

    def _recording_failed(self, recording: Recording, error: Exception) -> None:
        """Drop the recording (call holding the recording lock), close it as incomplete, say why."""
        self._recording = None
        try:
            recording.finish(complete=False)
        except Exception:  # noqa: BLE001, S110 - the first error is the one to report
            pass
        message = str(error) if isinstance(error, PoseAppError) else f"{type(error).__name__}: {one_line(error)}"
        self.recording_failed.emit(f"recording stopped: {message}")

    def _redo_last(self) -> None:
        """Settings changed while no new frame comes (paused): show the last frame again. Poses
        from other engine / decode settings are computed again; a feature output the panel now
        needs is computed alone, leaving poses and tracks as they are (a recording goes on)."""
        captured, poses, config = self._last
        with self._lock:
            panel, view = self._panel, self._view
        features = panel.features if panel is not None else ()
        if config != self.engine_config:
            self._pipeline.reset()  # the same frame again must not look like zero elapsed time
            poses = self._pipeline.process(captured.frame, features=features,
                                           full_frame=panel is not None and panel.full_frame)
        elif panel is not None and not panel_ready(panel, poses):
            computed = self._pipeline.estimator.estimate(captured.frame.image, features, keep_heads=True)
            poses = dataclasses.replace(
                poses, features=computed.features, heatmaps=computed.heatmaps, transform=computed.transform,
                heads=computed.heads,
            )
        self._last = (captured, poses, self.engine_config)
        self._emit(captured, poses, view, panel, features, dict(poses.timings))

    def _emit(self, captured: CapturedFrame, poses: FramePoses, view: ViewOptions, panel: PanelRequest | None,
              features: tuple[str, ...], stages: dict[str, float], needs: bool = True) -> None:
        started = time.perf_counter()
        image = captured.frame.image
        picture = compose_view(image, poses, view.style, mirror=view.mirror, max_size=view.max_size)
        panel_view = self._compose_panel(captured, poses, panel, view.mirror, needs)
        angles = frame_angles(captured.frame, poses) if view.angle_series else None
        stages["draw"] = time.perf_counter() - started
        self.result.emit(ViewResult(
            frame=captured.frame, poses=poses, view=picture, mirrored=view.mirror,
            panel=panel_view.picture if panel_view else None, panel_caption=panel_view.caption if panel_view else "",
            features_requested=features, emitted_at=time.perf_counter(), stage_seconds=stages, panel_view=panel_view,
            angles=angles,
        ))

    def _compose_panel(self, captured: CapturedFrame, poses: FramePoses, panel: PanelRequest | None,
                       mirror: bool, needs: bool = True) -> PanelView | None:
        """The panel's view of this frame (None while the panel is hidden or its outputs are
        missing), with the first conv's filters and the decoding walk when the view needs them.
        Without `needs` (the view said this frame needs no full-frame pass) it draws from what it kept."""
        if panel is None or self.engine is None or not panel_ready(panel, poses, needs):
            return None
        context = PanelContext(self.engine.info, mirror, filters=self._first_conv_filters,
                               walk=lambda: self._decoding_walk(poses), frame_index=captured.frame.index,
                               engine=self.engine, crop_engine=self._crop_engine(), state=self._panel_state)
        return compose_in(captured.frame.image, poses, panel, context)

    def _crop_engine(self) -> PoseEngine | None:
        """The engine the running pipeline's crops run (the compare view's second network when it
        is of another family); None without crops."""
        refiner = self._pipeline.refiner if self._pipeline is not None else None
        return refiner.engine if refiner is not None else None

    def _first_conv_filters(self) -> np.ndarray | None:
        """The engine's first conv kernels (read once per engine); None when the model's first
        layer is not a conv on the image."""
        if self._filters is None or self._filters[0] is not self.engine:
            try:
                filters = first_conv_filters(self.engine)
            except PoseAppError:
                filters = None
            self._filters = (self.engine, filters)
        return self._filters[1]

    def _decoding_walk(self, poses: FramePoses) -> list[WalkStep]:
        """The decoding of the full-frame pass's heads, as steps in frame pixels (once per poses
        and decode settings: stepping through a paused frame decodes it once)."""
        settings = self._pipeline.estimator.settings
        if self._walk is None or self._walk[0] is not poses or self._walk[1] != settings:
            steps = decoding_walk(poses.heatmaps, poses.heads["offsets"], poses.heads["displacement_fwd"], poses.heads["displacement_bwd"],
                                  self.engine.info.output_stride, settings, poses.transform)
            self._walk = (poses, settings, steps)
        return self._walk[2]
