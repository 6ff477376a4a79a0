"""Compare presets on a clip without ground truth (to become `pose-app compare`).

For a clip and a list of presets, each preset's pipeline runs over the clip the way `process`
runs it (`PipelineConfig.from_preset(name).build(engine=...)`, frames from `open_source`), and
per preset this reports:

- ``person_frames``: poses found, summed over frames;
- ``leg_chain_frames``: the share of the *reference's* frames with someone (frames where the last
  preset found at least one person) in which this preset found at least one person with a full
  leg chain: left hip, knee and ankle, or right hip, knee and ankle, all scored >= 0.3.
  The reference's frames are the denominator for every preset, so a preset that finds nobody
  in a frame is counted as missing the legs there (not left out);
- ``leg_chain_kept``: of the reference's poses with a full leg chain, the share whose matched
  pose (below) in this preset has a full leg chain too (per person, not per frame: in a clip
  with two people, the one squatting counts even when the other one's legs are always seen);
- ``mean_confident_keypoints``: keypoints scored >= 0.3 per pose, averaged over all poses;
- against the reference (the last preset): ``matched_share``, the share of the reference's
  person-frames matched one-to-one (per frame, optimal assignment) by a pose of this preset with
  OKS >= 0.5, and ``mean_oks`` of those matched pairs.

OKS is `pose_app.core.similarity.object_keypoint_similarity`: COCO's formula over the keypoints scored
>= 0.3 in *both* poses, the object area being the mean of the two poses' keypoint-box areas (the
box of their keypoints scored >= 0.3). It is symmetric (neither pose is ground truth), and a
joint one pose lost does not lower it: losing limbs shows in the leg-chain and keypoint counts,
not in the OKS.

The maths are pure functions over per-frame arrays (`Frames`: one `(keypoints (P, 17, 3),
scores (P,))` per frame) so they can be tested on hand-made numbers; `run_preset` makes them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

import numpy as np

from pose_app.core.skeleton import KEYPOINT_INDEX, NUM_KEYPOINTS

Frames = list[tuple[np.ndarray, np.ndarray]]

CONFIDENT_SCORE = 0.3  # a keypoint counts as found from this score (the app's drawing floor)
MATCH_OKS = 0.5  # a preset's pose matches a reference pose from this OKS
LEG_CHAINS = tuple(
    tuple(KEYPOINT_INDEX[f"{side}_{joint}"] for joint in ("hip", "knee", "ankle")) for side in ("left", "right")
)


def full_leg_chain(keypoints: np.ndarray) -> np.ndarray:
    """(P,) bool: poses (P, 17, 3) with hip, knee and ankle of one side all >= CONFIDENT_SCORE."""
    confident = np.asarray(keypoints)[:, :, 2] >= CONFIDENT_SCORE
    return np.stack([confident[:, list(chain)].all(axis=1) for chain in LEG_CHAINS]).any(axis=0)


def match_poses(poses: np.ndarray, reference: np.ndarray) -> list[tuple[int, int, float]]:
    """(pose index, reference index, OKS) of the one-to-one assignment of `poses (P, 17, 3)` to
    `reference (R, 17, 3)` with the largest total OKS among pairs with OKS >= MATCH_OKS."""
    from pose_app.core.similarity import object_keypoint_similarity
    from pose_app.inference.tracking import gated_optimal_assignment

    if not len(poses) or not len(reference):
        return []
    oks = object_keypoint_similarity(np.asarray(poses, np.float32), np.asarray(reference, np.float32), CONFIDENT_SCORE)
    return [(i, j, float(oks[i, j])) for i, j in gated_optimal_assignment(oks, MATCH_OKS)]


def _check_same_length(frames: Frames, reference: Frames) -> None:
    if len(frames) != len(reference):
        raise ValueError(f"presets saw different frame counts: {len(frames)} vs {len(reference)}")


def summarize(frames: Frames, reference: Frames) -> dict[str, float | int]:
    """One preset's figures (see the module docstring) against `reference` (the same frames,
    the last preset's poses; pass the preset's own frames to compare it with itself)."""
    _check_same_length(frames, reference)
    person_frames = sum(len(scores) for _, scores in frames)
    confident = [int((np.asarray(k)[:, :, 2] >= CONFIDENT_SCORE).sum()) for k, _ in frames]
    reference_frames = [index for index, (_, scores) in enumerate(reference) if len(scores)]
    with_legs = [index for index in reference_frames if len(frames[index][1]) and full_leg_chain(frames[index][0]).any()]
    matched_oks, legs_in_reference, legs_kept = [], 0, 0
    for (keypoints, _), (reference_keypoints, _) in zip(frames, reference):
        pairs = match_poses(keypoints, reference_keypoints)
        matched_oks += [oks for _, _, oks in pairs]
        if not len(reference_keypoints):
            continue
        reference_legs = full_leg_chain(reference_keypoints)
        legs_in_reference += int(reference_legs.sum())
        pose_legs = full_leg_chain(keypoints) if len(keypoints) else np.zeros(0, bool)
        legs_kept += sum(1 for i, j, _ in pairs if reference_legs[j] and pose_legs[i])
    reference_person_frames = sum(len(scores) for _, scores in reference)
    return {
        "frames": len(frames),
        "person_frames": person_frames,
        "leg_chain_frames": _share(len(with_legs), len(reference_frames)),
        "leg_chain_kept": _share(legs_kept, legs_in_reference),
        "mean_confident_keypoints": _share(sum(confident), person_frames),
        "matched_share": _share(len(matched_oks), reference_person_frames),
        "mean_oks": float(np.mean(matched_oks)) if matched_oks else float("nan"),
    }


def _share(count: int, total: int) -> float:
    return count / total if total else float("nan")


def compare(results: dict[str, Frames]) -> dict[str, dict[str, float | int]]:
    """Every preset's figures against the last one (the reference), in the given order."""
    reference = list(results.values())[-1]
    return {name: summarize(frames, reference) for name, frames in results.items()}


