"""Playing a file at its own speed: `MediaClock` says how long to wait before a frame is due, so
that wall time since the start follows media time since the start (the desktop app's capture
thread and `pose-app process` while streaming both pace files with it)."""

from __future__ import annotations

import time

# A frame this late (seconds) restarts the clock instead of rushing to catch up: after a slow
# stretch the video continues at normal speed.
MAX_PACING_LAG_S = 0.25
# A frame due this far ahead (seconds) means media time jumped (a seek, a loop, a timestamp
# glitch): the clock restarts rather than sleeping through it.
MAX_PACING_LEAD_S = 1.0


class MediaClock:
    """Wall clock against media time. `delay(time_s)`: seconds to wait until the frame with media
    time `time_s` is due (0 for the first frame, or after a jump; see the limits above)."""

    def __init__(self) -> None:
        self._origin: tuple[float, float] | None = None  # (wall clock, media time) at the start

    def restart(self) -> None:
        """The next frame starts the clock again (a seek, a loop, a pause)."""
        self._origin = None

    def delay(self, time_s: float, now: float | None = None) -> float:
        now = time.perf_counter() if now is None else now
        if self._origin is None:
            self._origin = (now, time_s)
            return 0.0
        due = self._origin[0] + (time_s - self._origin[1])
        if now - due > MAX_PACING_LAG_S or due - now > MAX_PACING_LEAD_S:
            self._origin = (now, time_s)
            return 0.0
        return max(0.0, due - now)
