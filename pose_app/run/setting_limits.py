"""The values every numeric setting accepts, in one table: the command line's options refuse
anything else in one line, and the desktop app replaces a stored value outside them by its
default (gui/settings.py). The bounds keep a typo from becoming a minute of work and a
MemoryError (`--resolution 100000`) or a setting the app cannot start with."""

from __future__ import annotations

# name -> (lowest, highest), both included. Input sizes: the longest side the networks are run
# at (a 4K frame's long side is 3840; beyond 2049 px the model sees no more detail, only more
# memory), crops up to 1025 px; sizes too small for a network are refused where the network is known.
SETTING_RANGES: dict[str, tuple[float, float]] = {
    "resolution": (1, 2049),
    "crop_resolution": (1, 1025),
    "threads": (0, 256),
    "max_poses": (1, 100),
    "max_crops": (1, 100),
    "min_pose_score": (0.0, 1.0),
    "part_score_threshold": (0.0, 1.0),
    "min_keypoint_score": (0.0, 1.0),
    "nms_radius": (0.0, 1000.0),
    "redetect_interval_s": (0.0, 3600.0),
    "smooth_min_cutoff": (1e-6, 1000.0),
    "smooth_beta": (0.0, 1000.0),
    "channel_count": (1, 1024),
    "channel_start": (0, 4096),
    "heatmap_keypoint": (-1, 16),
    "camera_width": (0, 16384),
    "camera_height": (0, 16384),
    "camera_fps": (0, 1000),
    "osc_port": (0, 65535),
    "ws_port": (0, 65535),
}


def range_problem(name: str, value: float) -> str | None:
    """Why `value` is not accepted for the setting `name` (None when it is, or has no range)."""
    limits = SETTING_RANGES.get(name)
    if limits is None:
        return None
    low, high = limits
    if not low <= value <= high:
        return f"must be from {low:g} to {high:g}"
    return None
