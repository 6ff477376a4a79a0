"""`pose-app compare`: its figures on hand-made poses, and the command on a generated clip against
figures counted by hand from each preset's own run."""

import json
import math

import numpy as np
import pytest
from support import DEV_CLIPS, MEDIA

from pose_app.analysis.compare import compare, match_poses, summarize
from pose_app.cli.compare import preset_variant
from pose_app.cli.main import main
from pose_app.core.coverage import full_leg_chain
from pose_app.core.similarity import object_keypoint_similarity
from pose_app.core.skeleton import KEYPOINT_INDEX
from pose_app.inference.config import PipelineConfig
from pose_app.inference.pipeline import build_pipeline, open_engine
from pose_app.io.sources import open_source
from pose_app.run.compare_run import run_preset


def pose(x0: float, y0: float, score: float = 0.9, lost: tuple[str, ...] = ()) -> np.ndarray:
    """A (17, 3) person 170 px tall, 60 wide, at (x0, y0); the named keypoints scored 0.1."""
    xy = np.stack([x0 + np.linspace(0, 60, 17), y0 + np.linspace(0, 170, 17)], axis=1)
    keypoints = np.concatenate([xy, np.full((17, 1), score)], axis=1).astype(np.float32)
    for name in lost:
        keypoints[KEYPOINT_INDEX[name], 2] = 0.1
    return keypoints


