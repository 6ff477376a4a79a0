"""`pose-app` with no command: the desktop app.

`pose-app --source walk.mp4 --screenshot shot.png --quit-after-frames 60` runs it unattended:
it shows 60 processed frames, saves a PNG of the window, prints the measured frame rates and
quits (exit status 2 with the message if the source or the model fails).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from pose_app.errors import PoseAppError

# Unattended runs give up when no frame was shown for this long (a stuck source or model).
AUTOMATION_TIMEOUT_S = 120


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pose_app.cli import add_pipeline_arguments, positive_int

    group = parser.add_argument_group("desktop app (pose-app with no command)")
    group.add_argument("--source", metavar="PATH_OR_INDEX_OR_URL",
                       help="video, image, image folder, camera index (e.g. 0) or stream URL to open "
                            "(default: camera 0; without a camera the window offers to open a file)")
    group.add_argument("--settings", metavar="FILE.ini",
                       help="read and keep the app's settings in this file instead of the per-user settings")
    group.add_argument("--panel", action="store_true", help="start with the feature-map panel open")
    group.add_argument("--max-speed", action="store_true",
                       help="process every frame of a file as fast as possible instead of at its frame rate")
    group.add_argument("--quit-after-frames", type=positive_int, metavar="N",
                       help="automation: quit after N processed frames were shown; prints the measured frame rates")
    group.add_argument("--screenshot", metavar="OUT.png",
                       help="automation: save a PNG of the window when quitting (default: after 30 frames)")
    add_pipeline_arguments(parser, test_time_augmentation=False)


def settings_with_options(settings, args: argparse.Namespace):
    """`settings` (AppSettings) overridden by the command-line options that were given (the app's
    own settings apply to the others; --preset resets the settings it decides)."""
    from pose_app.cli import config_from_args

    settings = settings.with_pipeline_config(config_from_args(args, base=settings.pipeline_config()))
    overrides = {}
    if getattr(args, "panel", False):
        overrides["panel_visible"] = True
    if getattr(args, "max_speed", False):
        overrides["realtime"] = False
    return dataclasses.replace(settings, **overrides)


class Automation:
    """Counts shown frames; after `frames` of them saves the screenshot, reports and quits.
    Any message the window shows (bad source, model or provider) ends the run as an error."""

    def __init__(self, window, frames: int, screenshot: str | None):
        from PySide6.QtCore import QTimer

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


def run(args: argparse.Namespace) -> int:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from pose_app.gui.main_window import MainWindow
    from pose_app.gui.qt_platform import drop_opencv_qt_paths, platform_problem
    from pose_app.gui.settings import file_store, read_settings

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
    store = file_store(args.settings) if getattr(args, "settings", None) else QSettings("pose-app", "pose-app")
    remembered = read_settings(store)
    window = MainWindow(store, settings_with_options(remembered, args), remembered)
    automation = None
    frames = getattr(args, "quit_after_frames", None)
    if frames is not None or getattr(args, "screenshot", None):
        automation = Automation(window, frames if frames is not None else 30, args.screenshot)
    window.resize(window.sizeHint())
    window.show()
    source = getattr(args, "source", None)
    if source is not None:
        window.open_source(source)
    else:
        window.open_camera(0)
    if window.isVisible():
        app.exec()
    if automation is not None and automation.error is not None:
        raise PoseAppError(automation.error)
    return 0
