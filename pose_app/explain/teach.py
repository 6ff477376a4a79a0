"""Teach the network a new point (numpy only, no Qt, no torch): a 1x1 heatmap head trained on the
frozen features of one block, from a few clicks on paused frames.

The learner clicks the point (a racket tip, the chin, a ball) on 10-20 frames. Each click keeps
its frame (TeachClick), so the head can be trained on any block the learner picks: the frozen
network runs once per clicked frame for that block's feature maps (C, H, W).
The head is what PoseNet's own heatmap heads are: at every cell, a weighted sum of the C channel
values plus a bias, through a sigmoid (a 1x1 convolution = logistic regression per cell). It is
trained by gradient descent (Adam) on a soft target: a Gaussian of `sigma` cells around each click,
0 far from it, each cell of every clicked frame one example. Only cells on the frame are used,
never the letterbox's padding. Features are standardised per channel while training (so one
learning rate suits every block) and the scaling is folded back into the weights, so the head
applies to raw features: logit = weights . f + bias.

Cells (i, j) sit at input pixel (j * stride, i * stride) (explain.network.cell_centre_in_frame);
points are frame pixels, (0, 0) the centre of the top-left pixel.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pose_app.core.geometry import FrameTransform
from pose_app.errors import PoseAppError
from pose_app.inference.engine import PoseEngine

SIGMA_CELLS = 1.0  # the target's spread around a click, in cells of the block
STEPS = 300  # gradient steps of one training run
LEARNING_RATE = 0.05
L2 = 1e-3  # weight decay on the standardised weights: 384 channels and 20 frames overfit without it
MIN_CLICKS = 2
MAX_CELLS = 20_000  # cells one training run fits at most (about a second of numpy on a busy 2-core CPU)


@dataclass(frozen=True, eq=False)
class TeachClick:
    """The learner's click: frame `frame` (its BGR image) and the point on it in frame pixels."""

    frame: int
    image: np.ndarray
    point: tuple[float, float]


@dataclass(frozen=True, eq=False)
class TeachSample:
    """One click: the block's features on that frame (C, H, W), the point in frame pixels, where
    it lies on the block's grid (row, col, fractional) and how many rows and columns of the grid
    lie on the frame (the rest is the letterbox's padding)."""

    frame: int
    point: tuple[float, float]
    features: np.ndarray
    cell: tuple[float, float]
    content: tuple[int, int]


def content_shape(transform: FrameTransform, stride: int, shape: tuple[int, int]) -> tuple[int, int]:
    """Rows and columns of a (H, W) grid at `stride` that lie on the frame, not on the padding."""
    width, height = transform.resized_size
    return min(shape[0], math.ceil(height / stride)), min(shape[1], math.ceil(width / stride))


def teach_sample(features: np.ndarray, transform: FrameTransform, stride: int, point: tuple[float, float],
                 frame: int = 0) -> TeachSample:
    """The sample a click at frame pixel `point` makes on a frame whose block output is `features`."""
    x, y = transform.to_input(np.array(point, np.float64)).tolist()
    values = np.array(features, np.float32)  # a copy: the frame's arrays are not ours to keep
    return TeachSample(frame, (float(point[0]), float(point[1])), values, (y / stride, x / stride),
                       content_shape(transform, stride, values.shape[1:]))


def samples_for_clicks(engine: PoseEngine, clicks: Sequence[TeachClick], block: str, stride: int,
                       resolution: int) -> list[TeachSample]:
    """The samples of `clicks` on `block`: the frozen network run on each clicked frame."""
    samples = []
    for click in clicks:
        output = engine.infer(click.image, resolution, (block,))
        samples.append(teach_sample(output.features[block], output.transform, stride, click.point, click.frame))
    return samples


def target_map(shape: tuple[int, int], cell: tuple[float, float], sigma: float = SIGMA_CELLS) -> np.ndarray:
    """(H, W) float32: exp(-d^2 / 2 sigma^2), d the distance from each cell to `cell` (row, col)."""
    rows, cols = np.mgrid[:shape[0], :shape[1]]
    distance2 = (rows - cell[0]) ** 2 + (cols - cell[1]) ** 2
    return np.exp(-distance2 / (2 * sigma * sigma)).astype(np.float32)


