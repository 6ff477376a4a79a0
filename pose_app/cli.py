"""`pose-app` command line: the desktop app by default, plus process / eval / bench.

Every command module exposes `add_arguments(parser)` and `run(args) -> int` and imports its heavy
dependencies inside `run`, so `pose-app process` starts without loading Qt.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from typing import Sequence

from pose_app import __version__
from pose_app.errors import PoseAppError

# name -> (module, one-line help). The module `pose_app.gui.app` is the default command.
COMMANDS = {
    "process": ("pose_app.process", "detect poses in videos, images, folders or streams; write CSV/JSON/video"),
    "eval": ("pose_app.evaluate", "measure COCO keypoint AP/AR on a COCO-format keypoint set"),
    "bench": ("pose_app.bench", "measure per-stage latency, frames/s and memory"),
}
GUI_MODULE = "pose_app.gui.app"


# Argument types shared by every command: a bad value is an argparse usage error (exit 2).
def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    # `not >=` also refuses nan; inf would overflow a seek or turn filter maths into nan.
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def _unit_interval(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a value between 0 and 1, got {text}")
    return value


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that runs the network."""
    from pose_app.engine import DEFAULT_RESOLUTION, PROVIDER_ALIASES
    from pose_app.estimator import DecodeSettings
    from pose_app.model_files import DEFAULT_MODEL, SHIPPED_MODELS

    defaults = DecodeSettings()
    group = parser.add_argument_group("model and decoding")
    group.add_argument(
        "--model", default=DEFAULT_MODEL,
        help=f"shipped model ({', '.join(SHIPPED_MODELS)}) or path to an .onnx file (default: {DEFAULT_MODEL})",
    )
    group.add_argument(
        "--provider", default="auto", choices=["auto", *PROVIDER_ALIASES],
        help="onnxruntime execution provider; 'auto' takes the best available and says which runs",
    )
    group.add_argument("--threads", type=int, default=0, help="inference threads (0: onnxruntime decides)")
    group.add_argument(
        "--resolution", type=positive_int, default=DEFAULT_RESOLUTION,
        help="network input size of the frame's longer side, snapped to k*stride+1 (default %(default)s)",
    )
    group.add_argument("--max-poses", type=positive_int, default=defaults.max_poses, help="most people per frame (default %(default)s)")
    group.add_argument(
        "--min-score", type=_unit_interval, default=defaults.min_pose_score,
        help="drop poses whose score is below this (default %(default)s)",
    )
    group.add_argument(
        "--part-score", type=_unit_interval, default=defaults.part_score_threshold,
        help="heatmap score a keypoint needs to start a pose (default %(default)s)",
    )
    group.add_argument(
        "--nms-radius", type=non_negative_float, default=defaults.nms_radius,
        help="two poses' same keypoints closer than this (input pixels) are one pose (default %(default)s)",
    )
    group.add_argument("--single-pose", action="store_true", help="fast path: exactly one person per frame")


def estimator_from_args(args: argparse.Namespace, *, mirrored_input: bool = False):
    """A PoseEstimator built from the options of `add_engine_arguments`."""
    from pose_app.engine import PoseEngine
    from pose_app.estimator import DecodeSettings, PoseEstimator

    engine = PoseEngine(args.model, provider=args.provider, threads=args.threads)
    settings = DecodeSettings(
        max_poses=args.max_poses,
        min_pose_score=args.min_score,
        part_score_threshold=args.part_score,
        nms_radius=args.nms_radius,
        single_pose=args.single_pose,
    )
    return PoseEstimator(engine, args.resolution, settings, mirrored_input=mirrored_input)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pose-app",
        description="Real-time human pose detection. With no command, opens the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"pose-app {__version__}")
    gui = importlib.import_module(GUI_MODULE)
    gui.add_arguments(parser)
    parser.set_defaults(command_module=gui)
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = commands.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.set_defaults(command_module=module)
    return parser


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


if __name__ == "__main__":
    sys.exit(main())
