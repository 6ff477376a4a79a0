"""Temporal smoothing of keypoints with the One Euro filter (Casiez, Roussel, Vogel, CHI 2012).

The One Euro filter is an exponential low-pass filter whose cutoff frequency grows with the
signal's speed: a still keypoint gets a low cutoff (jitter removed), a fast one a high cutoff
(little lag). With a sampling period Te (seconds between samples):

    alpha(fc) = 1 / (1 + tau / Te),  tau = 1 / (2 pi fc)
    dx_hat_i = alpha(d_cutoff) * (x_i - x_hat_{i-1}) / Te + (1 - alpha(d_cutoff)) * dx_hat_{i-1}
    fc_i     = min_cutoff + beta * |dx_hat_i|
    x_hat_i  = alpha(fc_i) * x_i + (1 - alpha(fc_i)) * x_hat_{i-1}

with x_hat_1 = x_1 and dx_hat_1 = 0. Timestamps come from the video, so a dropped or
variable-rate frame just makes Te longer.
"""

import numpy as np

from pose_app.core.poses import MIN_KEYPOINT_SCORE, check_poses

# Defaults for keypoints in frame pixels at 10-30 fps. Casiez et al. tune min_cutoff on a still
# target first (lower = less jitter, more lag at slow speed), then raise beta (per px/s here)
# until fast moves stop lagging. min_cutoff = 0.5 Hz: alpha = 0.24 at 10 fps, 0.09 at 30 fps on
# a still joint. beta = 0.05: a joint moving at 200 px/s (walking across a 768-px frame) gets
# a 10.5 Hz cutoff (alpha = 0.87 at 10 fps), so moving limbs barely lag. Measured with
# posenet-075 (see docs/readme-tracking.md): still people in people-one-by-one-768x432.mp4 move
# 2.21 px/frame raw, 1.22 smoothed; walking people deviate 3.6 px from the raw keypoints (10 fps),
# 2.6 px in walk-640x480.mkv (30 fps). min_cutoff 1.0 gave 1.34 / 3.2 / 2.4; beta 0.02 gave
# 1.02 / 6.0 / 3.5 (visible lag).
DEFAULT_MIN_CUTOFF = 0.5
DEFAULT_BETA = 0.05

# A track's filter is dropped after this long without its id (seconds of video): the tracker
# never reuses an id, so the state of an id gone this long is only memory.
DEFAULT_FORGET_AFTER_S = 2.0


def smoothing_factor(period: np.ndarray | float, cutoff: np.ndarray | float) -> np.ndarray:
    """alpha = 1 / (1 + tau / Te) with tau = 1 / (2 pi fc): exponential smoothing weight."""
    tau = 1.0 / (2.0 * np.pi * np.asarray(cutoff, dtype=np.float64))
    return 1.0 / (1.0 + tau / period)


