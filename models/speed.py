"""Time an exported PoseNet with onnxruntime on the CPU.

    python -m models.speed [--model PATH] [--size 353] [--threads N] [--runs 50] [--features]

prints the mean and median wall-clock milliseconds per frame after a few warm-up runs, and the
process CPU milliseconds per frame (on a busy machine, CPU time with --threads 1 estimates the
quiet single-thread wall time). Like the app, it
fetches the four heads only, plus every feature map with --features (the live feature panel).
It reports figures; it never asserts a speed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from models.export_onnx import ASSETS_DIR, HEAD_NAMES, OUTPUT_NAMES

WARMUP_RUNS = 5


def cpu_session(model: Path, threads: int) -> ort.InferenceSession:
    """A CPU session with every graph optimisation (Conv+Clip fusion etc.) switched on."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def frame_times_ms(
    session: ort.InferenceSession, size: int, runs: int, outputs: tuple[str, ...]
) -> tuple[np.ndarray, float]:
    """Wall-clock milliseconds of `runs` inferences on a random size x size image, and the
    process CPU milliseconds they took in all."""
    image = np.random.default_rng(0).uniform(0, 255, (1, 3, size, size)).astype(np.float32)
    for _ in range(WARMUP_RUNS):
        session.run(list(outputs), {"image": image})
    times = np.empty(runs)
    cpu_start = time.process_time()
    for i in range(runs):
        start = time.perf_counter()
        session.run(list(outputs), {"image": image})
        times[i] = (time.perf_counter() - start) * 1e3
    return times, (time.process_time() - cpu_start) * 1e3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ASSETS_DIR / "posenet-075.onnx")
    parser.add_argument("--size", type=int, default=353, help="square input side (k*stride+1)")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: ORT default)")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--features", action="store_true", help="also fetch the 14 feature maps")
    args = parser.parse_args(argv)
    outputs = OUTPUT_NAMES if args.features else HEAD_NAMES
    session = cpu_session(args.model, args.threads)
    times, cpu_ms = frame_times_ms(session, args.size, args.runs, outputs)
    print(
        f"{args.model.name} {args.size}x{args.size} threads={args.threads or 'default'}"
        f"{' +features' if args.features else ''}: "
        f"mean {times.mean():.1f} ms, median {np.median(times):.1f} ms over {args.runs} runs, "
        f"CPU {cpu_ms / args.runs:.1f} ms per frame"
    )


if __name__ == "__main__":
    main()
