"""What breaks the network (the "breaks" view, explain/breaks_view.py draws it; numpy/OpenCV, no
Qt): the person's crop of the current frame perturbed (turned, scaled, blurred, darkened or
partly covered by a grey box), the network run on each of a sweep of amounts, and every
keypoint's score against the amount.

The crop is the one the compare view cuts (explain/compare.py: square, 1.5x the person's box,
not turned). Turning and scaling change the crop's geometry, so the picture is cut again from
the frame (no black corners); blur, darken and occlusion change its pixels. With `upright` the
turned crop is stood back upright as the pipeline's any-orientation does: the network is tried
on the picture at each quarter turn, the turn with the most evidence wins
(estimator.best_orientation), the torso of the pose found there gives the angle that stands the
body upright (refine.upright_angle, not below the refiner's 60 degrees), and the network runs
once more on the crop turned by it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import cv2
import numpy as np

from pose_app.core.poses import MIN_KEYPOINT_SCORE
from pose_app.inference.crops import CropSettings, CropTransform, crop_batch, upright_angle
from pose_app.inference.decode import DecodeSettings
from pose_app.inference.engine import PoseEngine
from pose_app.inference.estimator import best_orientation, turn_frame, unturned

OCCLUDER_GREY = 128  # the grey of the occluding box (mid grey: neither dark nor bright)
CROP_RESOLUTION = 257  # a PoseNet crop's input height (MoveNet's is its own, 192 or 256)
# One pose is enough: the crop holds one person (PoseNet may find others reaching in at the edges).
DECODE = DecodeSettings(max_poses=5, min_pose_score=0.0)
UPRIGHT_MIN_DEGREES = CropSettings().upright_min_degrees


@dataclass(frozen=True)
class Perturbation:
    """One way to disturb the input: its name, label, unit, range and the amounts swept."""

    name: str
    label: str
    unit: str
    low: float
    high: float
    steps: tuple[float, ...]
    slider_scale: int = 1  # slider positions per unit (the slider is an integer)

    def text(self, amount: float) -> str:
        if self.name == "scale":
            return f"{amount:.2f}×"
        return f"{amount:.0f}{self.unit}" if self.name != "blur" else f"sigma {amount:.1f}"

    def clamp(self, amount: float) -> float:
        return float(min(max(amount, self.low), self.high))


PERTURBATIONS = {
    perturbation.name: perturbation
    for perturbation in (
        Perturbation("turn", "turn (0-180°)", "°", 0.0, 180.0, tuple(np.linspace(0, 180, 10).tolist())),
        # Geometric steps, so that 1x (the crop as cut) is one of them (0.25 * 8^(6/9) = 1).
        Perturbation("scale", "scale (0.25-2×)", "×", 0.25, 2.0, tuple((0.25 * 8 ** (np.arange(10) / 9)).tolist()), 100),
        Perturbation("blur", "blur (sigma 0-8 px)", " px", 0.0, 8.0, tuple(float(s) for s in range(9)), 10),
        Perturbation("darken", "darken (0-95 %)", " %", 0.0, 95.0, (0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)),
        Perturbation("occlude", "occlude (0-100 % of the person's box)", " %", 0.0, 100.0,
                     tuple(float(a) for a in range(0, 101, 10))),
    )
}

# The parts a grey box can cover (None: the crop's centre), and the keypoints whose mean is drawn.
OCCLUDED_PARTS = {"image centre": None, "face": (0, 1, 2, 3, 4), "left arm": (5, 7, 9), "right arm": (6, 8, 10),
                  "hips": (11, 12), "left leg": (11, 13, 15), "right leg": (12, 14, 16)}
MEAN_GROUPS = {"every keypoint": tuple(range(17)), "face": (0, 1, 2, 3, 4), "arms": (5, 6, 7, 8, 9, 10),
               "legs": (11, 12, 13, 14, 15, 16)}


@dataclass(frozen=True)
class BreaksRequest:
    """The learner's choices: the perturbation, the slider's amount, the part a box covers
    (OCCLUDED_PARTS), whether a turned crop is stood upright again, and whose mean is drawn."""

    kind: str = "turn"
    amount: float = 180.0
    part: str = "image centre"
    upright: bool = False
    mean_of: str = "every keypoint"

    @property
    def perturbation(self) -> Perturbation:
        return PERTURBATIONS[self.kind]


DEFAULT_BREAKS = BreaksRequest()


# --- the perturbations --------------------------------------------------------------------------


def turned(crop: CropTransform, degrees: float) -> CropTransform:
    """The crop with its content turned `degrees` further (counter-clockwise on screen) about its centre."""
    return dataclasses.replace(crop, angle=crop.angle + math.radians(degrees))


def scaled(crop: CropTransform, factor: float) -> CropTransform:
    """The crop in which the person looks `factor` times as large (about its centre)."""
    return dataclasses.replace(crop, scale=crop.scale * factor)


def cut(frame_bgr: np.ndarray, crop: CropTransform, pad_value: float) -> np.ndarray:
    """The crop's picture (uint8 BGR, the network's input size) as the network gets it."""
    rgb = crop_batch(frame_bgr, [crop], False, pad_value)[0]
    return np.ascontiguousarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8).transpose(1, 2, 0)[:, :, ::-1])


def blurred(picture: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of `sigma` input pixels (0: the picture itself)."""
    return picture if sigma <= 0 else cv2.GaussianBlur(picture, (0, 0), sigma)


