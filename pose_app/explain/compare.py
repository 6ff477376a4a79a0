"""Two networks on the same frame, for the compare view (explain/compare_view.py draws it): the
running full-frame network (PoseNet) and a network of the other family (MoveNet) run on the
person's crop, both with every feature block, read on the same points of the frame.

The second network is the pipeline's crop engine when that is of the other family (the video
presets run MoveNet crops), else one opened here once per session (`OTHER_FAMILY_MODEL`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pose_app.core.poses import MIN_KEYPOINT_SCORE, FramePoses
from pose_app.explain.cka import GRID, SimilarityOverFrames, block_rows, grid_points, sample_grid
from pose_app.inference.engine import PoseEngine
from pose_app.inference.crops import CropSettings, CropTransform, crop_batch, crop_transform

# The network the compare view opens when the pipeline runs none of the other family.
OTHER_FAMILY_MODEL = {"posenet": "movenet-lightning", "movenet": "posenet-075-int8"}
FAMILY_TITLES = {"posenet": "PoseNet", "movenet": "MoveNet"}
# MoveNet's own crop: square, 1.5x the person's box (families/movenet.py), never turned, so that
# both networks look at the same upright region.
COMPARE_CROP = CropSettings(resolution=257, expand=1.5, aspect=1.0, min_height_fraction=0.2, upright=False)
CROP_RESOLUTION = 257  # the crop's input height when the second network is a PoseNet
# Frames from one added to the similarity to the next (10 a second of a 30 fps video; the matrix
# then spans about 1.6 s of it).
ADD_EVERY = 3
# Pictures drawn from one added to the next, at least: where drawing keeps up with fewer frames
# than the video has (a busy machine drops frames), not every frame drawn is added.
DRAWS_BETWEEN = 2


@dataclass(frozen=True)
class NetworkRun:
    """One network's outputs for the compared region: heatmaps (17, h, w) at `output_stride`,
    every feature block (C, H, W) with its stride, and how frame pixels map to its input."""

    title: str
    model: str
    where: str  # "full frame" or "person crop"
    input_size: tuple[int, int]
    heatmaps: np.ndarray
    output_stride: int
    features: dict[str, np.ndarray]
    strides: dict[str, int]
    to_input: Callable[[np.ndarray], np.ndarray]  # frame pixels (N, 2) -> input pixels (N, 2)

    def heat_at(self, keypoint: int | None, points: np.ndarray) -> np.ndarray:
        """The keypoint's heatmap (max over keypoints for None) read at frame pixels (N, 2)."""
        maps = self.heatmaps if keypoint is None else self.heatmaps[keypoint:keypoint + 1]
        heat = maps.max(axis=0, keepdims=True)
        return sample_grid(heat, np.asarray(self.to_input(points), np.float64) / self.output_stride)[:, 0]


@dataclass
class CompareSession:
    """What the compare view keeps between frames: the second network it opened (if any), the
    similarity over recent frames, and the last frame added to it (a paused frame redrawn is not
    counted twice)."""

    engine: PoseEngine | None = None
    similarity: SimilarityOverFrames = field(default_factory=SimilarityOverFrames)
    last_frame: object = None  # (frame index, fingerprint, draws) of the frame added last
    # The second network's last run: (engine, frame index, fingerprint, draws, run, crop), reused
    # on the frames between two that join the similarity (second_run).
    second: tuple | None = None
    drawn: int = 0  # frames drawn (a paused frame drawn again not counted)
    shown: tuple | None = None  # the frame index and fingerprint of the frame drawn last
    added: int = 0  # frames added so far (the drawn matrix changes only when this does)
    pictures: dict = field(default_factory=dict)  # the view's parts that change rarely, by what they show

    @property
    def last_run(self) -> NetworkRun | None:
        """The second network's run kept (None before the first)."""
        return None if self.second is None else self.second[4]

    def count_draw(self, frame_index: int | None, fingerprint: int) -> None:
        """A frame is drawn: counted when it is another than the last (not a paused frame again)."""
        if (frame_index, fingerprint) != self.shown:
            self.drawn, self.shown = self.drawn + 1, (frame_index, fingerprint)

    def picture(self, key: tuple, make: Callable[[], np.ndarray]) -> np.ndarray:
        """The picture `make` draws for `key`, drawn once (the block strips change with the
        networks and the width, the matrix only when a frame is added)."""
        if key not in self.pictures:
            if len(self.pictures) >= 8:
                self.pictures.clear()
            self.pictures[key] = make()
        return self.pictures[key]


def second_engine(engine: PoseEngine, crop_engine: PoseEngine | None, session: CompareSession) -> PoseEngine:
    """The network compared with `engine`: the pipeline's crop engine when it is of the other
    family, else the other family's model, opened once."""
    if crop_engine is not None and crop_engine.family.name != engine.family.name:
        return crop_engine
    wanted = OTHER_FAMILY_MODEL.get(engine.family.name, OTHER_FAMILY_MODEL["posenet"])
    if session.engine is None or session.engine.info.name != wanted:
        session.engine = PoseEngine(wanted, provider=engine.provider)
    return session.engine


