"""`pose-app bench`: per-stage latency, end-to-end frames/s and peak memory.

Each model x resolution x provider runs the app's own path over a video: `open_source` ->
`PosePipeline` (estimate, track, smooth) -> `PoseFileWriter` writing long-CSV rows to a temporary
file, through the frame loop `process` uses (frame_loop.py). Without --video, a synthetic clip
(moving shapes) is generated first. With `--stream`, each row is also run streaming
(io/stream.py) to receivers that never read, what `process --osc --ws` does, to measure what
streaming costs the pipeline and the capture-to-send latency.
"""

from __future__ import annotations

import base64
import os
import platform
import socket
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from pose_app.core.frames import Frame
from pose_app.core.poses import FramePoses
from pose_app.errors import PoseAppError
from pose_app.inference.config import PipelineConfig
from pose_app.inference.pipeline import PosePipeline, build_pipeline
from pose_app.inference.quantization import int8_path, model_metadata
from pose_app.inference.refine import CROP_STAGES
from pose_app.io.recording import PoseFileWriter
from pose_app.io.sources import open_source
from pose_app.io.stream import PoseStreams
from pose_app.io.stream_config import Endpoint, StreamConfig
from pose_app.run.frame_loop import run_frames

# Stages in frame order; "read" is the wait for the next decoded frame (VideoFileSource decodes
# ahead in a background thread, so it is ~0 unless decoding is the bottleneck); preprocess,
# inference and decode are the full-frame pass (0 on frames that ran on tracked crops only),
# "crops" the crop refinement (cutting, one batched inference, decoding), "track" tracking plus
# smoothing, "write" the CSV rows, "stream" handing the frame to the streams (0 unless --stream).
STAGES = ("read", "preprocess", "inference", "decode", "crops", "track", "write", "stream", "total")
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
    streams: list[str] = field(default_factory=list)  # with --stream: each stream's sent, dropped, latency
    # Each int8 model that ran (full frame, crops) -> the int8 arithmetic it ran with on this CPU.
    int8_paths: dict[str, str] = field(default_factory=dict)


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


# --stream: OSC bundles with angles to a UDP socket nobody reads, and a WebSocket client that
# stops reading at once (its receive buffer is this small): the worst receivers there are.
STALLED_RECEIVE_BUFFER = 4096


def stalled_websocket_client(port: int) -> socket.socket:
    """A WebSocket client of 127.0.0.1:port that completes the opening handshake by hand and
    then never reads a message (a frozen browser tab)."""
    client = socket.create_connection(("127.0.0.1", port))
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, STALLED_RECEIVE_BUFFER)
    key = base64.b64encode(os.urandom(16)).decode()
    client.sendall(
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = client.recv(1)
        if not chunk:
            raise PoseAppError(f"the WebSocket server on port {port} closed the connection")
        response += chunk
    if not response.startswith(b"HTTP/1.1 101"):
        raise PoseAppError(f"the WebSocket server on port {port} refused the client: {response.splitlines()[0]!r}")
    return client


def stalled_streams(stack: ExitStack) -> PoseStreams:
    """Streams to the worst receivers (see STALLED_RECEIVE_BUFFER), closed with `stack`."""
    deaf = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    deaf.bind(("127.0.0.1", 0))
    config = StreamConfig(osc=Endpoint("127.0.0.1", deaf.getsockname()[1]), ws=Endpoint("127.0.0.1", 0),
                          stream_angles=True)
    streams = stack.enter_context(PoseStreams.open(config))
    stack.enter_context(stalled_websocket_client(streams.websocket.port))
    streams.websocket.wait_for_clients(1)
    return streams


def bench_one(video: Path, config: PipelineConfig, frames: int, stream: bool = False) -> BenchResult:
    """Run the app's pipeline for `config` over the first `frames` frames of `video` and time
    every stage; with `stream`, each frame is also streamed (stalled_streams)."""
    pipeline = build_pipeline(config)
    per_frame: dict[str, list[float]] = {stage: [] for stage in STAGES}
    with open_source(str(video)) as source, tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        # Untimed warm-up: onnxruntime's first run allocates and plans (full frame and crops).
        blank = Frame(np.zeros((source.info.height, source.info.width, 3), np.uint8), 0, 0.0, "warm-up")
        pipeline.process(blank)
        if pipeline.refiner is not None:
            pipeline.refiner.run_crops(blank.image, pipeline.refiner.crops_for(blank.image.shape, WARM_UP_POSE))
        pipeline.reset()
        full_passes = pipeline.full_passes
        recorder = PoseFileWriter(source.info, csv_path=Path(scratch) / "poses.csv")
        streams = stalled_streams(stack) if stream else None
        with recorder:
            timer = _StageTimer(recorder, streams, per_frame)
            run_frames(source, pipeline, [timer], max_frames=frames)
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
        streams=_closed_status(streams),
        int8_paths=int8_paths(pipeline),
    )


class _StageTimer:
    """The bench's sink: writes the CSV rows and streams each frame, timing every stage. A frame
    starts when the one before it was done, so "read" is the loop's wait for the next frame
    (`captured_at`, taken once the frame came, less the start) and "total" the whole frame."""

    def __init__(self, recorder: PoseFileWriter, streams: PoseStreams | None, per_frame: dict[str, list[float]]):
        self.recorder, self.streams, self.per_frame = recorder, streams, per_frame
        self.started = time.perf_counter()  # made just before the loop: the first read is timed too

    def __call__(self, frame: Frame, poses: FramePoses, captured_at: float) -> None:
        processed = time.perf_counter()
        self.recorder.write(frame, poses)
        written = time.perf_counter()
        if self.streams is not None:
            # Latency from the start of the frame, the read included, as the bench always measured it.
            self.streams.send(frame, poses, self.started)
        streamed = time.perf_counter()
        per_frame = self.per_frame
        for stage in ("preprocess", "inference", "decode", "track"):
            per_frame[stage].append(poses.timings.get(stage, 0.0))
        per_frame["crops"].append(sum(poses.timings.get(stage, 0.0) for stage in CROP_STAGES))
        per_frame["read"].append(captured_at - self.started)
        per_frame["write"].append(written - processed)
        per_frame["stream"].append(streamed - written)
        per_frame["total"].append(streamed - self.started)
        self.started = time.perf_counter()


def int8_paths(pipeline: PosePipeline) -> dict[str, str]:
    """Model name -> its int8 path (quantization.int8_path) for each int8 model the pipeline runs."""
    engines = [pipeline.estimator.engine] + ([pipeline.refiner.engine] if pipeline.refiner is not None else [])
    paths = {engine.info.name: int8_path(model_metadata(engine.info.path)) for engine in engines}
    return {name: path for name, path in paths.items() if path is not None}


def _closed_status(streams: PoseStreams | None) -> list[str]:
    """The streams' totals once closed (the ExitStack closed them)."""
    return streams.status_lines() if streams is not None else []


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