def frame(*poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keypoints = np.stack(poses) if poses else np.zeros((0, 17, 3), np.float32)
    return keypoints, np.full(len(keypoints), 0.8, np.float32)


LEFT_LEG = ("left_hip", "left_knee", "left_ankle")
RIGHT_LEG = ("right_hip", "right_knee", "right_ankle")


def test_a_full_leg_chain_is_hip_knee_and_ankle_of_one_side():
    poses = np.stack([
        pose(0, 0),
        pose(0, 0, lost=("left_knee",)),
        pose(0, 0, lost=("left_knee", "right_ankle")),
        pose(0, 0, lost=("left_hip", "right_hip")),
    ])
    assert full_leg_chain(poses).tolist() == [True, True, False, False]


def test_matching_is_one_to_one_and_needs_oks_half():
    reference = np.stack([pose(0, 0), pose(300, 0)])
    poses = np.stack([pose(302, 1), pose(1, 0), pose(1000, 0)])
    pairs = match_poses(poses, reference)
    assert sorted((i, j) for i, j, _ in pairs) == [(0, 1), (1, 0)]
    assert all(0.9 < oks <= 1.0 for _, _, oks in pairs)
    assert match_poses(poses[:0], reference) == []


def test_summary_figures_by_hand():
    # Reference: 4 frames; frame 3 is empty. Person A (at 0) always has legs in the reference,
    # person B (at 300) only in frame 0.
    reference = [
        frame(pose(0, 0), pose(300, 0)),
        frame(pose(0, 0), pose(300, 0, lost=LEFT_LEG + RIGHT_LEG)),
        frame(pose(0, 0)),
        frame(),
    ]
    # The preset: frame 0 finds A with legs and B without; frame 1 finds only B (no legs);
    # frame 2 finds nobody near A (a pose at 1000); frame 3 a pose the reference does not have.
    preset = [
        frame(pose(1, 0), pose(300, 0, lost=("left_ankle", "right_knee"))),
        frame(pose(300, 0, lost=LEFT_LEG + RIGHT_LEG)),
        frame(pose(1000, 0)),
        frame(pose(0, 0)),
    ]
    figures = summarize(preset, reference)
    assert figures["frames"] == 4
    assert figures["person_frames"] == 5
    # Reference frames with someone: 0, 1, 2; with a full chain in the preset: frame 0 (A) and
    # frame 2 (the pose at 1000 has legs: leg-chain frames do not ask who it is).
    assert figures["leg_chain_frames"] == pytest.approx(2 / 3)
    # Reference poses with legs: A0, B0, A1, A2 = 4; matched with legs in the preset: A0 only.
    assert figures["leg_chain_kept"] == pytest.approx(1 / 4)
    # Confident keypoints: 17 + 15 + 11 + 17 + 17 = 77 over 5 poses.
    assert figures["mean_confident_keypoints"] == pytest.approx(77 / 5)
    # Reference person-frames: 5; matched: A0, B0, B1 = 3.
    assert figures["matched_share"] == pytest.approx(3 / 5)
    assert 0.9 < figures["mean_oks"] <= 1.0


def test_the_reference_against_itself_matches_everyone():
    reference = [frame(pose(0, 0), pose(300, 0)), frame(), frame(pose(0, 0, lost=LEFT_LEG))]
    figures = compare({"a": [frame(), frame(), frame()], "ref": reference})
    assert figures["ref"]["matched_share"] == 1.0 and figures["ref"]["mean_oks"] == pytest.approx(1.0)
    assert figures["ref"]["leg_chain_frames"] == 1.0
    assert figures["a"]["person_frames"] == 0 and figures["a"]["matched_share"] == 0.0
    assert math.isnan(figures["a"]["mean_oks"]) and math.isnan(figures["a"]["mean_confident_keypoints"])


def test_presets_must_see_the_same_frames():
    with pytest.raises(ValueError):
        summarize([frame()], [frame(), frame()])


def poses_by_hand(clip, preset: str, frames: int) -> list[np.ndarray]:
    """Each frame's keypoints of `preset` on the clip, the way a user would run the pipeline."""
    config = PipelineConfig.from_preset(preset, threads=2)
    found = []
    with open_source(str(clip)) as source:
        pipeline = build_pipeline(config)
        for frame_ in source:
            found.append(pipeline.process(frame_).keypoints)
            if len(found) == frames:
                break
    return found


def test_pose_app_compare_on_the_generated_clip(walk_clip, tmp_path, capsys):
    out = tmp_path / "compare.json"
    argv = ["compare", str(walk_clip.path), "--presets", "fast,balanced", "--max-frames", "20", "--threads", "2",
            "--json", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    rows = [line.split()[0] for line in printed.splitlines() if line.startswith(("fast ", "balanced "))]
    assert rows == ["fast", "balanced"]
    saved = json.loads(out.read_text())
    assert saved["reference"] == "balanced"
    figures = saved["videos"][str(walk_clip.path)]

    fast, balanced = poses_by_hand(walk_clip.path, "fast", 20), poses_by_hand(walk_clip.path, "balanced", 20)
    legs = [(11, 13, 15), (12, 14, 16)]  # left and right hip, knee, ankle

    def has_legs(pose):
        return any(all(pose[k, 2] >= 0.3 for k in chain) for chain in legs)

    with_someone = [i for i, poses in enumerate(balanced) if len(poses)]
    for name, found in (("fast", fast), ("balanced", balanced)):
        assert figures[name]["person_frames"] == sum(len(poses) for poses in found)
        frames_with_legs = sum(1 for i in with_someone if any(has_legs(pose) for pose in found[i]))
        assert figures[name]["leg_chain_frames"] == pytest.approx(frames_with_legs / len(with_someone))
        confident = sum(int((poses[:, :, 2] >= 0.3).sum()) for poses in found)
        assert figures[name]["mean_confident_keypoints"] == pytest.approx(confident / sum(map(len, found)))
        # One walker: each frame's best pair is the match, when its OKS reaches 0.5.
        matched = [
            object_keypoint_similarity(mine, theirs, 0.3).max()
            for mine, theirs in zip(found, balanced) if len(mine) and len(theirs)
        ]
        matched = [oks for oks in matched if oks >= 0.5]
        assert figures[name]["matched_share"] == pytest.approx(len(matched) / sum(map(len, balanced)))
        assert figures[name]["mean_oks"] == pytest.approx(np.mean(matched), abs=1e-6)
    assert figures["balanced"]["matched_share"] == 1.0  # the reference against itself


def test_pose_app_compare_refuses_bad_input_in_one_line(walk_clip, tmp_path, capsys):
    assert main(["compare", str(walk_clip.path), "--presets", "fast,turbo"]) == 2
    assert capsys.readouterr().err.strip() == "pose-app: error: unknown preset 'turbo' (choose from fast, balanced, accurate)"
    assert main(["compare", str(tmp_path / "missing.mp4"), "--presets", "fast"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("pose-app: error:") and "missing.mp4" in error and "\n" not in error
    assert main(["compare", str(walk_clip.path), "--json", str(tmp_path / "no" / "dir.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    for spec, message in [
        ("balanced:bogus", "'bogus' is not 'full' or SETTING=VALUE"),
        ("balanced:max_crops=many", "max_crops='many' is not a valid int"),
        ("balanced:flip=perhaps", "flip='perhaps' is not a valid bool"),
    ]:
        assert main(["compare", str(walk_clip.path), "--presets", spec]) == 2
        error = capsys.readouterr().err.strip()
        assert message in error and "\n" not in error, error


def test_a_preset_variant_changes_only_what_it_names():
    base = PipelineConfig.from_preset("balanced")
    full = preset_variant("balanced:full", base)
    assert full.redetect_interval_s == 0 and full.with_settings(redetect_interval_s=base.redetect_interval_s) == base
    crops = preset_variant("accurate:video_crop_model=movenet-lightning:max_crops=3:any_orientation=false", base)
    expected = PipelineConfig.from_preset("accurate", video_crop_model="movenet-lightning", max_crops=3, any_orientation=False)
    assert crops == expected


def test_tracked_crops_keep_what_the_full_pass_sees_on_the_generated_clips(walk_clip, people_clip, tmp_path, capsys):
    # `balanced` (tracked crops) against itself with the full-frame pass on every frame: the
    # tracking loss, in the JSON and the table, for a walker and for people who come, go and hide.
    out = tmp_path / "loss.json"
    assert main(["compare", str(walk_clip.path), str(people_clip.path), "--presets", "balanced,balanced:full",
                 "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "joints lost" in table and "full passes" in table
    for video in json.loads(out.read_text())["videos"].values():
        tracked, full = video["balanced"], video["balanced:full"]
        assert full["joints_lost"] == 0.0 and full["full_pass_share"] == 1.0
        # At most 1 joint in 10 of what the full pass sees; on the people clip most of that is a
        # newcomer seen at the next full-frame pass (up to a third of a second later).
        assert tracked["joints_lost"] <= 0.1, video
        assert tracked["full_pass_share"] <= 0.5, video  # and most frames on crops only


def test_joints_lost_counts_the_reference_joints_a_preset_does_not_have():
    reference = frame(pose(100, 50))
    tracked = frame(pose(100, 50, lost=("left_knee", "left_ankle")))
    figures = summarize([tracked] * 3 + [frame()], [reference] * 4)
    # 3 frames lose 2 of 17 joints each, the 4th loses all 17 (nobody found).
    assert figures["joints_lost"] == pytest.approx((3 * 2 + 17) / (4 * 17))
    assert summarize([reference], [reference])["joints_lost"] == 0.0


DEV_SQUAT = DEV_CLIPS / "squat-front-960x540.mp4"
SHARED_SQUAT = MEDIA / "squat-side-2people-640x360.mp4"


@pytest.mark.slow
@pytest.mark.parametrize("clip", [DEV_SQUAT, SHARED_SQUAT], ids=["dev-front-squat", "shared-side-squat"])
def test_the_default_keeps_the_legs_of_a_squat_as_the_accurate_preset_does(clip, capsys):
    if not clip.is_file():
        pytest.skip(f"{clip.name} is absent (development clips: docs/development.md); users do not have it")
    engine_config = PipelineConfig.from_preset("balanced", threads=2)
    results = {}
    for preset in ("balanced", "accurate"):
        config = engine_config.with_preset(preset)
        results[preset], _, _ = run_preset(str(clip), config, open_engine(config), max_frames=72)
    figures = compare(results)["balanced"]
    assert figures["leg_chain_frames"] >= 0.9 and figures["leg_chain_kept"] >= 0.9
    assert figures["matched_share"] >= 0.9
