"""What a frame source yields: `Frame` (one decoded image with its index and media time) and
`SourceInfo` (what the source is)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    index: frame number in the source, 0-based (position in the list for image sources).
    time_s: media time from the container's timestamps (fps-based when it has none); 0.0 for
    still images; seconds since the capture started for cameras and live streams.
    source: the input it came from (for image lists, that image's path).
    """

    image: np.ndarray
    index: int
    time_s: float
    source: str


@dataclass(frozen=True)
class SourceInfo:
    """What a source is. For image lists, width/height are the first image's."""

    name: str
    width: int
    height: int
    fps: float | None
    frame_count: int | None
    is_live: bool
    is_still: bool


def frames_per_second(times: Sequence[float]) -> float | None:
    """Frames per second from the times of consecutive frames (media time or a clock's): the
    intervals between the first and the last over the time between them. None with fewer than
    two frames or no time between them: each caller knows its own fallback (the source's rate,
    or 0 on a status line)."""
    if len(times) < 2 or times[-1] <= times[0]:
        return None
    return (len(times) - 1) / (times[-1] - times[0])
