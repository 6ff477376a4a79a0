"""One Euro filter against its definition (Casiez et al. 2012), and per-track pose smoothing."""

import math

import numpy as np
import pytest

from pose_app.inference.smoothing import OneEuroFilter, PoseSmoother


def paper_alpha(period: float, cutoff: float) -> float:
    """alpha = 1 / (1 + tau / Te), tau = 1 / (2 pi fc), written out independently of the module."""
    return 1.0 / (1.0 + (1.0 / (2.0 * math.pi * cutoff)) / period)


def test_first_steps_match_the_paper_formulas_with_irregular_timestamps():
    min_cutoff, beta, d_cutoff = 1.0, 0.5, 1.0
    one_euro = OneEuroFilter(min_cutoff, beta, d_cutoff)
    samples = [(0.0, 0.0), (0.1, 1.0), (0.25, 3.0), (0.27, 2.0)]  # (t, x), irregular Te
    outputs = [float(one_euro(np.array([x]), t)[0]) for t, x in samples]

    # By hand: x_hat_1 = x_1, dx_hat_1 = 0; then for each sample
    # dx = (x - x_hat_prev) / Te, dx_hat = a_d dx + (1 - a_d) dx_hat_prev,
    # fc = min_cutoff + beta |dx_hat|, x_hat = a x + (1 - a) x_hat_prev.
    x_hat, dx_hat, t_prev = 0.0, 0.0, 0.0
    expected = [x_hat]
    for t, x in samples[1:]:
        period = t - t_prev
        a_d = paper_alpha(period, d_cutoff)
        dx_hat = a_d * (x - x_hat) / period + (1 - a_d) * dx_hat
        a = paper_alpha(period, min_cutoff + beta * abs(dx_hat))
        x_hat = a * x + (1 - a) * x_hat
        expected.append(x_hat)
        t_prev = t
    assert outputs == pytest.approx(expected, rel=1e-12)
    # Step 2 with numbers: a_d = 0.385870, dx_hat = 3.858695, fc = 2.929348, a = 0.647957.
    assert outputs[1] == pytest.approx(0.647957, abs=1e-6)


def test_constant_signal_stays_exact():
    one_euro = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    constant = np.array([[123.4, -7.1], [0.3, 640.0]], np.float32)
    for i in range(50):
        out = one_euro(constant, i / 30)
        np.testing.assert_array_equal(out, constant)
    assert out.dtype == np.float32


def mean_step(track: np.ndarray) -> float:
    """Mean frame-to-frame displacement (px) of a (frames, ..., 2) track of points."""
    return float(np.linalg.norm(np.diff(track, axis=0), axis=-1).mean())


def test_noise_on_a_still_point_is_reduced():
    rng = np.random.default_rng(1)
    still = np.array([300.0, 200.0]) + rng.normal(0, 2.0, (300, 2))  # 2 px detector jitter
    one_euro = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    smoothed = np.stack([one_euro(p, i / 30) for i, p in enumerate(still)])
    before, after = mean_step(still), mean_step(smoothed)
    assert after < 0.35 * before, (before, after)
    assert np.abs(smoothed[30:] - (300, 200)).max() < 3.0  # and it stays on the point


def steady_lag(beta: float, speed: float = 300.0, fps: float = 30.0) -> float:
    """Lag (px) of the filter behind a point moving at `speed` px/s, after 2 s."""
    one_euro = OneEuroFilter(min_cutoff=1.0, beta=beta)
    times = np.arange(int(2 * fps)) / fps
    out = [one_euro(np.array([speed * t]), t)[0] for t in times]
    return speed * times[-1] - out[-1]


def test_fast_move_lags_less_with_higher_beta():
    lags = [steady_lag(beta) for beta in (0.0, 0.01, 0.05)]
    assert lags[0] > lags[1] > lags[2] > 0
    # beta = 0 is a plain 1 Hz low-pass filter: lag ~ speed * tau = 300 / (2 pi) ~ 48 px.
    assert lags[0] == pytest.approx(300 / (2 * math.pi), rel=0.2)
    assert lags[2] < 0.15 * lags[0]


def test_update_mask_passes_elements_through_without_touching_their_state():
    masked, reference = OneEuroFilter(beta=0.05), OneEuroFilter(beta=0.05)
    values = [np.array([10.0, 50.0]), np.array([12.0, 999.0]), np.array([11.0, 52.0])]
    masked(values[0], 0.0)
    reference(values[0][1:], 0.0)
    out = masked(values[1], 0.1, update=np.array([True, False]))
    assert out[1] == 999.0  # passed through
    # The second element's next step behaves as if the 999 never happened (Te = 0.2 s).
    assert masked(values[2], 0.2)[1] == reference(values[2][1:], 0.2)[0]


def test_non_increasing_timestamps_and_shape_changes_are_rejected():
    one_euro = OneEuroFilter()
    one_euro(np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="increasing"):
        one_euro(np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="shape"):
        one_euro(np.zeros(4), 2.0)
    with pytest.raises(ValueError, match="min_cutoff"):
        OneEuroFilter(min_cutoff=0.0)