def run_preset(spec: str, preset: str, threads: int = 0, max_frames: int | None = None) -> tuple[Frames, float]:
    """(poses per frame, frames/s of the pipeline alone) of `preset` over the clip `spec`, as
    `process` runs it."""
    from pose_app.inference.config import PipelineConfig
    from pose_app.io.sources import open_source

    config = PipelineConfig.from_preset(preset, threads=threads) if threads else PipelineConfig.from_preset(preset)
    engine = config.engine()
    frames: Frames = []
    seconds = 0.0
    with open_source(spec, frame_step=config.frame_step) as source:
        pipeline = config.build(is_still=source.info.is_still, engine=engine)
        for frame in iter(source.read, None):
            start = time.perf_counter()
            poses = pipeline.process(frame)
            seconds += time.perf_counter() - start
            frames.append((np.asarray(poses.keypoints, np.float32).reshape(-1, NUM_KEYPOINTS, 3), np.asarray(poses.scores)))
            if max_frames is not None and len(frames) >= max_frames:
                break
    return frames, len(frames) / seconds if seconds else float("nan")


def save_frames(path: str, frames: Frames) -> None:
    """Frames as one .npz (counts, concatenated keypoints and scores)."""
    counts = np.array([len(s) for _, s in frames], np.int64)
    keypoints = np.concatenate([k for k, _ in frames]) if frames else np.zeros((0, NUM_KEYPOINTS, 3), np.float32)
    scores = np.concatenate([s for _, s in frames]) if frames else np.zeros(0, np.float32)
    np.savez_compressed(path, counts=counts, keypoints=keypoints, scores=scores)


def load_frames(path: str) -> Frames:
    data = np.load(path)
    bounds = np.concatenate([[0], np.cumsum(data["counts"])])
    return [(data["keypoints"][a:b], data["scores"][a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


COLUMNS = (
    ("person_frames", "person-frames", "{:d}"),
    ("leg_chain_frames", "leg-chain frames", "{:.2f}"),
    ("leg_chain_kept", "legs kept", "{:.2f}"),
    ("mean_confident_keypoints", "kp/person", "{:.1f}"),
    ("matched_share", "matched", "{:.1%}"),
    ("mean_oks", "mean OKS", "{:.3f}"),
    ("fps", "frames/s", "{:.0f}"),
)


def format_table(clip: str, figures: dict[str, dict[str, float | int]]) -> str:
    reference = list(figures)[-1]
    lines = [f"{clip} ({list(figures.values())[-1]['frames']} frames; reference: {reference})"]
    header = ["preset"] + [title for _, title, _ in COLUMNS]
    rows = [[name] + [fmt.format(values[key]) if key in values else "-" for key, _, fmt in COLUMNS]
            for name, values in figures.items()]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        lines.append("  ".join(cell.rjust(width) if i else cell.ljust(width) for i, (cell, width) in enumerate(zip(row, widths))))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", nargs="+")
    parser.add_argument("--presets", default="balanced,accurate", help="comma-separated; the last is the reference")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--json", help="write every clip's figures here")
    parser.add_argument("--cache", help="folder: load/save the REFERENCE preset's poses per clip (its code must not change)")
    args = parser.parse_args(argv)
    presets = [name.strip() for name in args.presets.split(",") if name.strip()]
    report = {}
    for clip in args.clips:
        results, speeds = {}, {}
        for index, preset in enumerate(presets):
            cached = None
            if args.cache and index == len(presets) - 1:
                from pathlib import Path

                cached = Path(args.cache) / f"{Path(clip).stem}.{preset}.{args.max_frames}.npz"
                if cached.exists():
                    results[preset] = load_frames(str(cached))
                    continue
            results[preset], speeds[preset] = run_preset(clip, preset, args.threads, args.max_frames)
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                save_frames(str(cached), results[preset])
        figures = compare(results)
        for name, speed in speeds.items():
            figures[name]["fps"] = speed
        report[clip] = figures
        print(format_table(clip, figures), flush=True)
        print()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as stream:
            json.dump(report, stream, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
