"""Reading a FrameSource off the GUI thread, handing inference only the newest frame.

`FrameMailbox` is a one-slot hand-over between the capture thread and the inference thread:
a new frame replaces an unconsumed one (counted as dropped), so latency never grows when
inference is slower than the source. `CaptureWorker` opens the source (opening a camera can take
seconds), paces video files at their own frame rate, and obeys pause / step / seek / loop.

The worker reads in a daemon `threading.Thread`, not a QThread: a source stuck opening or
reading (a stalled stream, a hung camera driver) can then be abandoned when the user switches
sources or quits, without blocking the GUI thread and without keeping the program alive.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from pose_app.core.frames import Frame, SourceInfo
from pose_app.errors import PoseAppError, one_line
from pose_app.io.frame_source import FrameSource
from pose_app.io.pacing import MediaClock
from pose_app.io.sources import open_source

# Epochs are unique across all capture workers, so a new source also resets tracking.
_EPOCHS = itertools.count()


@dataclass(frozen=True)
class CapturedFrame:
    """A frame plus what the pipeline needs to know about its place in the stream.

    epoch: increases on every seek / loop restart, telling inference to reset tracking.
    captured_at: time.perf_counter() when the frame was read (start of the latency chain).
    is_still: the frame is a still image (not smoothed, no tracked crops: PipelineConfig.build).
    """

    frame: Frame
    epoch: int
    captured_at: float
    is_still: bool = False


class FrameMailbox:
    """One-slot, newest-wins hand-over from capture to inference; counts dropped frames."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: CapturedFrame | None = None
        self.dropped = 0

    def put(self, item: CapturedFrame, *, wait_until_taken: bool = False, stop: threading.Event | None = None) -> None:
        """Leave `item` for the consumer. Replacing an untaken frame drops it, unless
        `wait_until_taken` (process-every-frame mode), which waits for the slot to empty.
        Once `stop` is set nothing is left: checked under the lock, so a producer stopped before
        the consumer cleared the slot can never slip an old source's frame in after that."""
        stopped = stop.is_set if stop is not None else (lambda: False)
        with self._condition:
            if wait_until_taken:
                self._condition.wait_for(lambda: self._item is None or stopped())
            if stopped():
                return
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._condition.notify_all()

    def take(self, timeout_s: float) -> CapturedFrame | None:
        """The newest frame, waiting up to `timeout_s`; None if none arrived."""
        with self._condition:
            self._condition.wait_for(lambda: self._item is not None, timeout=timeout_s)
            item, self._item = self._item, None
            self._condition.notify_all()
            return item

    def wake(self) -> None:
        """Release a producer waiting in put() (used when stopping)."""
        with self._condition:
            self._condition.notify_all()


