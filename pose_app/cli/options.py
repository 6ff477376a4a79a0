"""The options every command that runs the network shares (`--preset` and the settings of
PipelineConfig it implies, each under the setting's one name), and argparse types for numbers."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from pose_app.errors import PoseAppError
from pose_app.inference.config import DEFAULT_PRESET, PRESETS, SETTING_NAMES, PipelineConfig
from pose_app.inference.decode import DecodeSettings
from pose_app.inference.engine import PROVIDER_ALIASES
from pose_app.inference.model_files import SHIPPED_MODELS
from pose_app.io.output_files import NO_INPUTS, FileIdentity, check_output_path, write_whole
from pose_app.run.setting_limits import SETTING_RANGES

# --scales: the largest multiple of --resolution a full-frame pass may run at.
MAX_SCALE = 4.0


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


def setting_int(name: str):
    """argparse type: an integer in the range the setting `name` accepts (setting_limits)."""
    low, high = (int(bound) for bound in SETTING_RANGES[name])

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an integer from {low} to {high}, got {text}")
        return value

    return parse


def unit_score(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a score from 0 to 1, got {text}")
    return value


def add_keypoint_table_arguments(parser: argparse.ArgumentParser, out_metavar: str, out_help: str, report_help: str) -> None:
    """The inputs and outputs `reps` and `holds` share: the keypoint CSV, --out, --report, --person."""
    parser.add_argument("keypoints", metavar="KEYPOINTS.csv", help="long keypoint CSV written by `pose-app process --csv` or the app's recording")
    parser.add_argument("--out", required=True, metavar=out_metavar, help=out_help)
    parser.add_argument("--report", metavar="REPORT.png|.pdf|.svg", help=report_help)
    parser.add_argument("--person", type=int, metavar="ID", help="only this person_id (default: everyone with enough frames)")


def add_dropout_arguments(rules: argparse._ArgumentGroup, defaults) -> None:
    """The rules `reps` and `holds` share on dropouts: --max-gap and --min-confidence, with the
    defaults of `defaults` (RepSettings or HoldSettings)."""
    rules.add_argument("--max-gap", type=positive_float, default=defaults.max_gap_s, metavar="SECONDS",
                       help=f"longest dropout bridged by interpolation (default {defaults.max_gap_s:g})")
    rules.add_argument("--min-confidence", type=unit_score, default=defaults.min_confidence, metavar="SCORE",
                       help=f"frames whose angle confidence is lower are dropouts (default {defaults.min_confidence})")


class RenamedOption(argparse.Action):
    """The old spelling of a renamed option, accepted for one release: it stores into the new
    option's destination and says on stderr, once per use, what the option is called now."""

    def __init__(self, option_strings, dest, *, new_name: str, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.new_name = new_name

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: {option_string} is now {self.new_name}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_old_spelling(parser: argparse.ArgumentParser, old: str, new: str, dest: str, **kwargs) -> None:
    """Accept `old` (hidden from --help) as the option now called `new`, storing into `dest`;
    `kwargs` as the new option's (type, metavar). Its default never replaces the new option's."""
    parser.add_argument(
        old, dest=dest, action=RenamedOption, new_name=new, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs
    )


def add_pipeline_arguments(parser: argparse.ArgumentParser, *, test_time_augmentation: bool = True) -> None:
    """The options of every command that runs the network: --preset and the settings of
    PipelineConfig it implies (--flip and --scales only with `test_time_augmentation`: they are
    for files, not for the live app). Each option's destination is the setting's one name (config
    field, header key); an option left out (None) takes the preset's value."""
    def by_preset(name: str) -> str:
        values = {preset: getattr(PipelineConfig.from_preset(preset), name) for preset in PRESETS}
        if len(set(map(str, values.values()))) == 1:
            return f"default {next(iter(values.values()))}"
        return "default from --preset: " + ", ".join(f"{preset} {value}" for preset, value in values.items())

    decode = DecodeSettings()
    group = parser.add_argument_group(
        "model, decoding and refinement",
        "--preset picks all of these at once; an option given here overrides the preset's value.",
    )
    group.add_argument(
        "--preset", choices=list(PRESETS), default=None,
        help=f"fast (real time on any laptop), balanced (about twice the accuracy of a single pass), "
        f"accurate (offline, several times slower) (default {DEFAULT_PRESET})",
    )
    group.add_argument("--model", help=f"shipped model ({', '.join(SHIPPED_MODELS)}) or path to an .onnx file ({by_preset('model')})")
    group.add_argument(
        "--provider", choices=["auto", *PROVIDER_ALIASES],
        help="onnxruntime execution provider; 'auto' takes the best available and says which runs (default auto)",
    )
    group.add_argument("--threads", type=setting_int("threads"), help="inference threads (default 0: onnxruntime decides)")
    group.add_argument(
        "--resolution", type=setting_int("resolution"),
        help=f"full-frame input size of the frame's longer side, snapped to k*stride+1 ({by_preset('resolution')})",
    )
    group.add_argument("--max-poses", type=setting_int("max_poses"), help=f"most people per frame (default {decode.max_poses})")
    group.add_argument(
        "--min-pose-score", type=unit_score, help=f"drop poses whose score is below this (default {decode.min_pose_score})",
    )
    group.add_argument(
        "--part-score-threshold", type=unit_score,
        help=f"heatmap score a keypoint needs to start a pose (default {decode.part_score_threshold})",
    )
    group.add_argument(
        "--nms-radius", type=non_negative_float,
        help=f"two poses' same keypoints closer than this (input pixels) are one pose (default {decode.nms_radius:g})",
    )
    group.add_argument("--single-pose", action="store_const", const=True, help="fast path: exactly one person per frame")
    if test_time_augmentation:
        group.add_argument(
            "--flip", action=argparse.BooleanOptionalAction,
            help=f"full-frame pass also on the mirrored frame, poses merged (2x its time; {by_preset('flip')})",
        )
        group.add_argument(
            "--scales", type=parse_scales, metavar="S1,S2,...",
            help=f"full-frame pass at these multiples of --resolution, poses merged ({by_preset('scales')})",
        )
    group.add_argument(
        "--refine", action=argparse.BooleanOptionalAction,
        help=f"re-run the network on a crop around each person found ({by_preset('refine')})",
    )
    group.add_argument(
        "--crop-model",
        help="model the crops of still images run (shipped name or .onnx path; empty: the --model engine) "
        f"({by_preset('crop_model')})",
    )
    group.add_argument(
        "--video-crop-model",
        help="model the crops of videos, streams and cameras run (empty: as --crop-model) "
        f"({by_preset('video_crop_model')})",
    )
    group.add_argument(
        "--crop-resolution", type=setting_int("crop_resolution"),
        help=f"crop input height, for crop models that take any size ({by_preset('crop_resolution')})",
    )
    group.add_argument(
        "--crop-flip", action=argparse.BooleanOptionalAction,
        help=f"also run each crop mirrored and average ({by_preset('crop_flip')})",
    )
    group.add_argument("--max-crops", type=setting_int("max_crops"), help=f"most people refined per frame ({by_preset('max_crops')})")
    group.add_argument(
        "--redetect-interval", dest="redetect_interval_s", type=non_negative_float, metavar="SECONDS",
        help="videos: full-frame pass at most this far apart (and when someone is lost), crops "
        f"following each person in between; 0 = every frame ({by_preset('redetect_interval_s')})",
    )
    group.add_argument(
        "--any-orientation", action=argparse.BooleanOptionalAction,
        help="turn crops so each body stands upright for the network, and try frames turned when only fragments of "
        f"people are found: planks, floor work, handstands ({by_preset('any_orientation')})",
    )


def parse_scales(text: str) -> tuple[float, ...]:
    """'0.75,1,1.25' -> (0.75, 1.0, 1.25); argparse type for --scales."""
    try:
        scales = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated scale factors, got {text!r}") from None
    if not scales or not all(0 < scale <= MAX_SCALE for scale in scales):
        raise argparse.ArgumentTypeError(f"scale factors must be positive and at most {MAX_SCALE:g}, got {text!r}")
    return scales


def config_from_args(args: argparse.Namespace, base=None):
    """The PipelineConfig of the options given: `base` (default: the --preset's settings) with
    every option that was given (not None) on top."""
    given = {name: getattr(args, name) for name in SETTING_NAMES if getattr(args, name, None) is not None}
    preset = getattr(args, "preset", None)
    if base is None:
        return PipelineConfig.from_preset(preset or DEFAULT_PRESET, **given)
    if preset is not None:
        base = base.with_preset(preset)
    return base.with_settings(**given) if given else base


def comma_list(convert):
    """argparse type: 'a,b' -> [convert(a), convert(b)]."""

    def parse(text: str) -> list:
        try:
            values = [convert(part.strip()) for part in text.split(",") if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}") from None
        if not values:
            raise argparse.ArgumentTypeError("expected at least one value")
        return values

    return parse


def check_output_file(
    path: Path, option: str, suffixes: tuple[str, ...] | None = None, inputs: frozenset[FileIdentity] = NO_INPUTS,
) -> None:
    """PoseAppError unless the file given with `option` ends in one of `suffixes` (when given)
    and can be written (output_files.check_output_path: not a device, not one of `inputs`),
    before any work is done."""
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise PoseAppError(f"{option} {path}: give a {', '.join(suffixes)} file")
    check_output_path(path, inputs)


def save_figure(figure, path: Path, dpi: int, inputs: frozenset[FileIdentity] = NO_INPUTS) -> None:
    """A matplotlib figure written whole through output_files (its format from the suffix)."""
    import io

    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "pose-app"}):
        figure.savefig(buffer, format=path.suffix.lower().lstrip("."), dpi=dpi)
    write_whole(path, buffer.getvalue(), inputs)
