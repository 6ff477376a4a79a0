"""The "what breaks it" view of the feature-map dock ("breaks", numpy/OpenCV, no Qt): the
person's crop perturbed by the slider's amount with what the network found on it, and beside it
each keypoint's score against the amount over a sweep (explain/breaks.py), the slider's amount
marked. With the upright switch a turned crop is also stood upright again, as the pipeline's
any-orientation does, and both curves are drawn.

The sweep costs about ten network runs (fifty with the switch): it is made once per perturbation,
covered part and switch and kept (BreaksSession) for SWEEP_EVERY frames of a playing video, so a
paused frame, a moved slider or another keypoint only redraws, and a playing video sweeps again
twice a second (the curves are the last sweep's; the crop at the slider's amount, one run, is
the current frame's).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from pose_app.core.poses import MIN_KEYPOINT_SCORE, FramePoses
from pose_app.core.skeleton import KEYPOINT_NAMES, SKELETON_EDGES
from pose_app.explain.breaks import (
    CROP_RESOLUTION,
    MEAN_GROUPS,
    BreaksRequest,
    Probe,
    Subject,
    Sweep,
    probe,
    subject_of,
    sweep,
)
from pose_app.explain.compare import person_crop
from pose_app.explain.lab_view import gap_canvas, message_picture, outlined_label
from pose_app.explain.panel import PanelContext, PanelRequest, PanelView, PanelViewKind, draw_dot, keypoint_color
from pose_app.inference.engine import PoseEngine

GAP = 6
LABEL_SCALE = 0.36
PLAIN_BGR, UPRIGHT_BGR, MARK_BGR = (40, 150, 255), (255, 255, 255), (0, 230, 255)
KEPT = 4  # sweeps kept (switching perturbations back and forth on a paused frame redraws at once)
SWEEP_EVERY = 15  # frames of a playing video from one sweep to the next (half a second at 30 fps)


@dataclass
class BreaksSession:
    """What the view keeps between frames: the subject of the frame drawn, the last sweeps (with
    the frame each was made on) and the last probe, each under the key of what it was made from."""

    subject: tuple[object, Subject, bool] | None = None  # frame, subject, whether its pose was found on it
    sweeps: dict[object, tuple[object, Sweep]] = field(default_factory=dict)
    probe: tuple[object, Probe] | None = None
    computed: int = 0  # sweeps made (tests: a redraw makes none)

    def fresh_sweep(self, key: tuple, frame: tuple) -> Sweep | None:
        """The sweep kept under `key` while it is recent: made by the same network on this frame
        or fewer than SWEEP_EVERY frames before it (on this picture, without frame numbers);
        else None (dropped)."""
        kept = self.sweeps.get(key)
        if kept is None:
            return None
        (index, fingerprint, name), result = kept
        if name == frame[2] and (0 <= frame[0] - index < SWEEP_EVERY if index is not None and frame[0] is not None
                                 else fingerprint == frame[1]):
            return result
        del self.sweeps[key]
        return None


def _key(request: BreaksRequest) -> tuple:
    """What a sweep depends on besides the frame and network: the covered part only for
    occlusion, the switch only for turns."""
    return (request.kind, request.part if request.kind == "occlude" else "",
            request.upright and request.kind == "turn")


def plot_x(kind: str, amount: float, low: float, high: float) -> float:
    """Where an amount lies on the plot's x axis, 0..1 (scale on a log axis: 0.5x and 2x equally far from 1x)."""
    if kind == "scale":
        return float((np.log(amount) - np.log(low)) / (np.log(high) - np.log(low)))
    return float((amount - low) / (high - low))


