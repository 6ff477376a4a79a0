"""What the user can set in the window, in sections: `pipeline` (a `PipelineConfig`: how frames
become poses), `view` (the picture and the Angles dock), `source` (looping, pacing, the camera's
mode), `recording`, `stream` and `lab` (the feature-map dock and the lab's choices).

A setting has one name everywhere (the config field, the command-line option's destination, the
stored key after its section, the JSON header key), and names are unique across sections, so
`settings.resolution`, `AppSettings(resolution=257)` and `dataclasses.replace(settings,
resolution=257)` reach the section that holds it. The pipeline section is the PipelineConfig
itself: every field of it the live app uses (all but NOT_IN_APP) is stored and restored without
being listed here, so a new pipeline setting reaches the app, its settings file and its command
line with no edit in gui/.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pose_app.analysis.angle_history import DEFAULT_ANGLES
from pose_app.core.angles import ANGLE_NAMES
from pose_app.draw.render import OverlayStyle
from pose_app.explain.breaks import DEFAULT_BREAKS, PERTURBATIONS, BreaksRequest
from pose_app.explain.compose import PanelRequest
from pose_app.inference.config import PipelineConfig
from pose_app.io.stream_config import Endpoint, StreamConfig

_STYLE = OverlayStyle()
# PipelineConfig settings the live app leaves at their defaults and does not store: test-time
# augmentation (--flip, --scales: several passes per frame, for files; `pose-app` does not offer
# them) and what selects part of one input file (frame step, start, end, a mirrored input).
NOT_IN_APP = frozenset({"scales", "flip", "mirrored_input", "frame_step", "start_s", "end_s"})
# The pipeline settings the app stores: every other one PipelineConfig has, in its order.
PIPELINE_SETTINGS = tuple(name for name in PipelineConfig().settings() if name not in NOT_IN_APP)


@dataclass(frozen=True)
class ViewSettings:
    """The picture: what the overlay draws, the mirror, and the Angles dock."""

    min_keypoint_score: float = _STYLE.min_keypoint_score
    show_points: bool = _STYLE.points
    show_bones: bool = _STYLE.bones
    show_ids: bool = _STYLE.ids
    show_boxes: bool = _STYLE.boxes
    show_angles: bool = False  # the chosen angles written at the joints
    angle_names: str = ",".join(DEFAULT_ANGLES)  # plotted in the angle dock, and drawn with show_angles
    angles_follow_motion: bool = True  # the dock chooses angle_names: the counted angle and the joints that move
    angle_dock_visible: bool = False
    mirror_view: bool = False  # display only: the picture is flipped, inference sees the frame as it is


@dataclass(frozen=True)
class SourceSettings:
    """How sources are read."""

    loop: bool = True
    max_speed: bool = False  # files: every frame as fast as possible; off: at their own frame rate
    camera_width: int = 0  # 0 = the camera's default
    camera_height: int = 0
    camera_fps: int = 0


@dataclass(frozen=True)
class RecordingSettings:
    record_video: bool = False
    output_dir: str = ""  # recordings and snapshots; "" = see settings.output_directory()


@dataclass(frozen=True)
class StreamSettings:
    """Live streaming (Controls: Stream; `pose-app process --osc HOST:PORT --ws HOST:PORT ...`)."""

    stream_osc: bool = False
    osc_host: str = "127.0.0.1"
    osc_port: int = 9000
    osc_format: str = "bundle"  # one of io.stream.OSC_FORMATS
    osc_pixels: bool = False
    stream_ws: bool = False
    ws_host: str = "127.0.0.1"
    ws_port: int = 8765
    stream_angles: bool = False


@dataclass(frozen=True)
class LabSettings:
    """The feature-map dock: its view and channels, and the breaks view's choices (BreaksRequest)."""

    panel_visible: bool = False
    panel_view: str = "features"  # the feature dock's view: one of explain.compose.PANEL_MODES (--view)
    panel_block: str = ""  # "" = the model's middle block
    channel_selection: str = "strongest"  # or "range"
    channel_count: int = 16
    channel_start: int = 0
    heatmap_keypoint: int = -1  # -1 = all keypoints combined
    breaks_kind: str = DEFAULT_BREAKS.kind  # one of explain.breaks.PERTURBATIONS
    breaks_amount: float = DEFAULT_BREAKS.amount  # in the perturbation's unit, clamped to its range
    breaks_part: str = DEFAULT_BREAKS.part  # one of OCCLUDED_PARTS
    breaks_upright: bool = DEFAULT_BREAKS.upright
    breaks_mean_of: str = DEFAULT_BREAKS.mean_of  # one of MEAN_GROUPS


# The sections after the pipeline: section name -> its dataclass. A new section is one dataclass
# here and one field of AppSettings.
SECTIONS: dict[str, type] = {
    "view": ViewSettings, "source": SourceSettings, "recording": RecordingSettings,
    "stream": StreamSettings, "lab": LabSettings,
}
# Every setting's section, by the setting's one name.
SECTION_OF: dict[str, str] = {name: "pipeline" for name in PIPELINE_SETTINGS}
for _section, _kind in SECTIONS.items():
    for _field in dataclasses.fields(_kind):
        assert _field.name not in SECTION_OF, f"setting {_field.name} is in two sections"
        SECTION_OF[_field.name] = _section


