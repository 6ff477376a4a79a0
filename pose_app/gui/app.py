"""The desktop app's start: Qt, the remembered settings, the window (`launch`; the command line's
side is cli/app.py).

`pose-app --source walk.mp4 --screenshot shot.png --quit-after-frames 60` runs it unattended:
it shows 60 processed frames, saves a PNG of the window, prints the measured frame rates and
quits (exit status 2 with the message if the source or the model fails).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from pose_app.errors import PoseAppError
from pose_app.gui.main_window import MainWindow
from pose_app.gui.qt_platform import drop_opencv_qt_paths, platform_problem
from pose_app.gui.settings import AppSettings, file_store, read_settings

# Unattended runs give up when no frame was shown for this long (a stuck source or model).
AUTOMATION_TIMEOUT_S = 120


class Automation:
    """Counts shown frames; after `frames` of them saves the screenshot, reports and quits.
    Any message the window shows (bad source, model or provider) ends the run as an error."""

    def __init__(self, window, frames: int, screenshot: str | None):
        self.window = window
        self.frames = frames
        self.screenshot = screenshot
        self.shown_at: list[float] = []
        self.error: str | None = None
        window.frame_shown.connect(self._frame_shown)
        window.message_shown.connect(self._failed)
        self._watchdog = QTimer(window, singleShot=True, interval=AUTOMATION_TIMEOUT_S * 1000,
                                timeout=lambda: self._failed(f"no frame shown for {AUTOMATION_TIMEOUT_S} s"))
        self._watchdog.start()

    def _frame_shown(self, _result) -> None:
        if self.error is not None or len(self.shown_at) >= self.frames:
            return
        self.shown_at.append(time.perf_counter())
        self._watchdog.start()
        if len(self.shown_at) == self.frames:
            self._finish()

    def _failed(self, message: str) -> None:
        if self.error is None and len(self.shown_at) < self.frames:
            self.error = message
            self.window.close()

    def _finish(self) -> None:
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
        rate = (len(self.shown_at) - 1) / span if span > 0 else 0.0
        return (f"pose-app: displayed {len(self.shown_at)} frames in {span:.2f} s = {rate:.1f} fps; "
                f"{self.window.status_text()}")


def launch(
    source: str | None = None,
    settings_file: str | None = None,
    adjust_settings: Callable[[AppSettings], AppSettings] = lambda settings: settings,
    quit_after_frames: int | None = None,
    screenshot: str | None = None,
) -> int:
    """Start Qt and show the window on `source` (default: camera 0). `settings_file`: an .ini file
    instead of the per-user settings; `adjust_settings`: the command line's overrides of the
    remembered settings; `quit_after_frames` / `screenshot`: an unattended run (see above)."""
    app = QApplication.instance()
    if app is None:
        # cv2 is imported by now (it sets its Qt paths on import); Qt reads them in QApplication.
        drop_opencv_qt_paths()
        # Qt aborts with a core dump when its platform plugin cannot load: say what to install.
        problem = platform_problem()
        if problem is not None:
            raise PoseAppError(problem)
        app = QApplication([sys.argv[0]])
    app.setOrganizationName("pose-app")
    app.setApplicationName("pose-app")
    store = file_store(settings_file) if settings_file else QSettings("pose-app", "pose-app")
    remembered = read_settings(store)
    window = MainWindow(store, adjust_settings(remembered), remembered)
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
    return 0