def person_crop(poses: FramePoses, frame_size: tuple[int, int], input_size: tuple[int, int]) -> tuple[CropTransform, bool]:
    """The crop the second network runs: around the frame's best person (its confident keypoints,
    as the refiner cuts MoveNet's crops), or the whole frame when nobody is found; and whether
    it is a person's."""
    width, height = frame_size
    if len(poses.keypoints):
        pose = poses.keypoints[0]
        confident = pose[:, 2] >= MIN_KEYPOINT_SCORE
        if confident.sum() >= 2:
            points = pose[confident, :2].astype(np.float64)
            box = np.concatenate([points.min(axis=0), points.max(axis=0)])
            return crop_transform(box, frame_size, input_size, COMPARE_CROP), True
    whole = CropSettings(expand=1.0, aspect=1.0, min_height_fraction=0.0, upright=False)
    return crop_transform(np.array([0.0, 0.0, width - 1.0, height - 1.0]), frame_size, input_size, whole), False


def full_frame_run(engine: PoseEngine, poses: FramePoses, blocks: tuple[str, ...]) -> NetworkRun:
    """The running network's outputs, as the pipeline's full-frame pass left them in `poses`."""
    info, transform = engine.info, poses.transform
    strides = {block.name: block.stride for block in info.feature_blocks}
    features = {name: poses.features[name] for name in blocks if name in poses.features}
    return NetworkRun(FAMILY_TITLES.get(engine.family.name, engine.family.name), info.name, "full frame",
                      transform.input_size, poses.heatmaps, info.output_stride, features,
                      {name: strides[name] for name in features}, transform.to_input)


def crop_run(engine: PoseEngine, image_bgr: np.ndarray, poses: FramePoses) -> tuple[NetworkRun, CropTransform]:
    """The second network run on the person's crop (every feature block), and the crop."""
    height, width = image_bgr.shape[:2]
    family, info = engine.family, engine.info
    input_size = family.crop_input_size(info, CROP_RESOLUTION, 1.0)
    crop, on_person = person_crop(poses, (width, height), input_size)
    blocks = tuple(block.name for block in info.feature_blocks)
    outputs = engine.run(crop_batch(image_bgr, [crop], False, family.pad_value), blocks)
    heads = dict(zip(engine.head_outputs, outputs))
    features = {name: output[0] for name, output in zip(blocks, outputs[len(engine.head_outputs):])}
    run = NetworkRun(FAMILY_TITLES.get(family.name, family.name), info.name,
                     "person crop" if on_person else "whole frame (nobody found)", crop.input_size,
                     heads["heatmaps"][0], info.output_stride, features,
                     {block.name: block.stride for block in info.feature_blocks}, crop.to_input)
    return run, crop


def joins(session: CompareSession, frame_index: int | None, fingerprint: int) -> bool:
    """Whether this frame is added to the similarity: not the picture added last drawn again
    (`fingerprint` the same: paused, settings changed), nor a frame fewer than ADD_EVERY after it
    (the 36 kernels of a frame cost more than the rest of the view, and neighbouring frames add
    little), nor, playing on, fewer than DRAWS_BETWEEN pictures after it (count_draw)."""
    last = session.last_frame
    if last is not None:
        last_index, last_fingerprint, last_drawn = last
        if fingerprint == last_fingerprint:
            return False
        if frame_index is not None and last_index is not None:
            gap = frame_index - last_index
            if 0 < gap < ADD_EVERY or (gap > 0 and session.drawn - last_drawn < DRAWS_BETWEEN):
                return False
    return True


def second_run(session: CompareSession, engine: PoseEngine, image_bgr: np.ndarray, poses: FramePoses,
               frame_index: int | None, fingerprint: int, fresh: bool) -> tuple[NetworkRun, CropTransform]:
    """The second network's run for this frame: run again when `fresh` (the frame joins the
    similarity), on another engine, on another picture without a frame index, from a later frame
    (a seek), or when the last run is ADD_EVERY frames and DRAWS_BETWEEN pictures old; else the
    last run, kept (the picture then shows the second network's heatmap of a frame or two before)."""
    kept = session.second
    if not fresh and kept is not None and kept[0] is engine:
        _, last_index, last_fingerprint, last_drawn, run, crop = kept
        gap = None if frame_index is None or last_index is None else frame_index - last_index
        if fingerprint == last_fingerprint or (
                gap is not None and gap >= 0 and (gap < ADD_EVERY or session.drawn - last_drawn < DRAWS_BETWEEN)):
            return run, crop
    run, crop = crop_run(engine, image_bgr, poses)
    session.second = (engine, frame_index, fingerprint, session.drawn, run, crop)
    return run, crop


def add_frame(session: CompareSession, first: NetworkRun, second: NetworkRun, crop: CropTransform,
              frame_index: int | None, fingerprint: int) -> bool:
    """Add this frame's blocks, read on a GRID x GRID grid over the crop, to the similarity when
    it joins it (`joins`); whether it was added."""
    if not joins(session, frame_index, fingerprint):
        return False
    points = grid_points(crop.box, GRID)
    session.similarity.add(block_rows(first.features, first.strides, first.to_input, points),
                           block_rows(second.features, second.strides, second.to_input, points))
    session.last_frame = (frame_index, fingerprint, session.drawn)
    session.added += 1
    return True
