"""`pose-app bench`: per-stage latency, end-to-end frames/s and peak memory.

Each model x resolution x provider runs the app's own path over a video: `open_source` ->
`PosePipeline` (estimate, track, smooth) -> `PoseStreamWriter` writing long-CSV rows to a temporary
file. Without --video, a synthetic clip (moving shapes) is generated first.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pose_app.core.frames import Frame
from pose_app.errors import PoseAppError
from pose_app.inference.config import PipelineConfig
from pose_app.inference.pipeline import build_pipeline
from pose_app.inference.refine import CROP_STAGES
from pose_app.io.recorder import PoseStreamWriter
from pose_app.io.sources import open_source

# Stages in frame order; "read" is the wait for the next decoded frame (VideoFileSource decodes
# ahead in a background thread, so it is ~0 unless decoding is the bottleneck); preprocess,
# inference and decode are the full-frame pass (0 on frames that ran on tracked crops only),
# "crops" the crop refinement (cutting, one batched inference, decoding), "track" tracking plus
# smoothing, "write" the CSV rows.
STAGES = ("read", "preprocess", "inference", "decode", "crops", "track", "write", "total")
# A standing person's pose for the untimed crop warm-up (any pose gives a crop of the fixed size).
WARM_UP_POSE = np.concatenate(
    [np.stack([np.full(17, 100.0), np.linspace(20.0, 200.0, 17)], axis=1), np.ones((17, 1))], axis=1
)[None].astype(np.float32)
SYNTHETIC_SIZE = (640, 480)
SYNTHETIC_FPS = 30.0


@dataclass
class StageStats:
    """Latency of one stage over the timed frames, milliseconds."""

    p50_ms: float
    p90_ms: float
    mean_ms: float


@dataclass
class BenchResult:
    """One pipeline configuration over one video."""

    preset: str
    model: str
    resolution: int  # the snapped full-frame input size of the longer side
    mode: str  # how frames ran: tracked crops, two-pass, single pass
    provider: str
    frames: int
    full_pass_share: float  # share of the frames that ran the full-frame pass
    stages: dict[str, StageStats]
    fps: float  # frames / total seconds of the timed frames
    peak_rss_mib: float | None  # process peak resident memory so far (ru_maxrss); None without `resource`


def write_synthetic_video(path: Path, frames: int, size: tuple[int, int] = SYNTHETIC_SIZE) -> None:
    """An MJPG .avi of `frames` frames: a circle, a bar and a square moving over a gradient."""
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), SYNTHETIC_FPS, size)
    if not writer.isOpened():
        raise PoseAppError(f"cannot write the synthetic benchmark video {path}")
    background = np.broadcast_to(
        np.linspace(40, 200, width, dtype=np.uint8)[None, :, None], (height, width, 3)
    )
    for index in range(frames):
        phase = 2 * np.pi * index / max(frames, 1)
        image = background.copy()
        centre = (int(width * (0.5 + 0.35 * np.cos(phase))), int(height * (0.5 + 0.3 * np.sin(phase))))
        cv2.circle(image, centre, height // 8, (30, 60, 220), -1)
        bar_x = int((index * 7) % width)
        cv2.rectangle(image, (bar_x, height // 4), (bar_x + 20, 3 * height // 4), (220, 220, 40), -1)
        side = height // 6
        square_y = int((index * 5) % (height - side))
        cv2.rectangle(image, (width // 8, square_y), (width // 8 + side, square_y + side), (40, 200, 40), -1)
        writer.write(image)
    writer.release()


def peak_rss_mib() -> float | None:
    """Peak resident set size of this process so far (getrusage ru_maxrss), MiB; None on Windows."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def stage_stats(seconds: np.ndarray) -> StageStats:
    """p50, p90 and mean of per-frame seconds, in milliseconds."""
    ms = 1000.0 * seconds
    return StageStats(float(np.percentile(ms, 50)), float(np.percentile(ms, 90)), float(ms.mean()))


def bench_one(video: Path, config: PipelineConfig, frames: int) -> BenchResult:
    """Run the app's pipeline for `config` over the first `frames` frames of `video` and time every stage."""
    pipeline = build_pipeline(config)
    per_frame: dict[str, list[float]] = {stage: [] for stage in STAGES}
    with open_source(str(video)) as source, tempfile.TemporaryDirectory() as scratch:
        # Untimed warm-up: onnxruntime's first run allocates and plans (full frame and crops).
        blank = Frame(np.zeros((source.info.height, source.info.width, 3), np.uint8), 0, 0.0, "warm-up")
        pipeline.process(blank)
        if pipeline.refiner is not None:
            pipeline.refiner.run_crops(blank.image, pipeline.refiner.crops_for(blank.image.shape, WARM_UP_POSE))
        pipeline.reset()
        full_passes = pipeline.full_passes
        recorder = PoseStreamWriter(source.info, csv_path=Path(scratch) / "poses.csv")
        with recorder:
            for _ in range(frames):
                start = time.perf_counter()
                frame = source.read()
                if frame is None:
                    break
                read = time.perf_counter()
                poses = pipeline.process(frame)
                processed = time.perf_counter()
                recorder.write(frame, poses)
                written = time.perf_counter()
                for stage in ("preprocess", "inference", "decode", "track"):
                    per_frame[stage].append(poses.timings.get(stage, 0.0))
                per_frame["crops"].append(sum(poses.timings.get(stage, 0.0) for stage in CROP_STAGES))
                per_frame["read"].append(read - start)
                per_frame["write"].append(written - processed)
                per_frame["total"].append(written - start)
    timed = len(per_frame["total"])
    if timed == 0:
        raise PoseAppError(f"no frames could be read from {video}")
    header = pipeline.header()
    return BenchResult(
        preset=config.preset,
        model=header["model"],
        resolution=header["resolution"],
        mode=header["mode"],
        provider=header["provider"],
        frames=timed,
        full_pass_share=(pipeline.full_passes - full_passes) / timed,
        stages={stage: stage_stats(np.asarray(values)) for stage, values in per_frame.items()},
        fps=timed / float(np.sum(per_frame["total"])),
        peak_rss_mib=peak_rss_mib(),
    )


def cpu_name() -> str:
    """The CPU model as the OS names it (Linux: /proc/cpuinfo), else platform's guess."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, object]:
    """What the figures depend on, so saved runs can be compared."""
    import onnxruntime

    return {
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
    }


