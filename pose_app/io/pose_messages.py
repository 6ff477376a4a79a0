"""The content of a live stream's messages, and its encodings (io/stream.py sends them).

`pose_message` decides once what a frame's message holds: frame, time, size and, per person, id,
score, the 17 keypoints by name (pixels and 0..1 of the frame) and optionally the angles, every
number as the CSV files write it (formats.as_written, angle_csv.degrees_text). `osc_bundle`,
`osc_array` and `json_text` only encode it: OSC (python-osc's encoding) and WebSocket JSON.
Addresses and units: docs/streaming.md.
"""

from __future__ import annotations

import functools
import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from pose_app.core.angles import ANGLE_NAMES, compute_angles
from pose_app.core.frames import Frame
from pose_app.core.poses import FramePoses
from pose_app.core.skeleton import KEYPOINT_NAMES
from pose_app.errors import optional_module
from pose_app.io.angle_csv import degrees_text, keypoints_as_written
from pose_app.io.formats import as_written, number_text

INSTALL_HINT = "streaming needs python-osc and websockets: pip install 'pose-app[stream]'"
OSC_FORMATS = ("bundle", "array")


@dataclass(frozen=True)
class PoseSnapshot:
    """What a sender needs of one processed frame, copied on the pipeline's thread (cheap: no
    image). keypoints (P, 17, 3) in original-frame pixels; captured_at: time.perf_counter() when
    the frame was read, where the latency to the message sent is measured from."""

    frame: int
    time_s: float
    width: int
    height: int
    ids: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray
    captured_at: float

    @classmethod
    def of(cls, frame: Frame, poses: FramePoses, captured_at: float) -> PoseSnapshot:
        height, width = frame.image.shape[:2]
        return cls(frame.index, frame.time_s, width, height, poses.ids.copy(), poses.scores.copy(),
                   poses.keypoints.copy(), captured_at)


def _angle_value(degrees: float) -> float | None:
    text = degrees_text(degrees)
    return float(text) if text else None


def pose_message(snapshot: PoseSnapshot, angles: bool = False) -> dict[str, Any]:
    """The content of one frame's message, every number rounded as the CSV files write it:
    frame, time_s (s), width, height (pixels), people in the pipeline's order, each with id,
    score and, per keypoint name, x and y (original-frame pixels), x_norm and y_norm (x / width,
    y / height) and score; with `angles`, each angle in degrees as the angles CSV has it (None
    where a keypoint of it scores below 0.3)."""
    keypoints = snapshot.keypoints.astype(np.float64)
    pixels = as_written("pixel", keypoints[..., :2]).tolist()  # (P, 17, 2)
    norm = as_written("norm", keypoints[..., :2] / (snapshot.width, snapshot.height)).tolist()
    scores = as_written("score", keypoints[..., 2]).tolist()  # (P, 17)
    degrees = compute_angles(keypoints_as_written(keypoints))[0] if angles and len(keypoints) else None
    people = []
    for person, (person_id, score) in enumerate(zip(snapshot.ids.tolist(), snapshot.scores.tolist())):
        points = zip(KEYPOINT_NAMES, pixels[person], norm[person], scores[person])
        entry: dict[str, Any] = {
            "id": int(person_id),
            "score": float(number_text("score", score)),
            "keypoints": {
                name: {"x": x, "y": y, "x_norm": x_norm, "y_norm": y_norm, "score": point_score}
                for name, (x, y), (x_norm, y_norm), point_score in points
            },
        }
        if degrees is not None:
            entry["angles"] = {name: _angle_value(value) for name, value in zip(ANGLE_NAMES, degrees[person].tolist())}
        people.append(entry)
    return {
        "frame": snapshot.frame,
        "time_s": float(number_text("time", snapshot.time_s)),
        "width": snapshot.width,
        "height": snapshot.height,
        "people": people,
    }


# ---------------------------------------------------------------------------- encodings


def osc_encoders():
    """python-osc's OSC type encoders, or PoseAppError saying how to install python-osc."""
    return optional_module("pythonosc.parsing.osc_types", INSTALL_HINT)


# A frame is hundreds of messages: python-osc's message builders would parse every message back
# after building it, which costs the pipeline's thread GIL time (docs/streaming.md: timing). So
# python-osc encodes each address and type tags once (cached: the same addresses every frame) and
# its timetag, and the arguments are packed directly, as python-osc packs them: OSC int32 and
# float32 are struct's big-endian "i" and "f".
@functools.lru_cache(maxsize=4096)
def _osc_head(address: str, tags: str) -> bytes:
    osc_types = osc_encoders()
    return osc_types.write_string(address) + osc_types.write_string("," + tags)


def _osc_message(address: str, tags: str, *values: float) -> bytes:
    return _osc_head(address, tags) + struct.pack(">" + tags, *values)


def _xy(point: dict[str, float], pixels: bool) -> tuple[float, float]:
    return (point["x"], point["y"]) if pixels else (point["x_norm"], point["y_norm"])


def osc_bundle(message: dict[str, Any], pixels: bool = False) -> bytes:
    """One OSC bundle (timetag: immediately) of a frame's message: /pose/frame (int frame, float
    time_s, int width, int height, int people), per person /pose/<id>/score (float) and
    /pose/<id>/<keypoint> (float x, float y, float score: x, y in 0..1 of the frame, or pixels
    with `pixels`), and /pose/<id>/angle/<name> (float degrees) for each angle not missing."""
    osc_types = osc_encoders()
    elements = [_osc_message("/pose/frame", "ifiii", message["frame"], message["time_s"], message["width"],
                             message["height"], len(message["people"]))]
    for person in message["people"]:
        prefix = f"/pose/{person['id']}"
        elements.append(_osc_message(f"{prefix}/score", "f", person["score"]))
        for name, point in person["keypoints"].items():
            elements.append(_osc_message(f"{prefix}/{name}", "fff", *_xy(point, pixels), point["score"]))
        for name, degrees in person.get("angles", {}).items():
            if degrees is not None:
                elements.append(_osc_message(f"{prefix}/angle/{name}", "f", degrees))
    return b"".join([
        osc_types.write_string("#bundle"), osc_types.write_date(osc_types.IMMEDIATELY),
        *(struct.pack(">i", len(element)) + element for element in elements),
    ])


def osc_array(message: dict[str, Any], pixels: bool = False) -> bytes:
    """One /poses OSC message of a frame: int frame, float time_s, int width, int height, int
    people, then per person int id, float score and 17 x (float x, float y, float score) in
    KEYPOINT_NAMES order (units as osc_bundle)."""
    values: list[float] = [message["frame"], message["time_s"], message["width"], message["height"],
                           len(message["people"])]
    tags = "ifiii"
    for person in message["people"]:
        values += [person["id"], person["score"]]
        for point in person["keypoints"].values():
            values += [*_xy(point, pixels), point["score"]]
        tags += "if" + "fff" * len(person["keypoints"])
    return _osc_message("/poses", tags, *values)


def json_text(message: dict[str, Any]) -> str:
    """The WebSocket text of a frame's message (JSON; a missing angle is null)."""
    return json.dumps(message, separators=(",", ":"))
