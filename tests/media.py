"""Test media made from one public-domain photo that the repository ships (tests/data).

Every video and multi-person image the tests need is generated here, so a fresh clone exercises
the real paths (video decode, ONNX inference, tracking, CSV/JSON/video output) without the
development data in ../shared. Each medium is a script: actors are NASA's portrait of Eileen
Collins pasted as a square on a plain background, each moving and growing linearly from its first
to its last frame, present on some frames only, sometimes partly covered by a grey board. The
tests read the script to know how many people a frame holds, where they are and who is who.

The fixtures write each file once per test session into pytest's temporary folder (about a
second for all of them); import the fixtures a test module needs from here.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import pytest

from pose_app.cli.main import main
from pose_app.core.skeleton import KEYPOINT_INDEX, KEYPOINT_NAMES, NUM_KEYPOINTS, SKELETON_EDGES

PHOTO = Path(__file__).resolve().parent / "data" / "astronaut.jpg"  # 384x384, public domain (NASA)
BOARD_GREY = 128  # the occluding board's colour
# The photo's keypoints and box, labelled by hand (see the file and tests/data/README.md).
PHOTO_LABELS = PHOTO.with_name("astronaut-keypoints.json")


@lru_cache(maxsize=None)
def photo() -> np.ndarray:
    image = cv2.imread(str(PHOTO))
    assert image is not None, f"cannot read {PHOTO}"
    image.setflags(write=False)
    return image


@lru_cache(maxsize=64)
def _scaled_photo(size: int) -> np.ndarray:
    return cv2.resize(photo(), (size, size), interpolation=cv2.INTER_AREA)


@lru_cache(maxsize=None)
def photo_labels() -> tuple[np.ndarray, np.ndarray]:
    """The photo's hand labels: (17, 3) keypoints x, y, v in photo pixels (v 2: labelled, 0: not,
    x and y then 0) and the person's box (x, y, width, height)."""
    labels = json.loads(PHOTO_LABELS.read_text(encoding="utf-8"))
    assert (labels["width"], labels["height"]) == photo().shape[1::-1], "labels of another photo size"
    keypoints = np.zeros((NUM_KEYPOINTS, 3), np.float64)
    for name, (x, y) in labels["keypoints"].items():
        keypoints[KEYPOINT_INDEX[name]] = (x, y, 2)
    keypoints.setflags(write=False)
    box = np.asarray(labels["bbox"], np.float64)
    box.setflags(write=False)
    return keypoints, box


def _lerp(pair: tuple[float, float], t: float) -> float:
    return pair[0] + (pair[1] - pair[0]) * t