def darkened(picture: np.ndarray, percent: float) -> np.ndarray:
    """Every pixel `percent` % darker (0: the picture itself)."""
    return picture if percent <= 0 else cv2.convertScaleAbs(picture, alpha=1.0 - percent / 100.0)


def occluder_box(person_box, centre, percent: float) -> tuple[int, int, int, int]:
    """The grey box (x0, y0, x1, y1 pixel edges, exclusive) covering `percent` % of the area of
    `person_box` (x0, y0, x1, y1, input pixels): the person's box shrunk by sqrt(percent / 100)
    on each side, centred on `centre`."""
    x0, y0, x1, y1 = person_box
    side = math.sqrt(max(percent, 0.0) / 100.0)
    half_w, half_h = (x1 - x0) * side / 2, (y1 - y0) * side / 2
    cx, cy = centre
    return round(cx - half_w + 0.5), round(cy - half_h + 0.5), round(cx + half_w + 0.5), round(cy + half_h + 0.5)


def occluded(picture: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The picture with the box painted OCCLUDER_GREY (clipped to the picture)."""
    x0, y0, x1, y1 = box
    height, width = picture.shape[:2]
    x0, x1, y0, y1 = max(0, x0), min(width, x1), max(0, y0), min(height, y1)
    if x1 <= x0 or y1 <= y0:
        return picture
    covered = picture.copy()
    covered[y0:y1, x0:x1] = OCCLUDER_GREY
    return covered


# --- the person and the sweep -------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """The crop around the person and where their parts lie in it (the unperturbed pose, 17 x
    (x, y, score) input pixels): what the occluding box is placed over."""

    crop: CropTransform
    pose: np.ndarray | None  # (17, 3) input pixels of the crop; None: nobody found
    on_person: bool = True  # False: the crop is the whole frame (nobody found in the frame)

    def person_box(self) -> tuple[float, float, float, float]:
        """The box of the confident keypoints (input pixels); the whole crop without a person."""
        width, height = self.crop.input_size
        if self.pose is None or (self.pose[:, 2] >= MIN_KEYPOINT_SCORE).sum() < 2:
            return 0.0, 0.0, float(width), float(height)
        points = self.pose[self.pose[:, 2] >= MIN_KEYPOINT_SCORE, :2]
        return (*points.min(axis=0).tolist(), *points.max(axis=0).tolist())

    def part_centre(self, part: str) -> tuple[float, float]:
        """Where the part's confident keypoints are (the crop's centre for "image centre" or unseen)."""
        width, height = self.crop.input_size
        centre = ((width - 1) / 2, (height - 1) / 2)
        keypoints = OCCLUDED_PARTS.get(part)
        if keypoints is None or self.pose is None:
            return centre
        seen = self.pose[list(keypoints)]
        seen = seen[seen[:, 2] >= MIN_KEYPOINT_SCORE]
        return tuple(seen[:, :2].mean(axis=0).tolist()) if len(seen) else centre


def perturbed(frame_bgr: np.ndarray, subject: Subject, kind: str, amount: float, part: str, pad_value: float
              ) -> tuple[np.ndarray, CropTransform]:
    """The crop perturbed by `amount` of `kind` (a grey box over `part` for occlusion): its
    picture (uint8 BGR, the network's input) and the geometry it was cut with."""
    crop = subject.crop
    if kind == "turn":
        crop = turned(crop, amount)
    elif kind == "scale":
        crop = scaled(crop, amount)
    picture = cut(frame_bgr, crop, pad_value)
    if kind == "blur":
        picture = blurred(picture, amount)
    elif kind == "darken":
        picture = darkened(picture, amount)
    elif kind == "occlude":
        picture = occluded(picture, occluder_box(subject.person_box(), subject.part_centre(part), amount))
    return picture, crop


# --- running the network ------------------------------------------------------------------------


def network_input(pictures: list[np.ndarray]) -> np.ndarray:
    """uint8 BGR pictures (N of one size) as the network's input batch (N, 3, H, W) float32 RGB."""
    return np.stack([picture[:, :, ::-1].transpose(2, 0, 1) for picture in pictures]).astype(np.float32)


def best_poses(engine: PoseEngine, pictures: list[np.ndarray]) -> np.ndarray:
    """The best-scoring pose the network finds in each picture, (N, 17, 3) input pixels and
    score (zero scores where it finds none). All pictures run as one batch."""
    heads = engine.run(network_input(pictures))[: len(engine.head_outputs)]
    poses = np.zeros((len(pictures), 17, 3), np.float32)
    for index in range(len(pictures)):
        keypoints, scores = engine.family.decode([head[index] for head in heads], engine.info, DECODE)
        if len(keypoints):
            poses[index] = keypoints[int(np.argmax(scores))]
    return poses


def upright_turns(engine: PoseEngine, pictures: list[np.ndarray], plain: np.ndarray) -> np.ndarray:
    """For each (turned) picture, the turn in degrees that stands its body upright, found as the
    pipeline finds it: the quarter turn whose pose has the most evidence, then that pose's torso
    (refine.upright_angle; 0 below UPRIGHT_MIN_DEGREES or without a torso). `plain`: the poses
    already found in the pictures unturned (the first probe)."""
    height, width = pictures[0].shape[:2]
    probes = [plain] + [best_poses(engine, [turn_frame(p, turns) for p in pictures]) for turns in (1, 2, 3)]
    angles = np.zeros(len(pictures))
    for index in range(len(pictures)):
        views = [(unturned(probe[index:index + 1], turns, (width, height)),
                  probe[index:index + 1, :, 2].mean(axis=1)) for turns, probe in enumerate(probes)]
        pose = views[best_orientation(views)][0][0]
        angle = upright_angle(pose, UPRIGHT_MIN_DEGREES)
        angles[index] = math.degrees(angle) if angle is not None else 0.0
    return angles


@dataclass(frozen=True)
class Sweep:
    """The network's keypoint scores over a perturbation's amounts: `scores (S, 17)` on the
    perturbed crops; for a turn with the upright switch also `upright (S, 17)`, the scores on
    the crops stood upright again, and `turned_back (S,)`, the degrees each was turned by.
    `placed (S,)` (`placed_upright`): how many of the keypoints the unperturbed crop finds are
    found again in their place (right_places), of `reference`: a score alone does not say that
    upside down a head is not taken for feet."""

    kind: str
    amounts: np.ndarray
    scores: np.ndarray
    upright: np.ndarray | None = None
    turned_back: np.ndarray | None = None
    placed: np.ndarray | None = None
    placed_upright: np.ndarray | None = None
    reference: int = 0

    def mean(self, keypoints: tuple[int, ...], upright: bool = False) -> np.ndarray:
        scores = self.upright if upright and self.upright is not None else self.scores
        return scores[:, list(keypoints)].mean(axis=1)


@dataclass(frozen=True)
class Probe:
    """The perturbed crop at one amount and what the network found there (input pixels); with
    the upright switch also the crop stood upright and its pose."""

    picture: np.ndarray
    pose: np.ndarray
    upright_picture: np.ndarray | None = None
    upright_pose: np.ndarray | None = None
    turned_back: float = 0.0


def subject_of(engine: PoseEngine, frame_bgr: np.ndarray, crop: CropTransform, on_person: bool = True) -> Subject:
    """The person in the crop as the network sees it unperturbed (where the box covers parts)."""
    pose = best_poses(engine, [cut(frame_bgr, crop, engine.family.pad_value)])[0]
    return Subject(crop, pose if (pose[:, 2] >= MIN_KEYPOINT_SCORE).sum() >= 2 else None, on_person)


def sweep(engine: PoseEngine, frame_bgr: np.ndarray, subject: Subject, kind: str, part: str = "image centre",
          upright: bool = False, amounts: tuple[float, ...] | None = None) -> Sweep:
    """Run the network on the crop perturbed by each amount of `kind` (the perturbation's own
    steps unless given); with `upright` (turns only) also on each crop stood upright again."""
    amounts = PERTURBATIONS[kind].steps if amounts is None else amounts
    pad = engine.family.pad_value
    cuts = [perturbed(frame_bgr, subject, kind, amount, part, pad) for amount in amounts]
    pictures, crops = [picture for picture, _ in cuts], [crop for _, crop in cuts]
    plain = best_poses(engine, pictures)
    placed, reference = right_places(subject, crops, plain)
    if not (upright and kind == "turn"):
        return Sweep(kind, np.asarray(amounts, np.float64), plain[:, :, 2], placed=placed, reference=reference)
    angles = upright_turns(engine, pictures, plain)
    stood_crops = [turned(crop, angle) for crop, angle in zip(crops, angles)]
    stood = best_poses(engine, [cut(frame_bgr, crop, pad) for crop in stood_crops])
    return Sweep(kind, np.asarray(amounts, np.float64), plain[:, :, 2], stood[:, :, 2], angles, placed,
                 right_places(subject, stood_crops, stood)[0], reference)


PLACE_TOLERANCE = 0.1  # of the person's height: how far from its unperturbed place a keypoint may be found


def right_places(subject: Subject, crops: list[CropTransform], poses: np.ndarray) -> tuple[np.ndarray, int]:
    """How many keypoints each pose (N, 17, 3, input pixels of its crop) finds confidently
    within PLACE_TOLERANCE of the person's height of where the unperturbed crop found them
    (compared in frame pixels), counting those the unperturbed crop found confidently; and
    that count."""
    if subject.pose is None:
        return np.zeros(len(poses), int), 0
    known = subject.pose[:, 2] >= MIN_KEYPOINT_SCORE
    places = subject.crop.to_frame(subject.pose[:, :2])
    x0, y0, x1, y1 = subject.person_box()
    tolerance = PLACE_TOLERANCE * max(y1 - y0, x1 - x0) / subject.crop.scale
    counts = np.zeros(len(poses), int)
    for index, (crop, pose) in enumerate(zip(crops, poses)):
        found = crop.to_frame(pose[:, :2])
        near = np.hypot(*(found - places).T) <= tolerance
        counts[index] = int((known & near & (pose[:, 2] >= MIN_KEYPOINT_SCORE)).sum())
    return counts, int(known.sum())


def probe(engine: PoseEngine, frame_bgr: np.ndarray, subject: Subject, request: BreaksRequest) -> Probe:
    """The crop at the slider's amount, and the network's pose on it (and stood upright)."""
    pad = engine.family.pad_value
    amount = request.perturbation.clamp(request.amount)
    picture, crop = perturbed(frame_bgr, subject, request.kind, amount, request.part, pad)
    pose = best_poses(engine, [picture])
    if not (request.upright and request.kind == "turn"):
        return Probe(picture, pose[0])
    angle = float(upright_turns(engine, [picture], pose)[0])
    upright_picture = cut(frame_bgr, turned(crop, angle), pad)
    return Probe(picture, pose[0], upright_picture, best_poses(engine, [upright_picture])[0], angle)