def app_pipeline(values: dict[str, Any]) -> PipelineConfig:
    """The pipeline section of these settings (a missing one takes its preset's value; the
    NOT_IN_APP ones their defaults), none marked explicit: the window's preset menu replaces
    every setting the new preset decides."""
    return PipelineConfig.from_settings({name: values[name] for name in PIPELINE_SETTINGS if name in values})


@dataclass(frozen=True, init=False)
class AppSettings:
    """Everything the user can set in the window, in sections; plain values only, so QSettings
    can store it. Built from sections, from settings by their names (`AppSettings(resolution=257)`:
    the other pipeline settings from the preset), or both (what `dataclasses.replace` does)."""

    pipeline: PipelineConfig
    view: ViewSettings
    source: SourceSettings
    recording: RecordingSettings
    stream: StreamSettings
    lab: LabSettings

    def __init__(self, pipeline: PipelineConfig | None = None, **values: Any):
        sections = {name: values.pop(name) for name in list(values) if name in SECTIONS}
        unknown = [name for name in values if name not in SECTION_OF]
        if unknown:
            raise TypeError(f"AppSettings has no setting {', '.join(unknown)}")
        given = {name: value for name, value in values.items() if SECTION_OF[name] == "pipeline"}
        if pipeline is None:
            pipeline = app_pipeline(given)
        elif given:
            pipeline = app_pipeline({**pipeline.settings(), **given})
        object.__setattr__(self, "pipeline", pipeline)
        for section, kind in SECTIONS.items():
            current = sections.get(section) or kind()
            changes = {name: value for name, value in values.items() if SECTION_OF[name] == section}
            object.__setattr__(self, section, dataclasses.replace(current, **changes) if changes else current)

    def __getattr__(self, name: str) -> Any:
        """A setting by its one name, from its section."""
        section = SECTION_OF.get(name)
        if section is None:
            raise AttributeError(f"'AppSettings' object has no attribute '{name}'")
        holder = self.__dict__.get(section)
        if holder is None:  # not built yet (copying, unpickling)
            raise AttributeError(name)
        if section == "pipeline" and not hasattr(holder, name):
            return getattr(holder.decode, name)
        return getattr(holder, name)

    def values(self) -> dict[str, Any]:
        """Every setting by its one name (what is stored)."""
        pipeline = self.pipeline.settings()
        values = {name: pipeline[name] for name in PIPELINE_SETTINGS}
        for section in SECTIONS:
            values |= dataclasses.asdict(getattr(self, section))
        return values

    def pipeline_config(self) -> PipelineConfig:
        """The PipelineConfig of the window's pipeline."""
        return self.pipeline

    def with_pipeline_config(self, config: PipelineConfig) -> AppSettings:
        """A copy whose pipeline settings are those of `config`."""
        return dataclasses.replace(self, pipeline=app_pipeline(config.settings()))

    def with_preset(self, preset: str) -> AppSettings:
        """A copy under another preset: the settings the preset decides take its values."""
        return self.with_pipeline_config(self.pipeline.with_preset(preset))

    def overlay_style(self) -> OverlayStyle:
        view = self.view
        return OverlayStyle(points=view.show_points, bones=view.show_bones, ids=view.show_ids,
                            boxes=view.show_boxes, min_keypoint_score=view.min_keypoint_score,
                            angles=self.chosen_angles() if view.show_angles else ())

    def chosen_angles(self) -> tuple[str, ...]:
        """The angles chosen for the dock and the overlay (unknown stored names are ignored)."""
        return tuple(name for name in self.view.angle_names.split(",") if name in ANGLE_NAMES)

    def panel_request(self, block: str, width: int) -> PanelRequest:
        lab = self.lab
        return PanelRequest(
            mode=lab.panel_view, block=block, how=lab.channel_selection, count=lab.channel_count,
            start=lab.channel_start, keypoint=None if lab.heatmap_keypoint < 0 else lab.heatmap_keypoint,
            width=width,
        )

    def breaks_request(self) -> BreaksRequest:
        """The breaks view's stored choices (the amount within its perturbation's range)."""
        lab = self.lab
        amount = PERTURBATIONS[lab.breaks_kind].clamp(lab.breaks_amount)
        return BreaksRequest(lab.breaks_kind, amount, lab.breaks_part, lab.breaks_upright, lab.breaks_mean_of)

    def with_breaks(self, request: BreaksRequest) -> AppSettings:
        return dataclasses.replace(self, breaks_kind=request.kind, breaks_amount=request.amount,
                                   breaks_part=request.part, breaks_upright=request.upright,
                                   breaks_mean_of=request.mean_of)

    def stream_config(self) -> StreamConfig:
        """What the app streams: the same StreamConfig as `pose-app process --osc ... --ws ...`."""
        stream = self.stream
        return StreamConfig(
            osc=Endpoint(stream.osc_host.strip(), stream.osc_port) if stream.stream_osc else None,
            osc_format=stream.osc_format, osc_pixels=stream.osc_pixels,
            ws=Endpoint(stream.ws_host.strip(), stream.ws_port) if stream.stream_ws else None,
            stream_angles=stream.stream_angles,
        )

    def camera_options(self) -> dict[str, int]:
        source = self.source
        return {"width": source.camera_width, "height": source.camera_height, "fps": source.camera_fps}
