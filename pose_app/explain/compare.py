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
from pose_app.explain.cka import GRID, SimilarityOverFrames, block_kernels, block_rows, grid_points, sample_grid
from pose_app.inference.crops import CropSettings, CropTransform, crop_batch, crop_transform
from pose_app.inference.engine import PoseEngine

# The network the compare view opens when the pipeline runs none of the other family.
OTHER_FAMILY_MODEL = {"posenet": "movenet-lightning", "movenet": "posenet-075-int8"}
FAMILY_TITLES = {"posenet": "PoseNet", "movenet": "MoveNet"}
# MoveNet's own crop: square, 1.5x the person's box (families/movenet.py), never turned, so that
# both networks look at the same upright region.
COMPARE_CROP = CropSettings(resolution=257, expand=1.5, aspect=1.0, min_height_fraction=0.2, upright=False)
CROP_RESOLUTION = 257  # the crop's input height when the second network is a PoseNet
# Frames from one added to the similarity to the next (6 a second of a 30 fps video; the matrix
# then spans about 2.7 s of it). Each added frame costs a full-frame pass with every block, the
# second network and 36 kernels, spread over the next frames drawn (`advance`); every third
# frame (10 a second) held the app on a 2-core laptop at 21 frames/s, every fifth at 25.
ADD_EVERY = 5
# Pictures drawn from one added to the next, at least: where drawing keeps up with fewer frames
# than the video has (a busy machine drops frames), not every frame drawn is added.
DRAWS_BETWEEN = 4


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
    drawn: int = 0  # frames drawn (a paused frame drawn again not counted)
    shown: tuple | None = None  # the frame index and fingerprint of the frame drawn last
    added: int = 0  # frames added so far (the drawn matrix changes only when this does)
    # Both networks' runs of the frame added last, its crop and picture: what frames between two
    # that join show (they run on crops only, PanelViewKind.frame_needs).
    kept: tuple | None = None
    drawn_view: tuple | None = None  # (kept, request, mirror, PanelView) of the picture drawn last
    pictures: dict = field(default_factory=dict)  # the view's parts that change rarely, by what they show
    pending: PendingFrame | None = None  # the frame whose networks are being read (advance)

    @property
    def last_run(self) -> NetworkRun | None:
        """The second network's run shown (None before the first)."""
        return None if self.kept is None else self.kept[1]

    def count_draw(self, frame_index: int | None, fingerprint: int) -> None:
        """A frame is drawn: counted when it is another than the last (not a paused frame again)."""
        self.drawn, self.shown = self.draws_with(frame_index, fingerprint), (frame_index, fingerprint)

    def draws_with(self, frame_index: int | None, fingerprint: int) -> int:
        """The frames drawn once this one is."""
        return self.drawn + ((frame_index, fingerprint) != self.shown)

    def needs_networks(self, frame_index: int | None, image_bgr: np.ndarray) -> bool:
        """Whether this frame runs both networks (it joins the similarity, or nothing is kept)."""
        if self.kept is None and self.pending is None:
            return True
        fingerprint = fingerprint_of(image_bgr)
        return joins(self, frame_index, fingerprint, self.draws_with(frame_index, fingerprint))

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


def fingerprint_of(image_bgr: np.ndarray) -> int:
    """Tells a paused frame drawn again from a new one (a sixteenth of the pixels each way)."""
    return hash(image_bgr[::16, ::16].tobytes())


def joins(session: CompareSession, frame_index: int | None, fingerprint: int, drawn: int | None = None) -> bool:
    """Whether this frame is added to the similarity: not the picture added last drawn again
    (`fingerprint` the same: paused, settings changed), nor a frame fewer than ADD_EVERY after it
    (the 36 kernels of a frame cost more than the rest of the view, and neighbouring frames add
    little), nor, playing on, fewer than DRAWS_BETWEEN pictures after it (count_draw; `drawn`:
    the count with this frame, when asked before it is drawn)."""
    drawn = session.drawn if drawn is None else drawn
    last = session.last_frame
    if last is not None:
        last_index, last_fingerprint, last_drawn = last
        if fingerprint == last_fingerprint:
            return False
        if frame_index is not None and last_index is not None:
            gap = frame_index - last_index
            if 0 < gap < ADD_EVERY or (gap > 0 and drawn - last_drawn < DRAWS_BETWEEN):
                return False
    return True


@dataclass
class PendingFrame:
    """A frame whose networks are read a step per frame drawn after it (`advance`): the first
    network's run (from the pipeline's full-frame pass), the frame and its poses, the second
    network, and whether the frame joins the similarity."""

    first: NetworkRun
    image: np.ndarray
    poses: FramePoses
    engine: PoseEngine
    joined: bool
    second: NetworkRun | None = None
    crop: CropTransform | None = None
    first_kernels: list | None = None


def advance(session: CompareSession, everything: bool = False) -> None:
    """The next step of the pending frame (all of them with `everything`): the second network on
    the person's crop; then the first network's blocks read on the grid over the crop; then the
    second's, added to the similarity. The frame's pair of runs is then the one shown (`kept`).
    One step per frame drawn keeps each frame's work near what a frame without the view costs
    (the 36 kernels and the second network together took longer than a frame of a 30 fps video)."""
    while (pending := session.pending) is not None:
        if pending.second is None:
            pending.second, pending.crop = crop_run(pending.engine, pending.image, pending.poses)
        elif pending.joined and pending.first_kernels is None:
            pending.first_kernels = block_kernels(_rows(pending.first, pending.crop))
        else:
            if pending.joined:
                names = (tuple(pending.first.features), tuple(pending.second.features))
                session.similarity.add_kernels(names, pending.first_kernels,
                                               block_kernels(_rows(pending.second, pending.crop)))
                session.added += 1
            session.kept = (pending.first, pending.second, pending.crop, pending.image)
            session.pending = None
        if not everything:
            return


def _rows(run: NetworkRun, crop: CropTransform) -> dict[str, np.ndarray]:
    """The run's blocks read on a GRID x GRID grid over the crop."""
    return block_rows(run.features, run.strides, run.to_input, grid_points(crop.box, GRID))
