"""Which blocks of two networks look alike: linear CKA (centred kernel alignment, Kornblith et al.
2019) in numpy, for the compare view (explain/compare_view.py).

Two blocks are compared on the same examples: here the cells of a common grid laid over the same
region of the same frames, each block's features bilinearly sampled there (`sample_grid`), so a
block of 384 channels at stride 16 and one of 24 channels at stride 4 give one row per grid
point each. A block's linear kernel K = X Xᵀ says how alike every two grid points look to it;
CKA is the correlation of two such kernels: 1 when one block's features are the other's turned
(an orthogonal transform) and scaled, near 0 when they share nothing.

HSIC is estimated without bias (Song et al. 2012), so that unrelated features give CKA near 0
even with few examples and many channels, and averaged over frames before dividing ("minibatch
CKA", Nguyen et al. 2021): a frame at a time, with memory that does not grow with the frames.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

import cv2
import numpy as np

# The common grid's side: 12 x 12 points per frame (each block is read there).
GRID = 12
# Frames whose estimates make up the matrix ("over recent frames").
RECENT_FRAMES = 16


def sample_grid(values: np.ndarray, cells_xy: np.ndarray) -> np.ndarray:
    """A map (C, H, W) read bilinearly at cell coordinates `cells_xy (N, 2)` (x = column, y =
    row, fractional; clamped to the map): (N, C), one row of features per point."""
    channels, height, width = values.shape
    x = np.clip(np.asarray(cells_xy[:, 0], np.float64), 0, width - 1)
    y = np.clip(np.asarray(cells_xy[:, 1], np.float64), 0, height - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    fx, fy = (x - x0).astype(np.float32), (y - y0).astype(np.float32)
    # The four neighbours of every point in one gather from the flattened map (a 2-D fancy index
    # per neighbour cost several times more).
    n = len(x)
    corners = np.take(values.reshape(channels, height * width),
                      np.concatenate([y0 * width + x0, y0 * width + x1, y1 * width + x0, y1 * width + x1]), axis=1)
    top = corners[:, :n] * (1 - fx) + corners[:, n:2 * n] * fx
    bottom = corners[:, 2 * n:3 * n] * (1 - fx) + corners[:, 3 * n:] * fx
    return np.ascontiguousarray((top * (1 - fy) + bottom * fy).T, np.float32)


def times_transposed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b.T in float64, by OpenCV. These products are small (144 x 384 x 144): NumPy hands them
    to a multithreaded BLAS, whose threads, fighting onnxruntime's on a busy 2-core machine, took
    30-100x longer than OpenCV's own single-threaded code (28 ms against 0.8 ms for one kernel)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a is b:
        return cv2.mulTransposed(a, False)
    return cv2.gemm(a, b, 1.0, None, 0.0, flags=cv2.GEMM_2_T)


def gram(features: np.ndarray) -> np.ndarray:
    """The linear kernel (n, n) of features (n, p), columns centred, in float64."""
    centred = np.asarray(features, np.float64)
    centred = centred - centred.mean(axis=0)
    return times_transposed(centred, centred)


class _KernelTerms:
    """What unbiased HSIC needs of one kernel: its off-diagonal part flattened, row sums and sum."""

    def __init__(self, kernel: np.ndarray):
        n = len(kernel)
        if n < 4:
            raise ValueError(f"unbiased HSIC needs at least 4 examples, got {n}")
        off = kernel.copy()
        np.fill_diagonal(off, 0.0)
        self.n, self.flat, self.rows = n, off.ravel(), off.sum(axis=1)
        self.total = float(self.rows.sum())


def _hsic(a: Sequence[_KernelTerms], b: Sequence[_KernelTerms]) -> np.ndarray:
    n = a[0].n
    traces = times_transposed(np.stack([t.flat for t in a]), np.stack([t.flat for t in b]))  # tr(K̃ L̃)
    sums = np.outer([t.total for t in a], [t.total for t in b])  # 1ᵀK̃1 · 1ᵀL̃1
    rows = times_transposed(np.stack([t.rows for t in a]), np.stack([t.rows for t in b]))  # 1ᵀ K̃ L̃ 1
    return (traces + sums / ((n - 1) * (n - 2)) - 2.0 * rows / (n - 2)) / (n * (n - 3))


def _self_hsic(terms: Sequence[_KernelTerms]) -> np.ndarray:
    """Unbiased HSIC of each kernel with itself (the diagonal of _hsic(terms, terms))."""
    n = terms[0].n
    return np.array([(float(np.square(t.flat).sum()) + t.total ** 2 / ((n - 1) * (n - 2))
                      - 2.0 * float(np.square(t.rows).sum()) / (n - 2)) / (n * (n - 3)) for t in terms])


def hsic_matrix(first: Sequence[np.ndarray], second: Sequence[np.ndarray]) -> np.ndarray:
    """Unbiased HSIC (Song et al. 2012) of every kernel of `first` with every kernel of `second`
    (all (n, n) over the same n examples): (len(first), len(second))."""
    return _hsic([_KernelTerms(k) for k in first], [_KernelTerms(k) for k in second])


def cka_from_hsic(cross: np.ndarray, first_self: np.ndarray, second_self: np.ndarray) -> np.ndarray:
    """CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)); 0 where a block never varied. Unbiased
    estimates of unrelated features scatter around 0 and may dip below it."""
    scale = np.sqrt(np.clip(np.outer(first_self, second_self), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(scale > 0, cross / np.where(scale > 0, scale, 1.0), 0.0)


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of two representations of the same n examples, x (n, p) and y (n, q)."""
    k, l_ = gram(x), gram(y)
    hsic = hsic_matrix([k, l_], [k, l_])
    return float(cka_from_hsic(hsic[:1, 1:], hsic[:1, 0], hsic[1:, 1])[0, 0])