def exponential_smoothing(alpha: np.ndarray, value: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """alpha * value + (1 - alpha) * previous, written so that a constant signal stays exact."""
    return previous + alpha * (value - previous)


class OneEuroFilter:
    """One Euro filter, vectorised over arrays of any (fixed) shape; follows Casiez et al. 2012.

    Every element keeps its own state and its own last timestamp, so `update` can leave some
    elements out of a step: those pass through unchanged and their state is kept for later.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0):
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError(
                f"One Euro filter needs min_cutoff > 0, d_cutoff > 0, beta >= 0; "
                f"got {min_cutoff}, {d_cutoff}, {beta}"
            )
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self._x_hat: np.ndarray | None = None  # filtered value
        self._dx_hat: np.ndarray | None = None  # filtered speed (units per second)
        self._t_prev: np.ndarray | None = None  # last timestamp per element; NaN = never seen

    def __call__(self, value: np.ndarray, t: float, update: np.ndarray | None = None) -> np.ndarray:
        """Filter `value` sampled at time `t` (seconds); return the filtered copy.

        `update`: boolean array of `value`'s shape, the elements to filter (default all);
        the others are returned as given and leave the state untouched.
        """
        value = np.asarray(value)
        x = value.astype(np.float64)
        update = np.ones(x.shape, dtype=bool) if update is None else np.asarray(update, dtype=bool)
        self._ensure_state(x.shape)
        seen = update & ~np.isnan(self._t_prev)
        first = update & ~seen
        self._step(x, t, seen)
        self._x_hat[first] = x[first]
        self._dx_hat[first] = 0.0
        self._t_prev[update] = t
        return np.where(update, self._x_hat, x).astype(value.dtype, copy=False)

    def reset(self) -> None:
        """Forget the state: the next call starts over."""
        self._x_hat = self._dx_hat = self._t_prev = None

    def _ensure_state(self, shape: tuple[int, ...]) -> None:
        if self._x_hat is None:
            self._x_hat = np.zeros(shape)
            self._dx_hat = np.zeros(shape)
            self._t_prev = np.full(shape, np.nan)
        elif self._x_hat.shape != shape:
            raise ValueError(
                f"One Euro filter was started on shape {self._x_hat.shape}, got {shape}"
            )

    def _step(self, x: np.ndarray, t: float, mask: np.ndarray) -> None:
        """Apply the paper's update to the elements in `mask`, which have a previous sample."""
        period = t - self._t_prev[mask]
        if np.any(period <= 0):
            raise ValueError(
                f"One Euro filter needs increasing timestamps, got t={t} "
                f"after {self._t_prev[mask].max()}"
            )
        x_hat_prev = self._x_hat[mask]
        speed = (x[mask] - x_hat_prev) / period
        d_alpha = smoothing_factor(period, self.d_cutoff)
        dx_hat = exponential_smoothing(d_alpha, speed, self._dx_hat[mask])
        cutoff = self.min_cutoff + self.beta * np.abs(dx_hat)
        alpha = smoothing_factor(period, cutoff)
        self._x_hat[mask] = exponential_smoothing(alpha, x[mask], x_hat_prev)
        self._dx_hat[mask] = dx_hat


class PoseSmoother:
    """One Euro filter per keypoint (x and y) per track id, timestamps in seconds from the video
    (not wall time); a track's filter is dropped when the id disappears for long; low-score
    keypoints are not used to update the filter state (pass through).

    `forget_after_s`: seconds of video without an id after which its filter is dropped.
    A timestamp not after the previous frame's (a seek back, a looping video) starts every
    filter afresh, as `reset` does: the filter's time steps must be positive.
    """

    def __init__(
        self,
        min_cutoff: float = DEFAULT_MIN_CUTOFF,
        beta: float = DEFAULT_BETA,
        d_cutoff: float = 1.0,
        min_keypoint_score: float = MIN_KEYPOINT_SCORE,
        forget_after_s: float = DEFAULT_FORGET_AFTER_S,
    ):
        OneEuroFilter(min_cutoff, beta, d_cutoff)  # validates the parameters now, not on frame 1
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self.min_keypoint_score = min_keypoint_score
        self.forget_after_s = forget_after_s
        self._filters: dict[int, OneEuroFilter] = {}
        self._last_seen: dict[int, float] = {}
        self._last_t = -np.inf

    def __call__(self, ids: np.ndarray, keypoints: np.ndarray, t: float) -> np.ndarray:
        """Smooth the x, y of poses `(P, 17, 3)` whose track ids are `ids (P,)`, seen at `t` s.

        Returns a smoothed copy; scores are untouched.
        """
        ids = np.asarray(ids)
        check_poses(keypoints, ids, "ids")
        if len(np.unique(ids)) != len(ids):
            raise ValueError(f"track ids in one frame must be distinct, got {ids.tolist()}")
        if t <= self._last_t:
            self.reset()
        self._last_t = t
        smoothed = keypoints.copy()
        for row, track_id in enumerate(ids.tolist()):
            confident = keypoints[row, :, 2] >= self.min_keypoint_score
            update = np.broadcast_to(confident[:, None], (len(confident), 2))
            smoothed[row, :, :2] = self._filter_for(track_id)(keypoints[row, :, :2], t, update)
            self._last_seen[track_id] = t
        self._forget_before(t - self.forget_after_s)
        return smoothed

    def retune(self, min_cutoff: float, beta: float) -> None:
        """New filter parameters for every track from the next frame on, keeping each filter's
        state (the GUI tunes smoothing live without a jump in the curves)."""
        OneEuroFilter(min_cutoff, beta, self.d_cutoff)  # validates
        self.min_cutoff, self.beta = min_cutoff, beta
        for one_euro in self._filters.values():
            one_euro.min_cutoff, one_euro.beta = min_cutoff, beta

    def reset(self) -> None:
        """Drop every track's filter (e.g. a new video, or a seek)."""
        self._filters.clear()
        self._last_seen.clear()
        self._last_t = -np.inf

    def _filter_for(self, track_id: int) -> OneEuroFilter:
        if track_id not in self._filters:
            self._filters[track_id] = OneEuroFilter(self.min_cutoff, self.beta, self.d_cutoff)
        return self._filters[track_id]

    def _forget_before(self, t_oldest: float) -> None:
        for track_id in [i for i, seen in self._last_seen.items() if seen < t_oldest]:
            del self._filters[track_id], self._last_seen[track_id]

