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
applies to raw features: logit = weights . f + bias. Then, like PoseNet's offset head, a second
1x1 head says where in its cell the point lies: two more weighted sums (rows, columns), fitted by
ridge least squares on the cells within OFFSET_RADIUS of each click (the penalty chosen by leaving
one click out), so the point is found finer than the block's grid.

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
OFFSET_RADIUS = 1.5  # cells around a click whose offsets to it are learnt (and the most one may move the point)
# Ridge penalties tried for the offset head (on the standardised weights: a few hundred cells,
# hundreds of channels); the one that predicts left-out clicks best is kept (fit_offsets).
OFFSET_PENALTIES = (10.0, 100.0, 1000.0, 10000.0)
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


def fit_ridge(features: np.ndarray, targets: np.ndarray, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights (C, K) and bias (K,) of features . weights + bias closest to `targets` (N, K) in
    least squares, with a penalty l2 |w|^2 on the weights of the standardised features."""
    x = np.asarray(features, np.float64)
    y = np.asarray(targets, np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / std
    centred = y - y.mean(axis=0)
    if len(z) <= z.shape[1]:  # fewer cells than channels (the usual case): the N x N system
        solved = z.T @ np.linalg.solve(z @ z.T + l2 * np.eye(len(z)), centred)
    else:
        solved = np.linalg.solve(z.T @ z + l2 * np.eye(z.shape[1]), z.T @ centred)
    raw = solved / std[:, None]
    return raw.astype(np.float32), (y.mean(axis=0) - mean @ raw).astype(np.float32)


def offset_set(samples: Sequence[TeachSample], radius: float = OFFSET_RADIUS
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, C) feature vectors of the cells within `radius` cells of each click, (N, 2) the click's
    position from each of them (rows, columns, in cells) and (N,) the sample each came from."""
    features, offsets, groups = [], [], []
    for n, sample in enumerate(samples):
        rows, cols = sample.content
        row, col = np.mgrid[:rows, :cols]
        near = np.hypot(row - sample.cell[0], col - sample.cell[1]) <= radius
        features.append(sample.features[:, :rows, :cols][:, near].T)
        offsets.append(np.stack([sample.cell[0] - row[near], sample.cell[1] - col[near]], axis=1))
        groups.append(np.full(int(near.sum()), n))
    return np.concatenate(features), np.concatenate(offsets), np.concatenate(groups)


def fit_offsets(samples: Sequence[TeachSample], penalties: Sequence[float] = OFFSET_PENALTIES
                ) -> tuple[np.ndarray, np.ndarray, float]:
    """The offset head (weights (C, 2), bias (2,)) and its ridge penalty: the one of `penalties`
    whose head, fitted without a click's frame, best predicts that frame's offsets (leave one
    click out), refitted on every click. With 10-20 clicks a weak penalty overfits the hundreds
    of channels and a strong one learns nothing; which is right depends on the block and point."""
    features, offsets, groups = offset_set(samples)
    x = np.asarray(features, np.float64)
    z = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)
    errors = np.zeros(len(penalties))
    for group in np.unique(groups):
        held = groups == group
        kept, target = z[~held], offsets[~held]
        # One eigendecomposition of the kept cells' Gram matrix serves every penalty.
        values, vectors = np.linalg.eigh(kept @ kept.T)
        projected = vectors.T @ (target - target.mean(axis=0))
        cross = z[held] @ kept.T
        for n, l2 in enumerate(penalties):
            predicted = cross @ (vectors @ (projected / (values + l2)[:, None])) + target.mean(axis=0)
            errors[n] += float(((predicted - offsets[held]) ** 2).sum())
    best = float(penalties[int(np.argmin(errors))])
    return (*fit_ridge(features, offsets, best), best)


@dataclass(frozen=True, eq=False)
class TaughtPoint:
    """A taught 1x1 head on block `block` (C channels at `stride`): heatmap = sigmoid(weights . f + bias);
    with `offset_weights` (C, 2) and `offset_bias` (2,), the point's offset from a cell in cells
    (rows, columns) = f . offset_weights + offset_bias."""

    name: str
    block: str
    stride: int
    weights: np.ndarray
    bias: float
    losses: tuple[float, ...] = ()
    clicks: int = 0
    offset_weights: np.ndarray | None = None
    offset_bias: np.ndarray | None = None

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
        """(x, y, score): where the point is in frame pixels (the best cell on the frame moved by
        the learnt offset; without offsets, the centroid of its 3x3 neighbourhood's heat) and the
        heatmap's value there."""
        heat = self.heatmap(features)
        rows, cols = content_shape(transform, self.stride, heat.shape)
        shown = heat[:rows, :cols]
        i, j = np.unravel_index(int(shown.argmax()), shown.shape)
        if self.offset_weights is not None:
            offset = np.asarray(features, np.float32)[:, i, j] @ self.offset_weights + self.offset_bias
            row, col = np.array([i, j]) + np.clip(offset, -OFFSET_RADIUS, OFFSET_RADIUS)
            x, y = transform.to_frame(np.array([col * self.stride, row * self.stride], np.float64)).tolist()
            return x, y, float(shown[i, j])
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
    offset_weights, offset_bias, _ = fit_offsets(samples)
    return TaughtPoint(name, block, stride, weights, bias, tuple(losses), len(samples), offset_weights, offset_bias)


def save_taught(point: TaughtPoint, path: str | Path) -> Path:
    """Write a taught point as .npz (its name, block, stride, weights, bias, loss curve and offsets)."""
    path = Path(path)
    offsets = {} if point.offset_weights is None else {"offset_weights": point.offset_weights,
                                                        "offset_bias": point.offset_bias}
    with path.open("wb") as file:
        np.savez(file, name=np.array(point.name), block=np.array(point.block), stride=np.array(point.stride),
                 weights=point.weights, bias=np.array(point.bias), losses=np.array(point.losses, np.float32),
                 clicks=np.array(point.clicks), **offsets)
    return path


def load_taught(path: str | Path) -> TaughtPoint:
    """A taught point written by save_taught."""
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            offsets = (data["offset_weights"].astype(np.float32), data["offset_bias"].astype(np.float32)) if (
                "offset_weights" in data) else (None, None)
            return TaughtPoint(str(data["name"]), str(data["block"]), int(data["stride"]),
                               data["weights"].astype(np.float32), float(data["bias"]),
                               tuple(float(v) for v in data["losses"]), int(data["clicks"]), *offsets)
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