def block_kernels(blocks: dict[str, np.ndarray]) -> list[_KernelTerms]:
    """What HSIC needs of each block's kernel, from its features (n, p) on the grid's points."""
    return [_KernelTerms(gram(values)) for values in blocks.values()]


class SimilarityOverFrames:
    """CKA of every block of one network with every block of another over the last `frames`
    frames: each frame's HSIC estimates are kept, and the matrix is their mean, normalised."""

    def __init__(self, frames: int = RECENT_FRAMES):
        self._estimates: deque[tuple[np.ndarray, np.ndarray, np.ndarray]] = deque(maxlen=frames)
        self.names: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())

    def __len__(self) -> int:
        return len(self._estimates)

    def add(self, first: dict[str, np.ndarray], second: dict[str, np.ndarray]) -> None:
        """One frame: each network's blocks by name, as features (n, p) on the same n points. A
        frame of other blocks (another model) starts the matrix over."""
        self.add_kernels((tuple(first), tuple(second)), block_kernels(first), block_kernels(second))

    def add_kernels(self, names: tuple[tuple[str, ...], tuple[str, ...]], first: list, second: list) -> None:
        """One frame from its blocks' kernels (`block_kernels`), each network's block names in
        `names`: `add` in two steps, for a caller that spreads the work over frames."""
        if names != self.names:
            self._estimates.clear()
            self.names = names
        self._estimates.append((_hsic(first, second), _self_hsic(first), _self_hsic(second)))

    def matrix(self) -> np.ndarray:
        """(first's blocks, second's blocks) CKA over the frames kept; empty before any frame."""
        if not self._estimates:
            return np.zeros((0, 0))
        cross, first, second = (np.mean(parts, axis=0) for parts in zip(*self._estimates))
        return cka_from_hsic(cross, first, second)


def grid_points(box: tuple[float, float, float, float], side: int = GRID) -> np.ndarray:
    """(side², 2) frame pixels: the centres of a side x side grid over the box (x0, y0, x1, y1,
    edges), row by row."""
    x0, y0, x1, y1 = box
    xs = x0 + (np.arange(side) + 0.5) * (x1 - x0) / side - 0.5
    ys = y0 + (np.arange(side) + 0.5) * (y1 - y0) / side - 0.5
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def block_rows(features: dict[str, np.ndarray], strides: dict[str, int],
               to_input: Callable[[np.ndarray], np.ndarray], points: np.ndarray) -> dict[str, np.ndarray]:
    """Each block's features (n, C) at the frame pixels `points (n, 2)`: `to_input` maps frame
    pixels to the network's input pixels, where cell (i, j) of a block of stride s sits at
    (j * s, i * s)."""
    inputs = np.asarray(to_input(points), np.float64)
    return {name: sample_grid(values, inputs / strides[name]) for name, values in features.items()}