def poses(*xy_score: tuple[float, float, float]) -> np.ndarray:
    """(P, 17, 3) poses whose 17 keypoints all sit at (x, y) with the given score."""
    return np.array([[p] * 17 for p in xy_score], np.float32)


def test_two_ids_do_not_mix_and_match_a_single_id_run():
    rng = np.random.default_rng(2)
    both, alone = PoseSmoother(), PoseSmoother()
    for i in range(40):
        frame = poses((100, 100, 0.9), (400, 300, 0.9))
        frame[:, :, :2] += rng.normal(0, 2, (2, 17, 2))
        ids = np.array([7, 3]) if i % 2 else np.array([3, 7])
        frame = frame if i % 2 else frame[::-1].copy()  # id 7 is always the (100, 100) person
        out = both(ids, frame, i / 25)
        row_7 = int(np.flatnonzero(ids == 7)[0])
        single = alone(np.array([7]), frame[row_7 : row_7 + 1], i / 25)
        np.testing.assert_array_equal(out[row_7], single[0])
        assert np.abs(out[1 - row_7, :, :2] - (400, 300)).max() < 8.0


def test_low_score_keypoints_pass_through_and_scores_are_untouched():
    smoother = PoseSmoother(min_keypoint_score=0.3)
    smoother(np.array([0]), poses((100, 100, 0.9)), 0.0)
    frame = poses((110, 100, 0.9))
    frame[0, 5] = (900, 900, 0.1)  # a lost keypoint with a wild position
    out = smoother(np.array([0]), frame, 0.1)
    np.testing.assert_array_equal(out[0, 5], frame[0, 5])
    np.testing.assert_array_equal(out[:, :, 2], frame[:, :, 2])
    assert 100 < out[0, 0, 0] < 110  # confident keypoints are smoothed
    # Back to confident: keypoint 5 continues from its own last good state, like keypoint 0
    # would have if it had skipped that frame too.
    out = smoother(np.array([0]), poses((110, 100, 0.9)), 0.2)
    assert 100 < out[0, 5, 0] < 110 and out[0, 5, 1] == pytest.approx(100)


def test_filters_of_long_gone_ids_are_dropped_and_empty_frames_work():
    smoother = PoseSmoother(forget_after_s=1.0)
    smoother(np.array([0, 1]), poses((10, 10, 0.9), (50, 50, 0.9)), 0.0)
    empty = smoother(np.zeros(0, np.int64), np.zeros((0, 17, 3), np.float32), 0.5)
    assert empty.shape == (0, 17, 3)
    # Id 0 was last seen 0.9 s ago (less than forget_after_s): its filter still lags a jump.
    assert smoother(np.array([0]), poses((30, 10, 0.9)), 0.9)[0, 0, 0] < 30
    smoother(np.array([1]), poses((50, 50, 0.9)), 2.5)
    # Id 0 unseen for 1.7 s: forgotten, so a jump comes through as it is (a fresh filter),
    # while id 1, seen 0.1 s ago, is still smoothed.
    jumped = smoother(np.array([0, 1]), poses((90, 10, 0.9), (80, 50, 0.9)), 2.6)
    assert jumped[0, 0, 0] == pytest.approx(90) and jumped[1, 0, 0] < 80
    smoother.reset()
    assert smoother(np.array([1]), poses((200, 50, 0.9)), 2.7)[0, 0, 0] == pytest.approx(200)


def test_duplicate_ids_are_rejected():
    with pytest.raises(ValueError, match="distinct"):
        PoseSmoother()(np.array([4, 4]), poses((1, 1, 0.9), (2, 2, 0.9)), 0.0)


def test_time_going_back_restarts_the_filters():
    smoother = PoseSmoother()
    for i in range(5):
        smoother(np.array([0]), poses((100 + 10 * i, 50, 0.9)), i / 10)
    # The video loops: t starts again at 0 and the first pose passes through unfiltered.
    out = smoother(np.array([0]), poses((500, 50, 0.9)), 0.0)
    np.testing.assert_array_equal(out, poses((500, 50, 0.9)))
    assert smoother(np.array([0]), poses((510, 50, 0.9)), 0.1)[0, 0, 0] < 510


def test_retune_changes_the_filters_parameters_and_keeps_their_state():
    pose = np.zeros((1, 17, 3), np.float32)
    pose[..., 2] = 0.9
    smoother = PoseSmoother(min_cutoff=0.5, beta=0.0)
    smoother(np.array([4]), pose, 0.0)
    moved = pose.copy()
    moved[..., :2] = 10.0
    retuned = PoseSmoother(min_cutoff=0.5, beta=0.0)
    retuned(np.array([4]), pose, 0.0)
    retuned.retune(5.0, 0.0)
    fresh = PoseSmoother(min_cutoff=5.0, beta=0.0)
    fresh(np.array([4]), pose, 0.0)
    # A faster cutoff follows the move further, from the same history as a filter built with it.
    followed = retuned(np.array([4]), moved, 0.1)
    np.testing.assert_allclose(followed, fresh(np.array([4]), moved, 0.1))
    assert smoother(np.array([4]), moved, 0.1)[0, 0, 0] < followed[0, 0, 0] < 10.0  # the old cutoff lags more
    with pytest.raises(ValueError):
        retuned.retune(0.0, 0.0)