@dataclass(frozen=True)
class Actor:
    """The portrait as a square, present on `frames` (except `hidden` ones), moving from its
    (centre x, top, side) at the first frame to those at the last, linearly."""

    frames: range
    centre_x: tuple[float, float]
    top: tuple[float, float]
    size: tuple[float, float]
    hidden: range = range(0)

    def visible(self, index: int) -> bool:
        return index in self.frames and index not in self.hidden

    def square(self, index: int) -> tuple[int, int, int]:
        """(x0, y0, side) of the photo at frame `index`, in frame pixels."""
        span = max(len(self.frames) - 1, 1)
        t = (index - self.frames.start) / span
        side = int(round(_lerp(self.size, t)))
        return int(round(_lerp(self.centre_x, t) - side / 2)), int(round(_lerp(self.top, t))), side

    def box(self, index: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the photo at frame `index`."""
        x0, y0, side = self.square(index)
        return x0, y0, x0 + side, y0 + side

    def to_frame(self, index: int, photo_xy: np.ndarray) -> np.ndarray:
        """Photo pixel coordinates (..., 2) -> frame pixels at frame `index` (pixel centres: the
        photo is resized by side / 384 and its top left corner put at the square's)."""
        x0, y0, side = self.square(index)
        scale = side / photo().shape[1]
        return (np.asarray(photo_xy, np.float64) + 0.5) * scale - 0.5 + (x0, y0)

    def keypoints(self, index: int) -> np.ndarray:
        """(17, 3) the photo's hand-labelled keypoints at frame `index`: x, y in frame pixels and
        v (2 labelled, 0 not), before any clipping by the frame or covering by a board."""
        labels, _ = photo_labels()
        keypoints = labels.copy()
        labelled = labels[:, 2] > 0
        keypoints[labelled, :2] = self.to_frame(index, labels[labelled, :2])
        return keypoints

    def person_box(self, index: int) -> np.ndarray:
        """(x0, y0, x1, y1) of the hand-labelled person box at frame `index`, in frame pixels
        (box edges, so the corners are those of the outermost pixels)."""
        _, (x, y, width, height) = photo_labels()
        x0, y0, side = self.square(index)
        scale = side / photo().shape[1]
        return np.array([x0 + x * scale, y0 + y * scale, x0 + (x + width) * scale, y0 + (y + height) * scale])


@dataclass(frozen=True)
class Occluder:
    """A grey board in front of `actor` on `frames`; `rect` (u0, v0, u1, v1) in fractions of the
    actor's photo (0, 0 its top left corner)."""

    frames: range
    actor: int
    rect: tuple[float, float, float, float]


@dataclass(frozen=True)
class Medium:
    """A scripted video (or, with `fourcc` None, a still image) and, once written, its path."""

    name: str
    fourcc: str | None
    width: int
    height: int
    fps: float
    frame_count: int
    actors: tuple[Actor, ...]
    occluders: tuple[Occluder, ...] = ()
    path: Path | None = None

    def __str__(self) -> str:
        return str(self.path)

    @property
    def stem(self) -> str:
        return Path(self.name).stem

    def people(self, index: int) -> list[int]:
        """Indices of the actors visible at frame `index`."""
        return [k for k, actor in enumerate(self.actors) if actor.visible(index)]

    def actor_of(self, index: int, keypoints: np.ndarray, min_score: float = 0.3) -> int | None:
        """The visible actor whose photo holds the median of a pose's (17, 3) keypoints scored
        >= min_score at frame `index`; None when no photo does."""
        confident = keypoints[keypoints[:, 2] >= min_score, :2]
        if len(confident) == 0:
            return None
        x, y = np.median(confident, axis=0)
        for k in self.people(index):
            x0, y0, x1, y1 = self.actors[k].box(index)
            if x0 <= x < x1 and y0 <= y < y1:
                return k
        return None

    def boards(self, index: int, actor: int) -> list[tuple[int, int, int, int]]:
        """(x0, y0, x1, y1) of the boards in front of `actor` at frame `index`, in frame pixels."""
        x0, y0, side = self.actors[actor].square(index)
        return [
            (x0 + int(u0 * side), y0 + int(v0 * side), x0 + int(u1 * side), y0 + int(v1 * side))
            for board in self.occluders if board.actor == actor and index in board.frames
            for u0, v0, u1, v1 in [board.rect]
        ]

    def ground_truth(self, index: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """(keypoints (17, 3), box (x, y, width, height)) of each visible actor at frame `index`,
        from the photo's hand labels: keypoints outside the frame or behind a board are
        unlabelled (v 0), the box is clipped to the frame."""
        people = []
        for k in self.people(index):
            keypoints = self.actors[k].keypoints(index)
            x, y = keypoints[:, 0], keypoints[:, 1]
            hidden = (x < -0.5) | (x > self.width - 0.5) | (y < -0.5) | (y > self.height - 0.5)
            for bx0, by0, bx1, by1 in self.boards(index, k):
                hidden |= (x >= bx0 - 0.5) & (x <= bx1 + 0.5) & (y >= by0 - 0.5) & (y <= by1 + 0.5)
            keypoints[hidden] = 0.0
            box = np.clip(self.actors[k].person_box(index), 0, [self.width, self.height] * 2)
            people.append((keypoints, np.concatenate([box[:2], box[2:] - box[:2]])))
        return people

    def render(self, index: int) -> np.ndarray:
        """Frame `index` as BGR uint8 (what the file holds, before compression)."""
        shade = np.linspace(150, 110, self.height, dtype=np.float32).astype(np.uint8)
        canvas = np.repeat(np.repeat(shade[:, None, None], self.width, axis=1), 3, axis=2)
        for k in self.people(index):
            x0, y0, side = self.actors[k].square(index)
            _paste(canvas, _scaled_photo(side), x0, y0)
            for bx0, by0, bx1, by1 in self.boards(index, k):
                cv2.rectangle(canvas, (bx0, by0), (bx1, by1), (BOARD_GREY,) * 3, thickness=-1)
        return canvas

    def write(self, folder: Path) -> Medium:
        """Write the file into `folder` (once: an existing file is kept) and return the medium with its path."""
        path = folder / self.name
        if not path.exists():
            partial = path.with_name(f"partial-{self.name}")
            if self.fourcc is None:
                assert cv2.imwrite(str(partial), self.render(0)), f"cannot write {partial}"
            else:
                writer = cv2.VideoWriter(
                    str(partial), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, (self.width, self.height)
                )
                assert writer.isOpened(), f"this OpenCV cannot write {self.fourcc} into {partial}"
                try:
                    for index in range(self.frame_count):
                        writer.write(self.render(index))
                finally:
                    writer.release()
            partial.chmod(0o444)  # read-only, as the development media are: no test may change them
            partial.rename(path)
        return dataclasses.replace(self, path=path)


def _paste(canvas: np.ndarray, image: np.ndarray, x0: int, y0: int) -> None:
    """Copy `image` with its top left corner at (x0, y0), clipped to the canvas."""
    height, width = canvas.shape[:2]
    xa, ya = max(x0, 0), max(y0, 0)
    xb, yb = min(x0 + image.shape[1], width), min(y0 + image.shape[0], height)
    if xa < xb and ya < yb:
        canvas[ya:yb, xa:xb] = image[ya - y0 : yb - y0, xa - x0 : xb - x0]


RIGHT_ARM = (0.0, 0.7, 0.28, 1.0)  # her right elbow and wrist (image left, bottom)

# One person walking to the right and towards the camera: 2 s, 640x480, 30 fps, MJPG in
# Matroska (millisecond timestamps, as a camera recording has). Her face stays in the upper
# half. A board covers her right arm for 2 frames (40-41) and again for 6 (43-48): the
# keypoints there drop out for a short and a long gap.
WALK = Medium(
    "walk-640x480.mkv", "MJPG", 640, 480, 30.0, 60,
    actors=(Actor(range(60), centre_x=(200, 440), top=(30, 50), size=(300, 360)),),
    occluders=(Occluder(range(40, 42), 0, RIGHT_ARM), Occluder(range(43, 49), 0, RIGHT_ARM)),
)

# Her right arm hidden for a moment, then seen again: one person drifting to the right and
# growing a little, 40 frames at 30 fps, MJPG in Matroska; a board covers her right elbow and
# wrist on frames 12-15. Tracked crops must find the arm again as soon as the board is gone
# (frames 16-19 run on crops only at the default 0.33 s schedule), not at the next full-frame
# pass: a crop cut around only what was confident on the last frame would have lost it.
ARM_DROPOUT = Medium(
    "arm-dropout-640x480.mkv", "MJPG", 640, 480, 30.0, 40,
    actors=(Actor(range(40), centre_x=(200, 300), top=(40, 40), size=(340, 380)),),
    occluders=(Occluder(range(12, 16), 0, RIGHT_ARM),),
)

# Three people: A walks on through the whole clip (out of sight on frames 50-54), B stands on
# the right and leaves after frame 29, C comes in on the left at frame 45. 3 s, 640x480,
# 30 fps, MJPG in AVI.
PEOPLE = Medium(
    "people-640x480.avi", "MJPG", 640, 480, 30.0, 90,
    actors=(
        Actor(range(90), centre_x=(290, 350), top=(120, 130), size=(200, 200), hidden=range(50, 55)),
        Actor(range(30), centre_x=(550, 550), top=(80, 90), size=(170, 170)),
        Actor(range(45, 90), centre_x=(95, 105), top=(150, 150), size=(170, 170)),
    ),
)

# A long, small clip (10 s, 320x240, 30 fps, MPEG-4 Part 2 in MP4) for runs that are
# interrupted before the end: one person drifting to the right.
LONG = Medium(
    "long-320x240.mp4", "mp4v", 320, 240, 30.0, 300,
    actors=(Actor(range(300), centre_x=(110, 210), top=(20, 30), size=(200, 210)),),
)

@dataclass(frozen=True)
class Sway(Medium):
    """A clip whose frames are turned by `tilts[index]` degrees (counter-clockwise on screen)
    about the first actor's photo centre: a person bending side to side, whose shoulder line
    turns by the tilt."""

    tilts: tuple[float, ...] = ()

    def render(self, index: int) -> np.ndarray:
        x0, y0, side = self.actors[0].square(index)
        turn = cv2.getRotationMatrix2D((x0 + side / 2, y0 + side / 2), self.tilts[index], 1.0)
        return cv2.warpAffine(super().render(index), turn, (self.width, self.height), borderMode=cv2.BORDER_REPLICATE)


# Side bends at 15 fps: (rest, bend) seconds; each bend tilts 0 -> SWAY_DEGREES -> 0 as a raised
# cosine. The repetitions a counter must find are the bends; the first rest is the start.
SWAY_FPS = 15.0
SWAY_DEGREES = 25.0
SWAY_SCRIPT = ((1.0, 1.6), (0.8, 1.6), (0.8, 1.6), (1.0, 0.0))


def sway_bends() -> list[tuple[float, float]]:
    """(start, end) seconds of each bend of SWAY_SCRIPT."""
    bends, now = [], 0.0
    for rest, bend in SWAY_SCRIPT:
        now += rest
        if bend:
            bends.append((now, now + bend))
        now += bend
    return bends


def sway_tilt(time_s: float) -> float:
    for start, end in sway_bends():
        if start <= time_s < end:
            return SWAY_DEGREES * 0.5 * (1 - np.cos(2 * np.pi * (time_s - start) / (end - start)))
    return 0.0


_SWAY_FRAMES = int(round(sum(rest + bend for rest, bend in SWAY_SCRIPT) * SWAY_FPS))
SWAY = Sway(
    "sway-320x240.mp4", "mp4v", 320, 240, SWAY_FPS, _SWAY_FRAMES,
    actors=(Actor(range(_SWAY_FRAMES), centre_x=(160, 160), top=(30, 30), size=(190, 190)),),
    tilts=tuple(sway_tilt(index / SWAY_FPS) for index in range(_SWAY_FRAMES)),
)


# A still image of three people of different sizes, 854x480 JPEG.
GROUP = Medium(
    "group-854x480.jpg", None, 854, 480, 0.0, 1,
    actors=(
        Actor(range(1), centre_x=(150, 150), top=(40, 40), size=(230, 230)),
        Actor(range(1), centre_x=(420, 420), top=(120, 120), size=(300, 300)),
        Actor(range(1), centre_x=(690, 690), top=(60, 60), size=(200, 200)),
    ),
)


def _written(factory: pytest.TempPathFactory, medium: Medium) -> Medium:
    folder = factory.getbasetemp() / "media"
    folder.mkdir(exist_ok=True)
    return medium.write(folder)


@pytest.fixture(scope="session")
def walk_clip(tmp_path_factory) -> Medium:
    return _written(tmp_path_factory, WALK)


@pytest.fixture(scope="session")
def arm_dropout_clip(tmp_path_factory) -> Medium:
    return _written(tmp_path_factory, ARM_DROPOUT)


@pytest.fixture(scope="session")
def people_clip(tmp_path_factory) -> Medium:
    return _written(tmp_path_factory, PEOPLE)


@pytest.fixture(scope="session")
def long_clip(tmp_path_factory) -> Medium:
    return _written(tmp_path_factory, LONG)


@pytest.fixture(scope="session")
def sway_clip(tmp_path_factory) -> Sway:
    return _written(tmp_path_factory, SWAY)


@pytest.fixture(scope="session")
def group_image(tmp_path_factory) -> Medium:
    return _written(tmp_path_factory, GROUP)


# Two people in a 640x360 JPEG; the one on the right is cut by the bottom edge (her box is clipped).
DUO = Medium(
    "duo-640x360.jpg", None, 640, 360, 0.0, 1,
    actors=(
        Actor(range(1), centre_x=(180, 180), top=(20, 20), size=(240, 240)),
        Actor(range(1), centre_x=(470, 470), top=(120, 120), size=(280, 280)),
    ),
)
LABELLED_STILLS = (GROUP, DUO)  # image ids 1 and 2


def coco_ground_truth(stills: tuple[Medium, ...]) -> dict:
    """COCO person keypoints of `stills` (image id i + 1 for stills[i], file_name its name), from
    the photo's hand labels; area is the clipped person box's, as COCO's README allows for
    converted labels."""
    images, annotations = [], []
    for image_id, still in enumerate(stills, start=1):
        images.append({"id": image_id, "file_name": still.name, "width": still.width, "height": still.height})
        for keypoints, box in still.ground_truth(0):
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                "bbox": [round(float(v), 2) for v in box], "area": round(float(box[2] * box[3]), 2),
                "keypoints": [round(float(v), 2) for v in keypoints.reshape(-1)],
                "num_keypoints": int(np.count_nonzero(keypoints[:, 2])),
            })
    category = {
        "id": 1, "name": "person", "supercategory": "person", "keypoints": list(KEYPOINT_NAMES),
        "skeleton": [[a + 1, b + 1] for a, b in SKELETON_EDGES],  # COCO's are 1-based
    }
    return {"images": images, "annotations": annotations, "categories": [category]}


@dataclass(frozen=True)
class LabelledSet:
    """A COCO-format keypoint set laid out like ../shared/data/coco-dev: `folder`/images/ and
    `folder`/person_keypoints.json."""

    folder: Path
    stills: tuple[Medium, ...]

    @property
    def images(self) -> Path:
        return self.folder / "images"

    @property
    def annotations(self) -> Path:
        return self.folder / "person_keypoints.json"


@pytest.fixture(scope="session")
def labelled_stills(tmp_path_factory) -> LabelledSet:
    """GROUP and DUO with their hand-labelled people as a COCO keypoint set (5 people)."""
    folder = tmp_path_factory.getbasetemp() / "labelled-stills"
    if not (folder / "person_keypoints.json").exists():
        (folder / "images").mkdir(parents=True, exist_ok=True)
        stills = tuple(still.write(folder / "images") for still in LABELLED_STILLS)
        partial = folder / "partial-person_keypoints.json"
        partial.write_text(json.dumps(coco_ground_truth(stills), indent=1), encoding="utf-8")
        partial.chmod(0o444)
        partial.rename(folder / "person_keypoints.json")
    return LabelledSet(folder, tuple(still.write(folder / "images") for still in LABELLED_STILLS))


@pytest.fixture(scope="session")
def walk_keypoints(walk_clip, tmp_path_factory) -> Path:
    """The long keypoint CSV of `pose-app process` on the walker clip (once per session)."""
    path = tmp_path_factory.mktemp("angles-walk") / "walk.csv"
    assert main(["process", str(walk_clip), "--csv", str(path)]) == 0
    return path