def training_set(samples: Sequence[TeachSample], sigma: float = SIGMA_CELLS,
                 max_cells: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) feature vectors of every cell on the frame of every sample and (N,) their targets.
    With `max_cells`, at most that many: every cell near a click (target >= 0.01) and an even
    random draw (fixed seed) of the others: fine blocks have 10-50x more cells than deep ones,
    and far cells all teach the same "not here"."""
    features, targets = [], []
    for sample in samples:
        rows, cols = sample.content
        values = sample.features[:, :rows, :cols]
        features.append(values.reshape(len(values), -1).T)
        targets.append(target_map((rows, cols), sample.cell, sigma).ravel())
    features, targets = np.concatenate(features).astype(np.float32), np.concatenate(targets)
    if max_cells is not None and len(targets) > max_cells:
        near = np.flatnonzero(targets >= 0.01)
        far = np.flatnonzero(targets < 0.01)
        drawn = np.random.default_rng(0).choice(far, max(0, max_cells - len(near)), replace=False)
        keep = np.sort(np.concatenate([near, drawn]))
        features, targets = features[keep], targets[keep]
    return features, targets


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -z)


def fit_logistic(features: np.ndarray, targets: np.ndarray, *, steps: int = STEPS, learning_rate: float = LEARNING_RATE,
                 l2: float = L2, balance: bool = True,
                 progress: Callable[[int, float], object] | None = None) -> tuple[np.ndarray, float, list[float]]:
    """Weights (C,) and bias of sigmoid(features . weights + bias) fitted to soft `targets` (N,)
    in [0, 1] by Adam on the cross-entropy; the loss after each step. `balance` weighs the few
    cells near the point as much as all the others together (else the head learns "never").
    `progress(step, loss)` is called after each step; training stops early when it returns False."""
    x = np.asarray(features, np.float32)
    t = np.asarray(targets, np.float32)
    mean = x.mean(axis=0)
    std = x.std(axis=0) + 1e-6
    z = (x - mean) / std
    z_t = np.ascontiguousarray(z.T)  # (C, N): the gradient's product reads it row by row
    if balance:
        positive = float(t.sum())
        ratio = (len(t) - positive) / max(positive, 1e-6)
        example = 1.0 + (max(ratio, 1.0) - 1.0) * t
    else:
        example = np.ones_like(t)
    example /= example.sum()
    weights = np.zeros(x.shape[1], np.float32)
    bias = 0.0
    moments = [np.zeros(x.shape[1] + 1, np.float32), np.zeros(x.shape[1] + 1, np.float32)]
    beta1, beta2 = 0.9, 0.999
    losses = []
    # The products use einsum, not BLAS: BLAS threads fighting the inference threads for a
    # 2-core CPU made a run 10-50x slower than one thread in our measurements.
    for step in range(1, steps + 1):
        logit = np.einsum("nc,c->n", z, weights) + bias
        loss = -(example * (t * _log_sigmoid(logit) + (1 - t) * _log_sigmoid(-logit))).sum()
        losses.append(float(loss + 0.5 * l2 * float(weights @ weights)))
        error = example * (1.0 / (1.0 + np.exp(-logit)) - t)  # d loss / d logit
        gradient = np.concatenate([np.einsum("cn,n->c", z_t, error) + l2 * weights, [error.sum()]]).astype(np.float32)
        moments[0] = beta1 * moments[0] + (1 - beta1) * gradient
        moments[1] = beta2 * moments[1] + (1 - beta2) * gradient * gradient
        update = learning_rate * (moments[0] / (1 - beta1**step)) / (np.sqrt(moments[1] / (1 - beta2**step)) + 1e-8)
        weights -= update[:-1]
        bias -= float(update[-1])
        if progress is not None and progress(step, losses[-1]) is False:
            break
    # Fold the standardisation back: w.(f - mean)/std + b = (w/std).f + (b - w.mean/std).
    raw = weights / std
    return raw.astype(np.float32), float(bias - raw @ mean), losses


@dataclass(frozen=True, eq=False)
class TaughtPoint:
    """A taught 1x1 head on block `block` (C channels at `stride`): heatmap = sigmoid(weights . f + bias)."""

    name: str
    block: str
    stride: int
    weights: np.ndarray
    bias: float
    losses: tuple[float, ...] = ()
    clicks: int = 0

    def logits(self, features: np.ndarray) -> np.ndarray:
        """(H, W) weights . f + bias at every cell of the block's output (C, H, W)."""
        if len(features) != len(self.weights):
            raise PoseAppError(f"the taught point {self.name!r} reads {len(self.weights)} channels of {self.block}, "
                               f"this block has {len(features)}")
        return np.tensordot(self.weights, np.asarray(features, np.float32), axes=1) + self.bias

    def heatmap(self, features: np.ndarray) -> np.ndarray:
        """(H, W) probability that the point is at each cell."""
        return (1.0 / (1.0 + np.exp(-self.logits(features)))).astype(np.float32)

    def find(self, features: np.ndarray, transform: FrameTransform) -> tuple[float, float, float]:
        """(x, y, score): where the point is in frame pixels (the best cell on the frame, refined
        to the centroid of its 3x3 neighbourhood's heat) and the heatmap's value there."""
        heat = self.heatmap(features)
        rows, cols = content_shape(transform, self.stride, heat.shape)
        shown = heat[:rows, :cols]
        i, j = np.unravel_index(int(shown.argmax()), shown.shape)
        window = shown[max(0, i - 1):i + 2, max(0, j - 1):j + 2]
        r, c = np.mgrid[max(0, i - 1):min(rows, i + 2), max(0, j - 1):min(cols, j + 2)]
        total = float(window.sum())
        row, col = (float((r * window).sum()) / total, float((c * window).sum()) / total) if total > 0 else (i, j)
        x, y = transform.to_frame(np.array([col * self.stride, row * self.stride], np.float64)).tolist()
        return x, y, float(shown[i, j])


