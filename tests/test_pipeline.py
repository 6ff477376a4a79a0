"""The pipeline's two modes on generated clips: tracked crops in video (full-frame pass on its
schedule, when a person is lost, and for the GUI's panel) and two-pass for still images."""

import numpy as np

from pose_app.core.frames import Frame
from pose_app.inference.config import PipelineConfig
from pose_app.inference.pipeline import build_pipeline
from pose_app.io.sources import open_source, read_image


def run_clip(pipeline, clip):
    """(frames that ran the full-frame pass, per frame the actors the poses stand on)."""
    full_pass_frames, actors = [], []
    with open_source(str(clip.path)) as source:
        for frame in iter(source.read, None):
            before = pipeline.full_passes
            poses = pipeline.process(frame)
            if pipeline.full_passes > before:
                full_pass_frames.append(frame.index)
            actors.append(sorted(clip.actor_of(frame.index, pose) for pose in poses.keypoints))
    return full_pass_frames, actors


def test_video_runs_the_full_frame_pass_on_its_schedule_and_crops_in_between(engine, walk_clip):
    pipeline = build_pipeline(PipelineConfig(model="posenet-075", redetect_interval_s=5 / 30), engine=engine)
    assert pipeline.mode == "tracked-crops"
    full_pass_frames, actors = run_clip(pipeline, walk_clip)
    assert set(range(0, 60, 5)) <= set(full_pass_frames)
    assert len(full_pass_frames) <= 14  # crops only on (nearly) every other frame
    assert sum(frame_actors == [0] for frame_actors in actors) >= 58  # she is found on crops too


def test_video_redetects_when_a_person_leaves_or_hides_and_finds_a_newcomer(engine, people_clip):
    # B leaves after frame 29, C enters at frame 45, A is hidden on frames 50-54 (tests/media.py).
    pipeline = build_pipeline(PipelineConfig(model="posenet-075", redetect_interval_s=7 / 30), engine=engine)
    full_pass_frames, actors = run_clip(pipeline, people_clip)
    scheduled = set(range(0, 90, 7))
    assert {30, 31} & set(full_pass_frames), full_pass_frames  # B's crop lost her: look again
    assert {50, 51} & set(full_pass_frames), full_pass_frames  # A's crop lost him
    assert set(full_pass_frames) - scheduled, "only the schedule ran: losses did not trigger"
    newcomer_seen = next(index for index, frame_actors in enumerate(actors) if 2 in frame_actors)
    assert 45 <= newcomer_seen <= 45 + 7 and newcomer_seen in full_pass_frames
    assert len(full_pass_frames) < 90 / 3
    # A person followed on one frame and still in view, but not found on the next: the frame
    # after that looks again with the full-frame pass.
    for index in range(1, 89):
        lost = set(actors[index - 1]) & set(people_clip.people(index)) - set(actors[index])
        if lost and index not in full_pass_frames:
            assert index + 1 in full_pass_frames, (index, lost)


def test_every_frame_runs_the_full_frame_pass_when_asked_or_scheduled_so(engine, walk_clip):
    every_frame = build_pipeline(PipelineConfig(model="posenet-075", redetect_interval_s=0), engine=engine)
    assert every_frame.mode == "two-pass"
    assert run_clip(every_frame, walk_clip)[0] == list(range(60))
    # The GUI's panel needs the full-frame heatmaps: full_frame=True runs the pass every frame.
    panel = build_pipeline(PipelineConfig(model="posenet-075", redetect_interval_s=0.33), engine=engine)
    with open_source(str(walk_clip.path)) as source:
        for frame in list(iter(source.read, None))[:12]:
            poses = panel.process(frame, full_frame=True)
            assert poses.heatmaps is not None
    assert panel.full_passes == 12


def test_still_images_run_two_pass_without_smoothing(engine, group_image):
    pipeline = build_pipeline(PipelineConfig(model="posenet-075"), is_still=True, engine=engine)
    assert pipeline.mode == "two-pass" and pipeline.smoother is None
    image = read_image(group_image.path)
    for index in range(3):
        poses = pipeline.process(Frame(image, index, 0.0, "group"))
        assert sorted(group_image.actor_of(0, pose) for pose in poses.keypoints) == [0, 1, 2]
    assert pipeline.full_passes == 3


def test_tracked_crops_need_refinement_and_tracking(engine):
    assert build_pipeline(PipelineConfig(model="posenet-075", refine=False), engine=engine).mode == "single-pass"
    assert build_pipeline(PipelineConfig(model="posenet-075", track=False), engine=engine).mode == "two-pass"


def test_smoothed_poses_keep_their_unsmoothed_keypoints(engine, walk_clip):
    smoothed = build_pipeline(PipelineConfig(model="posenet-075"), engine=engine)
    plain = build_pipeline(PipelineConfig(model="posenet-075", smooth=False), engine=engine)
    with open_source(str(walk_clip.path)) as source:
        frames = list(iter(source.read, None))[:8]
    for frame in frames:
        poses, raw = smoothed.process(frame), plain.process(frame)
    # The same pipeline without the filter gives exactly the keypoints the filter started from.
    np.testing.assert_array_equal(poses.unsmoothed_keypoints, raw.keypoints)
    assert raw.unsmoothed_keypoints is None
    moved = np.abs(poses.keypoints[..., :2] - poses.unsmoothed_keypoints[..., :2]).max()
    assert 0 < moved < 40  # she walks: the filter lags a little behind
