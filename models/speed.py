"""Time one PoseNet inference the way the app runs it: `PoseEngine.infer` on a square frame.

    python -m models.speed [MODEL] [--size 353] [--threads N] [--runs 50] [--features [NAME ...]]

MODEL is a shipped name (default posenet-075) or an .onnx path. Each run is one
`PoseEngine.infer` call (letterbox preprocessing + onnxruntime) on a random `size` x `size`
frame, after a few warm-up runs. Like the app, the engine runs its heads-only session unless
feature outputs are asked for: `--features feature_5` adds one feature map (what the live panel
costs), `--features` alone all of them (the whole exported graph).

Prints the mean, median and p90 wall-clock milliseconds per frame, and the process CPU
milliseconds per frame (on a busy machine, CPU time with --threads 1 estimates the quiet
single-thread wall time). It reports figures; it never asserts a speed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pose_app.errors import PoseAppError
from pose_app.inference.engine import PoseEngine
from pose_app.inference.model_files import DEFAULT_MODEL
from pose_app.run.bench import StageStats, stage_stats

# Runs before timing starts: onnxruntime allocates its buffers and picks kernels on the first.
WARMUP_RUNS = 5


@dataclass(frozen=True)
class InferTimes:
    """What one timing session measured."""

    input_size: tuple[int, int]  # (w, h) the network ran on
    wall: StageStats  # wall-clock ms per infer() call
    cpu_ms_per_frame: float  # process CPU ms per call, all threads together


def random_frame(size: int) -> np.ndarray:
    """A reproducible random BGR uint8 `size` x `size` frame (inference time does not depend
    on the content)."""
    return np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)


def time_infer(engine: PoseEngine, size: int, runs: int, features: Sequence[str] = ()) -> InferTimes:
    """Wall-clock and CPU time of `runs` `engine.infer` calls on a square `size` frame at
    resolution `size`, after WARMUP_RUNS untimed ones."""
    if runs < 1:
        raise PoseAppError(f"runs must be >= 1, got {runs}")
    frame = random_frame(size)
    for _ in range(WARMUP_RUNS):
        out = engine.infer(frame, size, features)
    seconds = np.empty(runs)
    cpu_start = time.process_time()
    for i in range(runs):
        start = time.perf_counter()
        engine.infer(frame, size, features)
        seconds[i] = time.perf_counter() - start
    cpu_ms = (time.process_time() - cpu_start) * 1e3 / runs
    return InferTimes(out.transform.input_size, stage_stats(seconds), cpu_ms)


def requested_features(engine: PoseEngine, names: list[str] | None) -> list[str]:
    """Feature outputs to fetch: none without --features, all of the model's with a bare
    --features, else the named ones."""
    if names is None:
        return []
    return names or [block.name for block in engine.info.feature_blocks]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m models.speed", description=__doc__.splitlines()[0].replace("`", ""))
    parser.add_argument("model", nargs="?", default=DEFAULT_MODEL, help="shipped name or .onnx path")
    parser.add_argument("--size", type=int, default=353, help="square frame side, px (default 353)")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: ORT default)")
    parser.add_argument("--provider", default="cpu", help="execution provider (default cpu)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs")
    parser.add_argument(
        "--features", nargs="*", metavar="NAME",
        help="also fetch these feature outputs (none named: all of them)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        engine = PoseEngine(args.model, provider=args.provider, threads=args.threads)
        features = requested_features(engine, args.features)
        times = time_infer(engine, args.size, args.runs, features)
    except PoseAppError as error:
        raise SystemExit(f"error: {error}") from None
    input_w, input_h = times.input_size
    print(
        f"{engine.info.name} {args.size}x{args.size} (network input {input_w}x{input_h}) "
        f"{engine.provider} threads={args.threads or 'default'} "
        f"{'+' + ','.join(features) if features else 'heads only'}: "
        f"mean {times.wall.mean_ms:.1f} ms, median {times.wall.p50_ms:.1f} ms, "
        f"p90 {times.wall.p90_ms:.1f} ms over {args.runs} runs; "
        f"CPU {times.cpu_ms_per_frame:.1f} ms per frame"
    )


if __name__ == "__main__":
    main()