def teach_point(samples: Sequence[TeachSample], name: str, block: str, stride: int, *, steps: int = STEPS,
                sigma: float = SIGMA_CELLS, progress: Callable[[int, float], object] | None = None) -> TaughtPoint:
    """Train a head for the point clicked in `samples` (all from block `block`)."""
    if len(samples) < MIN_CLICKS:
        raise PoseAppError(f"click the point on at least {MIN_CLICKS} frames first")
    features, targets = training_set(samples, sigma, MAX_CELLS)
    weights, bias, losses = fit_logistic(features, targets, steps=steps, progress=progress)
    return TaughtPoint(name, block, stride, weights, bias, tuple(losses), len(samples))


def save_taught(point: TaughtPoint, path: str | Path) -> Path:
    """Write a taught point as .npz (its name, block, stride, weights, bias and loss curve)."""
    path = Path(path)
    with path.open("wb") as file:
        np.savez(file, name=np.array(point.name), block=np.array(point.block), stride=np.array(point.stride),
                 weights=point.weights, bias=np.array(point.bias), losses=np.array(point.losses, np.float32),
                 clicks=np.array(point.clicks))
    return path


def load_taught(path: str | Path) -> TaughtPoint:
    """A taught point written by save_taught."""
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            return TaughtPoint(str(data["name"]), str(data["block"]), int(data["stride"]),
                               data["weights"].astype(np.float32), float(data["bias"]),
                               tuple(float(v) for v in data["losses"]), int(data["clicks"]))
    except (OSError, KeyError, ValueError) as error:
        raise PoseAppError(f"cannot read a taught point from {path}: {error}") from None


@dataclass(frozen=True)
class TeachRequest:
    """What the teaching view draws (PanelRequest.teach): the clicks so far as (frame, x, y) frame
    pixels, the taught point (None before training) and the loss curve of a run in progress."""

    clicks: tuple[tuple[int, float, float], ...] = ()
    point: TaughtPoint | None = None
    losses: tuple[float, ...] = ()  # while training; the taught point keeps its own
    training: bool = False


DEFAULT_TEACH = TeachRequest()
