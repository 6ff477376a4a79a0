"""What each stream sender keeps between the pipeline's thread and its own: a bounded queue that
drops the oldest frame, and the latency of the messages it sent."""

from __future__ import annotations

import collections
import threading
import time

import numpy as np

# Frames waiting per receiver; a newer frame beyond this drops the oldest (live data: the newest
# pose matters, a backlog would only add latency).
QUEUE_FRAMES = 4
# Latency percentiles are over the most recent messages sent.
LATENCY_SAMPLES = 1000


class DropOldestQueue:
    """A bounded hand-over between threads: `put` never waits; when full, the oldest item is
    dropped (counted in `dropped`). `get` waits for an item until `close`."""

    def __init__(self, size: int = QUEUE_FRAMES) -> None:
        self._items: collections.deque = collections.deque()
        self._size = size
        self._condition = threading.Condition()
        self._closed = False
        self.dropped = 0

    def put(self, item: object) -> None:
        with self._condition:
            if self._closed:
                return
            if len(self._items) >= self._size:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._condition.notify()

    def get(self) -> object | None:
        """The oldest item, waiting for one; None once closed and empty."""
        with self._condition:
            self._condition.wait_for(lambda: self._items or self._closed)
            return self._items.popleft() if self._items else None

    def close(self, discard: bool = False) -> None:
        """No more items: `get` returns those left (none with `discard`), then None."""
        with self._condition:
            self._closed = True
            if discard:
                self._items.clear()
            self._condition.notify_all()


class LatencyRecord:
    """Seconds from frame captured to message sent, over the last LATENCY_SAMPLES messages."""

    def __init__(self) -> None:
        self._seconds: collections.deque = collections.deque(maxlen=LATENCY_SAMPLES)
        self._lock = threading.Lock()

    def add(self, captured_at: float) -> None:
        with self._lock:
            self._seconds.append(time.perf_counter() - captured_at)

    def percentiles_ms(self) -> tuple[float, float] | None:
        """(p50, p90) in milliseconds; None before the first message."""
        with self._lock:
            seconds = np.asarray(self._seconds)
        if not len(seconds):
            return None
        return float(np.percentile(seconds, 50) * 1000), float(np.percentile(seconds, 90) * 1000)
