"""One pipeline configuration, plain data: presets and the settings they imply.

Every command (`process`, `eval`, `bench`) and the GUI describe how frames become poses with a
`PipelineConfig`; `build_pipeline(config)` (pipeline.py) is the one place a pipeline is assembled
and `PosePipeline.header()` (from the config that built it) the one place a recording's settings
header is made. A setting has one name everywhere: the config field, the command-line option's
destination, the GUI's stored setting and the header key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from pose_app.errors import PoseAppError
from pose_app.inference.crops import CropSettings
from pose_app.inference.decode import DecodeSettings
from pose_app.inference.estimator import Augmentation
from pose_app.inference.model_files import DEFAULT_MODEL
from pose_app.inference.smoothing import DEFAULT_BETA, DEFAULT_MIN_CUTOFF

# What each preset sets; everything not named keeps the PipelineConfig default, which is the
# balanced preset. Measured on
# coco-dev and the shared videos on a 2-core laptop-class CPU (README, "Presets"):
# - fast: the int8 model at a small input, refined on small crops (MoveNet Lightning in video):
#   real time on any laptop;
# - balanced: the int8 model at 513 px (small people stay visible to the first pass), refined on
#   MoveNet crops (Lightning in video, tracked between full-frame passes; Thunder on still images);
# - accurate: offline quality: the stride-8 model on every frame; MoveNet Thunder crops with
#   their mirror images (still images: coco-dev AP 0.477 against 0.450 with PoseNet's stride-8
#   crops, first 200 coco-train images 0.380 against 0.358).
PRESETS: dict[str, dict[str, Any]] = {
    "fast": {"resolution": 257, "crop_resolution": 193, "crop_model": ""},
    "balanced": {},  # the PipelineConfig defaults
    "accurate": {
        "model": "posenet-075-s8", "resolution": 513, "crop_resolution": 353, "crop_flip": True,
        "max_crops": 20, "redetect_interval_s": 0.0, "video_crop_model": "movenet-thunder",
    },
}
DEFAULT_PRESET = "balanced"
# The settings some preset decides; a change of preset resets them (unless set explicitly).
PRESET_DECIDES = frozenset(name for values in PRESETS.values() for name in values)


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that decides how frames become poses (see the README for each setting)."""

    preset: str = DEFAULT_PRESET
    # engine
    model: str = DEFAULT_MODEL
    provider: str = "auto"
    threads: int = 0
    resolution: int = 513
    # full-frame pass: decoding and test-time augmentation
    decode: DecodeSettings = DecodeSettings()
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    # crop refinement
    refine: bool = True
    # The network the crops of still images run ("": the same engine as the full frame, `model`).
    # On coco-dev (balanced, int8 full frame) Thunder's crops score AP 0.467, PoseNet's 0.410,
    # Lightning's 0.414; on the first 500 coco-train images 0.361, 0.329 and 0.320 (both networks
    # were trained on COCO train: the order, not the level, is the finding). Thunder places
    # joints better; PoseNet's crops land on the right person more often (AP50 0.599 vs 0.547)
    # and suit head-and-shoulders portraits. Thunder for balanced and accurate; PoseNet's own
    # crops for fast (speed). docs/accuracy-and-speed.md, "Which crops where".
    crop_model: str = "movenet-thunder"
    # The network the crops of videos, streams and cameras run ("": as `crop_model`): MoveNet,
    # trained on single people in fitness video, keeps legs and bodies on the floor that
    # PoseNet's crops lose, at a quarter of their cost per crop (Lightning).
    video_crop_model: str = "movenet-lightning"
    crop_resolution: int = 257
    crop_flip: bool = False
    max_crops: int = 10
    # Bodies in any orientation: crops turned so that each body stands upright for the network,
    # and frames whose full-frame pass finds only fragments also tried turned (pipeline.py).
    any_orientation: bool = True
    # videos: the full-frame pass at most this many seconds apart, tracked crops in between
    # (0: every frame). A third of a second: a newcomer gets a skeleton within 10 frames at
    # 30 fps, 3 at 10 fps (by frames, 10 at 10 fps missed 5% of people on the shared videos).
    redetect_interval_s: float = 0.33
    # ids and smoothing
    track: bool = True
    smooth: bool = True
    smooth_min_cutoff: float = DEFAULT_MIN_CUTOFF
    smooth_beta: float = DEFAULT_BETA
    # input
    mirrored_input: bool = False
    frame_step: int = 1
    start_s: float = 0.0
    end_s: float | None = None
    # Fields set explicitly (by the user or a caller) rather than by the preset: kept when the
    # preset changes, and what `overrides` lists.
    explicit: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    @classmethod
    def from_preset(cls, preset: str = DEFAULT_PRESET, **overrides: Any) -> PipelineConfig:
        """The preset's settings, then `overrides` (field name -> value; DecodeSettings fields
        may be given by their own names)."""
        if preset not in PRESETS:
            raise PoseAppError(f"unknown preset '{preset}' (choose {', '.join(PRESETS)})")
        decode = {name: overrides.pop(name) for name in list(overrides) if name in _DECODE_NAMES}
        values = {**PRESETS[preset], **overrides}
        config = cls(preset=preset, **values)
        if decode:
            config = dataclasses.replace(config, decode=dataclasses.replace(config.decode, **decode))
        return dataclasses.replace(config, explicit=frozenset(overrides) | frozenset(decode))

    @classmethod
    def from_settings(cls, values: dict[str, Any]) -> PipelineConfig:
        """A config from settings by their names (as `settings()` gives them; a missing one keeps
        its preset's value), none of them marked explicit: a later `with_preset` replaces every
        setting the new preset decides."""
        values = dict(values)
        config = cls.from_preset(values.pop("preset", DEFAULT_PRESET))
        if "scales" in values:
            values["scales"] = tuple(values["scales"])
        return dataclasses.replace(config.with_settings(**values), explicit=frozenset())

    def with_settings(self, **values: Any) -> PipelineConfig:
        """A copy with these settings (field or DecodeSettings names) set explicitly."""
        decode = {name: values.pop(name) for name in list(values) if name in _DECODE_NAMES}
        config = dataclasses.replace(self, decode=dataclasses.replace(self.decode, **decode), **values)
        return dataclasses.replace(config, explicit=self.explicit | frozenset(values) | frozenset(decode))

    def with_preset(self, preset: str) -> PipelineConfig:
        """This config under another preset: the settings presets decide take the new preset's
        values unless they were set explicitly; the others stay."""
        kept = {
            name: value for name, value in self.settings().items()
            if name != "preset" and (name not in PRESET_DECIDES or name in self.explicit)
        }
        kept["scales"] = tuple(kept["scales"])
        explicit = self.explicit
        return dataclasses.replace(PipelineConfig.from_preset(preset, **kept), explicit=explicit)

    @property
    def augmentation(self) -> Augmentation:
        return Augmentation(scales=self.scales, flip=self.flip)

    @property
    def crop_settings(self) -> CropSettings:
        return CropSettings(
            resolution=self.crop_resolution, flip=self.crop_flip, max_crops=self.max_crops, upright=self.any_orientation
        )

    def settings(self) -> dict[str, Any]:
        """Every setting by its one name (decode settings flattened in), for headers and the GUI."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("decode", "explicit")}
        values |= dataclasses.asdict(self.decode)
        values["scales"] = list(self.scales)
        return values


_FIELD_NAMES = {f.name for f in dataclasses.fields(PipelineConfig)} - {"decode", "explicit", "preset"}
_DECODE_NAMES = {f.name for f in dataclasses.fields(DecodeSettings)}
SETTING_NAMES = tuple(sorted(_FIELD_NAMES | _DECODE_NAMES))
# The settings a running pipeline takes without being rebuilt (PosePipeline.retune): decoding
# (thresholds, most people, NMS radius, single pose) and the One Euro filter's parameters. Every
# other one needs new engines, a new estimator, refiner or tracker, or another mode.
RETUNABLE_SETTINGS = frozenset(_DECODE_NAMES | {"smooth_min_cutoff", "smooth_beta"})
