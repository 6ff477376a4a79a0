"""Frame-rate and latency bookkeeping for the status bar. A RateMeter may be ticked by a worker
thread and read by the GUI thread (it locks); a LatencyMeter is used by the GUI thread only."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from pose_app.core.frames import frames_per_second
from pose_app.inference.refine import CROP_STAGES

# Latency stages from capture to display, in the order the status bar shows them ("crops": the
# crop refinement's stages together).
LATENCY_STAGES = ("queue", "preprocess", "inference", "decode", "crops", "track", "draw", "show")


class RateMeter:
    """Events per second over the last `window_s` seconds."""

    def __init__(self, window_s: float = 1.0, clock: Callable[[], float] = time.perf_counter):
        self._window_s = window_s
        self._clock = clock
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self) -> None:
        now = self._clock()
        with self._lock:
            self._times.append(now)
            self._forget_before(now - self._window_s)

    def rate(self) -> float:
        with self._lock:
            self._forget_before(self._clock() - self._window_s)
            times = list(self._times)
        measured = frames_per_second(times)
        return 0.0 if measured is None else measured

    def _forget_before(self, oldest: float) -> None:
        while self._times and self._times[0] < oldest:
            self._times.popleft()


class LatencyMeter:
    """Exponential moving average of each stage's seconds (recent frames weigh most)."""

    def __init__(self, smoothing: float = 0.1):
        self._smoothing = smoothing
        self.seconds: dict[str, float] = {}

    def add(self, stage_seconds: dict[str, float]) -> None:
        for stage, value in stage_seconds.items():
            previous = self.seconds.get(stage)
            self.seconds[stage] = value if previous is None else previous + self._smoothing * (value - previous)

    def total(self) -> float:
        return sum(self.seconds.values())

    def summary(self) -> str:
        """e.g. 'latency 41 ms (queue 1, preprocess 2, inference 25, ...)'."""
        shown = dict(self.seconds)
        if any(stage in shown for stage in CROP_STAGES):
            shown["crops"] = sum(shown.pop(stage, 0.0) for stage in CROP_STAGES)
        parts = [f"{stage} {shown[stage] * 1000:.0f}" for stage in LATENCY_STAGES if stage in shown]
        return f"latency {self.total() * 1000:.0f} ms ({', '.join(parts)})" if parts else "latency -"