class CaptureWorker(QObject):
    """Owns one FrameSource in its own daemon thread. Control methods are called from the GUI thread.

    Signals: opened(SourceInfo), failed(str) (the source could not open or stopped with an
    error; the thread ends), ended() (a file reached its end without looping), position(int)
    (index of the frame just delivered), finished() (the thread is about to end).
    """

    opened = Signal(object)
    failed = Signal(str)
    ended = Signal()
    position = Signal(int)
    finished = Signal()

    def __init__(self, spec: str | int, mailbox: FrameMailbox, *, camera_options: dict | None = None,
                 loop: bool = True, max_speed: bool = False,
                 opener: Callable[..., FrameSource] = open_source):
        super().__init__()
        self.spec = spec
        self.opener = opener  # spec, **camera_options -> FrameSource
        self.mailbox = mailbox
        self.camera_options = {k: v for k, v in (camera_options or {}).items() if v}
        self.loop = loop
        self.max_speed = max_speed  # files: every frame as soon as possible; else at their frame rate
        self.info: SourceInfo | None = None
        self.frames_read = 0
        self.source_dropped = 0  # frames a live source skipped before we read (index gaps)
        self._paused = False
        self._drop_baseline = -1  # live sources: index gaps count as dropped from this frame on
        self._thread = threading.Thread(target=self._run, name=f"capture {spec}", daemon=True)
        self._commands: list[tuple[str, int]] = []
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._epoch = next(_EPOCHS)
        self._last_index = -1

    # --- control, from the GUI thread -------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait up to `timeout_s` (None: for ever) for the thread to end; True if it has."""
        if self._thread.ident is not None:
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def is_running(self) -> bool:
        return self._thread.is_alive()

    def set_paused(self, paused: bool) -> None:
        with self._wake:
            if self._paused and not paused:
                # A live source kept running while paused: that gap is not a drop.
                self._drop_baseline = -1
            self._paused = paused
            self._wake.notify_all()

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def last_index(self) -> int:
        """Index of the frame delivered last (-1 before the first)."""
        return self._last_index

    def step(self, frames: int) -> None:
        """Deliver the frame `frames` away from the current one (files; pauses playback)."""
        self._command("step", frames)

    def seek(self, frame_index: int) -> None:
        self._command("seek", frame_index)

    def stop(self) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        self.mailbox.wake()

    def _command(self, name: str, value: int) -> None:
        with self._wake:
            if name == "seek":  # dragging the slider: only the newest position matters
                self._commands = [command for command in self._commands if command[0] != "seek"]
            self._commands.append((name, value))
            self._wake.notify_all()

    # --- the capture thread -----------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._open_and_read()
        finally:
            self.finished.emit()

    def _open_and_read(self) -> None:
        try:
            source = self.opener(self.spec, **self.camera_options)
        except PoseAppError as error:
            self.failed.emit(str(error))
            return
        except Exception as error:  # noqa: BLE001 - OpenCV backends raise odd types; show them
            self.failed.emit(f"cannot open {self.spec}: {one_line(error)}")
            return
        if self._stop.is_set():  # abandoned while opening
            source.close()
            return
        try:
            self.info = source.info
            self.opened.emit(source.info)
            self._read_loop(source)
        except PoseAppError as error:
            self.failed.emit(str(error))
        except Exception as error:  # noqa: BLE001 - a worker thread must report, not die silently
            self.failed.emit(f"reading {self.spec} failed: {one_line(error)}")
        finally:
            source.close()

    def _read_loop(self, source: FrameSource) -> None:
        clock = MediaClock()
        while not self._stop.is_set():
            command = self._next_command()
            if command is None:
                continue
            if command[0] == "seek":
                source.seek(command[1])
                self._epoch = next(_EPOCHS)
                clock.restart()
                if not self._paused:
                    continue
            elif command[0] == "step" and command[1] != 1:
                source.seek(max(0, self._last_index + command[1]))
                self._epoch = next(_EPOCHS)
            frame = source.read()
            if frame is None:
                if source.info.is_live:
                    raise PoseAppError(f"{source.info.name} stopped delivering frames (unplugged?)")
                if self.loop and self._last_index > 0:
                    source.seek(0)
                    self._epoch = next(_EPOCHS)
                    clock.restart()
                    continue
                self.ended.emit()
                self.set_paused(True)
                continue
            if not self._paused and not self.max_speed and not source.info.is_live and not source.info.is_still:
                self._wait_for_media_time(clock.delay(frame.time_s))
            self._deliver(frame, source.info)

    def _next_command(self) -> tuple[str, int] | None:
        """('play', 0) to read on; a queued step/seek; None after a wake-up with nothing to do."""
        with self._wake:
            if self._commands:
                return self._commands.pop(0)
            if not self._paused:
                return ("play", 0)
            self._wake.wait(timeout=0.2)
            return None

    def _wait_for_media_time(self, delay_s: float) -> None:
        """Sleep until the frame is due (MediaClock); a pause, step or stop cuts the wait short."""
        if delay_s <= 0:
            return
        with self._wake:
            self._wake.wait_for(lambda: self._stop.is_set() or self._commands or self._paused, timeout=delay_s)

    def _deliver(self, frame: Frame, info: SourceInfo) -> None:
        if info.is_live and self._drop_baseline >= 0:
            self.source_dropped += max(0, frame.index - self._drop_baseline - 1)
        self._last_index = self._drop_baseline = frame.index
        self.frames_read += 1
        every_frame = self.max_speed and not info.is_live
        self.mailbox.put(CapturedFrame(frame, self._epoch, time.perf_counter(), info.is_still),
                         wait_until_taken=every_frame, stop=self._stop)
        self.position.emit(frame.index)
