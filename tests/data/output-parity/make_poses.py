"""Make poses.npz, the recorded poses of the output-parity test (tests/test_output_parity.py):
the default pipeline on every second frame of ../shared/media/squat-side-2people-640x360.mp4
(two people squatting, seen from the side; 120 processed frames). Run once from the repository
root: `python tests/data/output-parity/make_poses.py`. The poses are stored, not recomputed by
the test, so that the test's expected bytes do not depend on the machine's inference."""

from pathlib import Path

import numpy as np

from pose_app.inference.config import PipelineConfig
from pose_app.inference.pipeline import build_pipeline, open_engine
from pose_app.io.sources import open_source

CLIP = Path(__file__).resolve().parents[3].parent / "shared" / "media" / "squat-side-2people-640x360.mp4"
STEP = 2

config = PipelineConfig(frame_step=STEP)
engine = open_engine(config)
indices, times, counts, ids, keypoints, scores = [], [], [], [], [], []
with open_source(str(CLIP), frame_step=STEP) as source:
    pipeline = build_pipeline(config, engine=engine)
    for frame in source:
        poses = pipeline.process(frame)
        indices.append(frame.index)
        times.append(frame.time_s)
        counts.append(len(poses.scores))
        ids.extend(poses.ids.tolist())
        keypoints.extend(poses.keypoints.astype(np.float32))
        scores.extend(poses.scores.astype(np.float32).tolist())
np.savez_compressed(
    Path(__file__).with_name("poses.npz"),
    index=np.array(indices, np.int64), time_s=np.array(times, np.float64), count=np.array(counts, np.int64),
    ids=np.array(ids, np.int64), keypoints=np.array(keypoints, np.float32).reshape(-1, 17, 3),
    scores=np.array(scores, np.float32),
    source=np.array(str(CLIP.name)), width=np.array(source.info.width), height=np.array(source.info.height),
    fps=np.array(source.info.fps), frame_count=np.array(source.info.frame_count),
)
print(len(indices), "frames,", len(ids), "poses")