def score_plot(result: Sweep, request: BreaksRequest, keypoint: int | None, size: tuple[int, int]) -> np.ndarray:
    """Each keypoint's score (thin, its colour; the dock's keypoint thick) and the mean of the
    chosen keypoints (thick) against the amount; with the upright switch the mean on the crops
    as cut (orange) and stood upright (white). The slider's amount marked in yellow."""
    width, height = size
    plot = gap_canvas(height, width)
    perturbation = request.perturbation
    left, right, top, bottom = 26, 8, 32, 18
    inner_w, inner_h = width - left - right, height - top - bottom
    xs = np.array([left + inner_w * plot_x(result.kind, a, perturbation.low, perturbation.high) for a in result.amounts])

    def ys(scores: np.ndarray) -> np.ndarray:
        return top + inner_h * (1 - np.clip(scores, 0, 1))

    def line(scores: np.ndarray, color, thickness: int) -> None:
        points = np.rint(np.stack([xs, ys(scores)], axis=1) * 16).astype(np.int32)
        cv2.polylines(plot, [points], False, color, thickness, cv2.LINE_AA, 4)

    for value in (0.0, 0.5, 1.0):
        y = round(float(ys(np.array([value]))[0]))
        cv2.line(plot, (left, y), (width - right, y), (70, 70, 70), 1)
        outlined_label(plot, f"{value:g}", (2, y + 4), 0.3)
    upright = result.upright is not None
    shown = result.upright if upright else result.scores
    for index in range(shown.shape[1]):
        if index != keypoint:
            line(shown[:, index], tuple(int(c * 0.55) for c in keypoint_color(index)), 1)
    group = MEAN_GROUPS[request.mean_of]
    if upright:
        line(result.mean(group), PLAIN_BGR, 2)
    line(result.mean(group, upright), UPRIGHT_BGR if upright else PLAIN_BGR, 2)
    if keypoint is not None:
        line(shown[:, keypoint], keypoint_color(keypoint), 2)
    x = left + inner_w * plot_x(result.kind, perturbation.clamp(request.amount), perturbation.low, perturbation.high)
    cv2.line(plot, (round(x), top), (round(x), height - bottom), MARK_BGR, 1, cv2.LINE_AA)
    outlined_label(plot, perturbation.text(perturbation.low), (left - 4, height - 4), 0.3)
    high = perturbation.text(perturbation.high)
    outlined_label(plot, high, (width - right - 7 * len(high), height - 4), 0.3)
    outlined_label(plot, f"score vs {perturbation.name} ({len(result.amounts)} steps)", (3, 12), LABEL_SCALE)
    legend = (f"orange: as cut, white: stood upright; mean of {request.mean_of}" if upright
              else f"thick: mean of {request.mean_of}")
    if keypoint is not None:
        legend += f", {KEYPOINT_NAMES[keypoint]}"
    outlined_label(plot, legend, (3, 12 + 14), 0.3)
    return plot


def pose_picture(picture: np.ndarray, pose: np.ndarray, side: int, mirror: bool, label: str) -> np.ndarray:
    """The network's input shown `side` px square with the pose it found (keypoints at least
    MIN_KEYPOINT_SCORE), flipped as the main view is when mirrored, and labelled."""
    scale = side / picture.shape[1]
    shown = cv2.resize(picture, (side, round(picture.shape[0] * scale)), interpolation=cv2.INTER_AREA
                       if scale < 1 else cv2.INTER_LINEAR)
    points = (pose[:, :2] + 0.5) * scale - 0.5
    seen = pose[:, 2] >= MIN_KEYPOINT_SCORE
    for a, b in SKELETON_EDGES:
        if seen[a] and seen[b]:
            cv2.line(shown, tuple(np.rint(points[a]).astype(int)), tuple(np.rint(points[b]).astype(int)),
                     (230, 230, 230), 1, cv2.LINE_AA)
    for index in np.flatnonzero(seen):
        draw_dot(shown, points[index], 3.0, keypoint_color(int(index)))
    if mirror:
        shown = cv2.flip(shown, 1)
    outlined_label(shown, label, (3, 13), LABEL_SCALE)
    return shown


