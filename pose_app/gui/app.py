"""The desktop app's start: Qt, the remembered settings, the window (`launch`; the command line's
side is cli/app.py).

`pose-app --source walk.mp4 --screenshot shot.png --quit-after-frames 60` runs it unattended:
it shows 60 processed frames, saves a PNG of the window, prints the measured frame rates and
quits (exit status 2 with the message if the source or the model fails). A source that ends
sooner without looping (a still image: one frame) ends the run once its last frame is shown.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from pose_app.core.frames import frames_per_second
from pose_app.errors import PoseAppError
from pose_app.gui.main_window import MainWindow
from pose_app.gui.qt_platform import drop_opencv_qt_paths, platform_abort_explained, platform_problem
from pose_app.gui.settings import (
    AppSettings,
    file_store,
    read_settings,
    reset_settings,
    settings_file_problem,
    store_name,
)

# Unattended runs give up when no frame was shown for this long (a stuck source or model).
AUTOMATION_TIMEOUT_S = 120
# How often Qt's event loop lets Python run its signal handlers (Python runs them only between
# bytecodes, and Qt's loop is C++): the longest a Ctrl-C or SIGTERM waits to be seen.
SIGNAL_CHECK_MS = 200


def stop_on_signals(window) -> None:
    """SIGINT (Ctrl-C) and SIGTERM (logout, `kill`) close the window as Quit does, from Qt's event
    loop: the recording is finished ("complete": false, the video closed, the repetitions
    written), the settings saved. A second signal while closing is ignored. Leaves the handlers
    alone off the main thread (where Python cannot set them)."""
    def close(signum: int, _frame: object) -> None:
        if getattr(window, "stopped_by_signal", None) is not None:
            return
        window.stopped_by_signal = signum
        QTimer.singleShot(0, window.close_on_signal)

    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, close)
    except ValueError:
        return
    # A timer that does nothing but return to Python now and then, so the handler runs.
    window._signal_timer = QTimer(window, interval=SIGNAL_CHECK_MS, timeout=lambda: None)
    window._signal_timer.start()


class Automation:
    """Counts shown frames; after `frames` of them, or once the last frame of a source that ended
    without looping is shown (a still image has one), saves the screenshot, reports and quits.
    Any message the window shows (bad source, model or provider) ends the run as an error."""

    def __init__(self, window, frames: int, screenshot: str | None):
        self.window = window
        self.frames = frames
        self.screenshot = screenshot
        self.shown_at: list[float] = []
        self.error: str | None = None
        self.done = False
        self.source_ended = False
        self._last_shown_index: int | None = None
        self._end_index: int | None = None  # the last frame of a source that ended
        window.frame_shown.connect(self._frame_shown)
        window.message_shown.connect(self._failed)
        window.source_ended.connect(self._source_ended)
        self._watchdog = QTimer(window, singleShot=True, interval=AUTOMATION_TIMEOUT_S * 1000,
                                timeout=lambda: self._failed(f"no frame shown for {AUTOMATION_TIMEOUT_S} s"))
        self._watchdog.start()

    def _frame_shown(self, result) -> None:
        if self.error is not None or self.done:
            return
        self.shown_at.append(time.perf_counter())
        self._last_shown_index = result.frame.index
        self._watchdog.start()
        if len(self.shown_at) == self.frames or self._last_shown_index == self._end_index:
            self._finish()

    def _source_ended(self, last_index: int) -> None:
        # The capture thread reports the end right after handing over the last frame, which is
        # usually still being processed: the run ends when that frame is shown.
        if self.error is not None or self.done:
            return
        self.source_ended = True
        self._end_index = last_index
        if self._last_shown_index == last_index:
            self._finish()

    def _failed(self, message: str) -> None:
        if self.error is None and not self.done:
            self.error = message
            self.window.close()

    def _finish(self) -> None:
        self.done = True
        try:
            if self.screenshot:
                self.window.screenshot(self.screenshot)
        except PoseAppError as error:
            self.error = str(error)
        print(self.report(), flush=True)
        self.window.close()

    def report(self) -> str:
        """Displayed frame rate between the first and the last shown frame, plus the status line."""
        span = self.shown_at[-1] - self.shown_at[0] if len(self.shown_at) > 1 else 0.0
        rate = frames_per_second(self.shown_at) or 0.0
        count = len(self.shown_at)
        ended = " (the source ended)" if self.source_ended and count < self.frames else ""
        return (f"pose-app: displayed {count} frame{'s' if count != 1 else ''}{ended} in {span:.2f} s "
                f"= {rate:.1f} fps; {self.window.status_text()}")


def launch(
    source: str | None = None,
    settings_file: str | None = None,
    adjust_settings: Callable[[AppSettings], AppSettings] = lambda settings: settings,
    quit_after_frames: int | None = None,
    screenshot: str | None = None,
    reset: bool = False,
    record: bool = False,
) -> int:
    """Start Qt and show the window on `source` (default: camera 0). `settings_file`: an .ini file
    instead of the per-user settings (refused, before anything starts, when it is another kind
    of file); `adjust_settings`: the command line's overrides of the remembered settings;
    `quit_after_frames` / `screenshot`: an unattended run (see above); `reset`: forget the
    remembered settings and start from the defaults; `record`: start recording at the first
    frame. SIGINT (Ctrl-C) and SIGTERM close the window as Quit does: the recording is
    finished, its JSON saying "complete": false."""
    if settings_file:
        problem = settings_file_problem(settings_file)
        if problem is not None:
            raise PoseAppError(problem)
    app = QApplication.instance()
    if app is None:
        # cv2 is imported by now (it sets its Qt paths on import); Qt reads them in QApplication.
        drop_opencv_qt_paths()
        # Qt aborts with a core dump when its platform plugin cannot load: say what to install.
        problem = platform_problem()
        if problem is not None:
            raise PoseAppError(problem)
        # What the check cannot foresee (a display that goes away after it) still ends in one line.
        with platform_abort_explained():
            app = QApplication([sys.argv[0]])
    app.setOrganizationName("pose-app")
    app.setApplicationName("pose-app")
    store = file_store(settings_file) if settings_file else QSettings("pose-app", "pose-app")
    warnings: list[str] = []
    if reset:
        reset_settings(store)
        remembered = AppSettings()
        print(f"pose-app: settings reset to the defaults ({store_name(store)})", file=sys.stderr)
    else:
        remembered = read_settings(store, warnings)
    for warning in warnings:
        print(f"pose-app: warning: {warning}", file=sys.stderr)
    window = MainWindow(store, adjust_settings(remembered), remembered)
    for warning in warnings:
        window.statusBar().showMessage(warning, 15000)
    if record:
        window.record_when_ready()
    stop_on_signals(window)
    automation = None
    if quit_after_frames is not None or screenshot:
        automation = Automation(window, quit_after_frames if quit_after_frames is not None else 30, screenshot)
    window.resize(window.sizeHint())
    window.show()
    if source is not None:
        window.open_source(source)
    else:
        window.open_camera(0)
    if window.isVisible():
        app.exec()
    if automation is not None and automation.error is not None:
        raise PoseAppError(automation.error)
    stopped = getattr(window, "stopped_by_signal", None)
    if stopped is not None:
        print(f"pose-app: stopped by {signal.Signals(stopped).name}{window.closing_note()}", file=sys.stderr)
        return 128 + stopped
    return 0
