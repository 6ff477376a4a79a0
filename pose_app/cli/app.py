"""`pose-app` with no command: the desktop app's options, applied over the remembered settings.

`pose-app --source walk.mp4 --screenshot shot.png --quit-after-frames 60` runs it unattended:
it shows 60 processed frames, saves a PNG of the window, prints the measured frame rates and
quits (exit status 2 with the message if the source or the model fails). A source that ends
sooner without looping (a still image: one frame) ends the run once its last frame is shown."""

from __future__ import annotations

import argparse
import dataclasses

from pose_app.cli.options import add_pipeline_arguments, config_from_args, positive_int
from pose_app.explain.compose import PANEL_MODES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("desktop app (pose-app with no command)")
    group.add_argument("--source", metavar="PATH_OR_INDEX_OR_URL",
                       help="video, image, image folder, camera index (e.g. 0) or stream URL to open "
                            "(default: camera 0; without a camera the window offers to open a file)")
    group.add_argument("--settings", metavar="FILE.ini",
                       help="read and keep the app's settings in this file instead of the per-user settings "
                            "(only a new, empty or pose-app settings file is ever written)")
    group.add_argument("--reset-settings", action="store_true",
                       help="forget the remembered settings (per-user, or those of --settings FILE) and start "
                            "from the defaults")
    group.add_argument("--record", action="store_true",
                       help="start recording at the first frame (as R does; files in the output folder)")
    group.add_argument("--panel", action="store_true", help="start with the feature-map panel open")
    group.add_argument("--view", choices=PANEL_MODES, metavar="NAME",
                       help=f"the feature-map panel's view: {', '.join(PANEL_MODES)} (with --panel, the panel opens on "
                            "it; for this run only, as every option)")
    group.add_argument("--max-speed", action="store_true",
                       help="process every frame of a file as fast as possible instead of at its frame rate")
    group.add_argument("--quit-after-frames", type=positive_int, metavar="N",
                       help="automation: quit after N processed frames were shown, or sooner when a source that does not "
                            "loop ends (a still image: after its one frame); prints the measured frame rates")
    group.add_argument("--screenshot", metavar="OUT.png",
                       help="automation: save a PNG of the window when quitting (default: after 30 frames)")
    add_pipeline_arguments(parser, test_time_augmentation=False)


def settings_with_options(settings, args: argparse.Namespace):
    """`settings` (AppSettings) overridden by the command-line options that were given (the app's
    own settings apply to the others; --preset resets the settings it decides)."""
    settings = settings.with_pipeline_config(config_from_args(args, base=settings.pipeline_config()))
    overrides = {}
    if getattr(args, "panel", False):
        overrides["panel_visible"] = True
    if getattr(args, "max_speed", False):
        overrides["max_speed"] = True
    if getattr(args, "view", None):
        overrides["panel_view"] = args.view
    return dataclasses.replace(settings, **overrides)


def run(args: argparse.Namespace) -> int:
    # Qt (PySide6) loads only for the desktop app, so the other commands start without it.
    from pose_app.gui.app import launch

    return launch(
        source=getattr(args, "source", None),
        settings_file=getattr(args, "settings", None),
        adjust_settings=lambda remembered: settings_with_options(remembered, args),
        quit_after_frames=getattr(args, "quit_after_frames", None),
        screenshot=getattr(args, "screenshot", None),
        reset=getattr(args, "reset_settings", False),
        record=getattr(args, "record", False),
    )