class BreaksView(PanelViewKind):
    """What breaks the network: a perturbation of the person's crop swept over its range."""

    name = "breaks"
    label = "What breaks it (turn, scale, blur, darken, occlude)"

    def controls(self, request: PanelRequest) -> frozenset[str]:
        return frozenset({"breaks", "keypoint"})

    def full_frame(self, request: PanelRequest) -> bool:
        return False  # it runs the crop network itself around the person the pipeline found

    def new_state(self) -> BreaksSession:
        return BreaksSession()

    def compose(self, image_bgr, poses: FramePoses, request: PanelRequest, context: PanelContext) -> PanelView:
        width = max(request.picture_width(image_bgr), 320)
        engine = context.crop_engine or context.engine
        if engine is None:
            return PanelView(message_picture(width, "needs the running network"), "The breaks view needs the running "
                             "network", self.name)
        session, breaks = context.state_of(self), request.breaks
        frame = (context.frame_index, hash(image_bgr[::16, ::16].tobytes()), engine.info.name)
        key = _key(breaks)
        result = session.fresh_sweep(key, frame)
        if session.subject is None or session.subject[0] != frame or (result is None and not session.subject[2]):
            size = engine.family.crop_input_size(engine.info, CROP_RESOLUTION, 1.0)
            crop, on_person = person_crop(poses, (image_bgr.shape[1], image_bgr.shape[0]), size)
            last = session.subject[1] if session.subject is not None else None
            if result is not None and last is not None and last.on_person == on_person:
                # Between sweeps the person's parts keep their place in the crop that follows them:
                # the last pose found there places the grey box (no run to find it again).
                session.subject = (frame, Subject(crop, last.pose, on_person), False)
            else:  # a sweep is made on this frame: the person as the network sees it now
                session.subject = (frame, subject_of(engine, image_bgr, crop, on_person), True)
            session.probe = None
        subject = session.subject[1]
        if result is None:
            while len(session.sweeps) >= KEPT:
                session.sweeps.pop(next(iter(session.sweeps)))
            result = sweep(engine, image_bgr, subject, breaks.kind, breaks.part, key[2])
            session.sweeps[key] = (frame, result)
            session.computed += 1
        amount = breaks.perturbation.clamp(breaks.amount)
        if session.probe is None or session.probe[0] != (key, amount):
            session.probe = ((key, amount), probe(engine, image_bgr, subject, breaks))
        at = session.probe[1]
        picture = self._layout(result, at, breaks, request.keypoint, width, context.mirror, engine)
        return PanelView(picture, self._caption(result, at, breaks, engine, subject), self.name)

    @staticmethod
    def _layout(result: Sweep, at: Probe, breaks: BreaksRequest, keypoint: int | None, width: int, mirror: bool,
                engine: PoseEngine) -> np.ndarray:
        """Landscape, as the dock is: the perturbed crop left (over it the crop stood upright,
        with the switch), the plot right."""
        # Taller with the upright pair, so that its two crops stay readable stacked.
        height = round(width * (0.45 if at.upright_picture is None else 0.55))
        text = breaks.perturbation.text(breaks.perturbation.clamp(breaks.amount))
        if at.upright_picture is None:
            side = height
            column = pose_picture(at.picture, at.pose, side, mirror, f"{text}: {at.pose[:, 2].mean():.2f}")
        else:
            side = (height - GAP) // 2
            column = gap_canvas(height, side)
            column[:side] = pose_picture(at.picture, at.pose, side, mirror, f"{text}: {at.pose[:, 2].mean():.2f}")
            column[side + GAP:2 * side + GAP] = pose_picture(at.upright_picture, at.upright_pose, side, mirror,
                                                             f"upright: {at.upright_pose[:, 2].mean():.2f}")
        picture = gap_canvas(height, width)
        picture[:, :side] = column[:height]
        picture[:, side + GAP:] = score_plot(result, breaks, keypoint, (width - side - GAP, height))
        return picture

    @staticmethod
    def _caption(result: Sweep, at: Probe, breaks: BreaksRequest, engine: PoseEngine, subject: Subject) -> str:
        perturbation, group = breaks.perturbation, MEAN_GROUPS[breaks.mean_of]
        mean = result.mean(group)
        where = "the person's crop" if subject.on_person else "the whole frame (nobody found)"
        what = {"turn": "turned", "scale": "scaled", "blur": "blurred", "darken": "darkened",
                "occlude": f"with a grey box over the {breaks.part}"}[breaks.kind]
        text = (f"{engine.info.name} on {where} {what}, {len(result.amounts)} amounts from "
                f"{perturbation.text(result.amounts[0])} to {perturbation.text(result.amounts[-1])}: the mean score of "
                f"{breaks.mean_of} goes {mean[0]:.2f} → {mean[-1]:.2f} (lowest {mean.min():.2f} at "
                f"{perturbation.text(result.amounts[int(np.argmin(mean))])}); at the slider's "
                f"{perturbation.text(perturbation.clamp(breaks.amount))} (yellow) {at.pose[:, 2].mean():.2f} over "
                f"every keypoint. ")
        if result.reference:
            nearest = int(np.argmin(np.abs(result.amounts - perturbation.clamp(breaks.amount))))
            text += (f"Keypoints found where the unperturbed crop finds them (within 10 % of the person's size): "
                     f"{result.placed[0]} of {result.reference} at {perturbation.text(result.amounts[0])}, "
                     f"{result.placed[nearest]} at {perturbation.text(result.amounts[nearest])}"
                     + (f" ({result.placed_upright[nearest]} stood upright)" if result.placed_upright is not None
                        else "") + ". ")
        if result.upright is not None:
            stood = result.mean(group, upright=True)
            return text + (
                f"Stood upright again as the pipeline's any-orientation does (the quarter turn with the most evidence, "
                f"then the torso), the same crops score {stood.min():.2f}-{stood.max():.2f}; at the slider the crop was "
                f"turned back {at.turned_back:.0f}°. The network learnt from upright people: upside down, a head "
                "where feet should be matches nothing it knows.")
        lesson = {
            "turn": "The network learnt from upright people: turned far, a body no longer looks like one. Switch on "
                    "'turn the crop upright' to see what the pipeline's any-orientation changes.",
            "scale": "Too small and the joints shrink below what its filters see; too large and the body leaves the crop.",
            "blur": "Blur removes the edges its first layers look for.",
            "darken": "Contrast, not brightness, is what it reads: it holds until little of the picture is left.",
            "occlude": "Pick a keypoint of the covered part: where its score holds, the network guesses the joint "
                       "from what is around it (the rest of the body), not from the joint itself.",
        }[breaks.kind]
        return text + lesson
