"""`pose-app` command line: the desktop app by default, plus process, eval, bench, angles, plot, reps, holds.

Every command is a module of this package with `add_arguments(parser)` and `run(args) -> int`;
the heavy optional dependencies (Qt for the app, matplotlib, Ray) load inside `run`, so
`pose-app process` starts without Qt.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from pose_app import __version__
from pose_app.cli import angles, app, bench, compare, evaluate, holds, plot, process, reps
from pose_app.errors import PoseAppError, one_line

# name -> (module, one-line help). The desktop app (cli/app.py) is the default command.
COMMANDS = {
    "process": (process, "detect poses in videos, images, folders or streams; write CSV/JSON/video"),
    "eval": (evaluate, "measure COCO keypoint AP/AR on a COCO-format keypoint set"),
    "bench": (bench, "measure per-stage latency, frames/s and memory"),
    "compare": (compare, "compare presets on your own videos, no ground truth needed: people, legs and keypoints found, agreement"),
    "angles": (angles, "joint and segment angles of a keypoint CSV, as an angles CSV"),
    "plot": (plot, "angles over time, range of motion and keypoint trajectories as a PNG/SVG figure"),
    "reps": (reps, "repetitions of an exercise in a keypoint CSV: a CSV row per repetition, and a report"),
    "holds": (holds, "holds of an isometric exercise (plank, wall sit...) in a keypoint CSV: duration, breaks, body line"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pose-app",
        description="Real-time human pose detection. With no command, opens the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"pose-app {__version__}")
    app.add_arguments(parser)
    parser.set_defaults(command_module=app)
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.set_defaults(command_module=module)
    return parser


# Set (to anything) to see where an unexpected error came from, as a traceback.
TRACEBACK_ENV = "POSE_APP_TRACEBACK"
EXIT_UNEXPECTED = 70  # EX_SOFTWARE: an error pose-app did not foresee


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.command_module.run(args)
    except PoseAppError as error:
        print(f"pose-app: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pose-app: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("pose-app: error: out of memory (a smaller --resolution, fewer inputs at a time?)", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - one line, never a traceback, even for a bug
        if os.environ.get(TRACEBACK_ENV):
            raise
        print(
            f"pose-app: error: unexpected {type(error).__name__}: {one_line(error)} (a bug in pose-app: please "
            f"report it; {TRACEBACK_ENV}=1 shows where)",
            file=sys.stderr,
        )
        return EXIT_UNEXPECTED


if __name__ == "__main__":
    sys.exit(main())
