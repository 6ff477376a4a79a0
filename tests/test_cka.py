"""Linear CKA (explain/cka.py): a block compared with itself is 1, with unrelated noise near 0,
and a block turned by an orthogonal transform and scaled is still the same block; the matrix over
frames and the grid sampling that puts two networks' blocks on the same points."""

from __future__ import annotations

import numpy as np
import pytest

from pose_app.explain.cka import (
    SimilarityOverFrames,
    block_rows,
    gram,
    grid_points,
    hsic_matrix,
    linear_cka,
    sample_grid,
)


def features(rng, n=144, p=64, rank=6):
    """Features with structure (a few underlying factors mixed into p channels), as a block's."""
    return rng.normal(size=(n, rank)) @ rng.normal(size=(rank, p)) + 0.1 * rng.normal(size=(n, p))


def test_a_block_with_itself_is_one_and_with_noise_near_zero():
    rng = np.random.default_rng(0)
    x = features(rng)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-9)
    noise = [linear_cka(x, rng.normal(size=(144, q))) for q in (16, 64, 384)]
    assert max(abs(v) for v in noise) < 0.05, noise
    # Unbiased HSIC is what keeps this near 0: the plain (biased) estimate is far from it here.
    y = rng.normal(size=(144, 384))
    k, l_ = gram(x), gram(y)
    centre = np.eye(144) - 1 / 144
    biased = np.trace(k @ centre @ l_ @ centre) / np.sqrt(
        np.trace(k @ centre @ k @ centre) * np.trace(l_ @ centre @ l_ @ centre))
    assert biased > 0.1 and biased > 3 * max(abs(v) for v in noise)


def test_orthogonal_transforms_isotropic_scaling_and_shifts_leave_it_unchanged():
    rng = np.random.default_rng(1)
    x, y = features(rng, p=48), None
    y = x[:, :20] @ rng.normal(size=(20, 30)) + 0.5 * rng.normal(size=(144, 30))  # related, not equal
    q, _ = np.linalg.qr(rng.normal(size=(48, 48)))
    reference = linear_cka(x, y)
    assert 0.2 < reference < 0.99
    assert linear_cka(x @ q * 7.5 + 3.0, y) == pytest.approx(reference, abs=1e-9)
    assert linear_cka(x, y * 0.01) == pytest.approx(reference, abs=1e-9)
    # Not invariant to any linear map: stretching one channel a lot changes it.
    stretched = x.copy()
    stretched[:, 0] *= 50
    assert abs(linear_cka(stretched, y) - reference) > 0.05


def test_the_matrix_over_frames_finds_the_matching_blocks_and_forgets_old_frames():
    rng = np.random.default_rng(2)
    similarity = SimilarityOverFrames(frames=3)
    assert similarity.matrix().shape == (0, 0)
    for _ in range(5):
        shallow, deep = features(rng, p=24), features(rng, p=96)
        q, _ = np.linalg.qr(rng.normal(size=(24, 24)))
        first = {"a0": shallow, "a1": deep}
        second = {"b0": deep[:, ::-1] * 2, "b1": shallow @ q, "b2": rng.normal(size=(144, 32))}
        similarity.add(first, second)
    assert len(similarity) == 3
    matrix = similarity.matrix()
    assert matrix.shape == (2, 3)
    assert matrix[0, 1] == pytest.approx(1.0) and matrix[1, 0] == pytest.approx(1.0)
    assert abs(matrix[0, 0]) < 0.1 and abs(matrix[:, 2]).max() < 0.1
    similarity.add({"other": shallow}, {"b0": shallow})  # another model's blocks: starts over
    assert len(similarity) == 1 and similarity.names == (("other",), ("b0",))


def test_hsic_needs_four_examples_and_a_constant_block_is_zero_not_nan():
    with pytest.raises(ValueError, match="at least 4"):
        hsic_matrix([np.eye(3)], [np.eye(3)])
    similarity = SimilarityOverFrames()
    x = features(np.random.default_rng(3))
    similarity.add({"flat": np.ones((144, 8))}, {"x": x})
    assert similarity.matrix()[0, 0] == 0.0


def test_blocks_of_different_strides_are_read_on_the_same_frame_points():
    # A ramp over input pixels, seen by a stride-4 and a stride-16 block: read at the same frame
    # points through the same mapping, both give the ramp's value there.
    ramp = lambda stride, size: np.broadcast_to(np.arange(size, dtype=np.float32) * stride, (2, size, size))  # noqa: E731
    blocks = {"fine": ramp(4, 48), "coarse": ramp(16, 12)}
    points = grid_points((0.0, 0.0, 160.0, 160.0), side=4)
    assert points[:4, 0].tolist() == [19.5, 59.5, 99.5, 139.5] and points[::4, 1].tolist() == [19.5, 59.5, 99.5, 139.5]
    rows = block_rows(blocks, {"fine": 4, "coarse": 16}, lambda xy: xy, points)
    np.testing.assert_allclose(rows["fine"][:, 0], points[:, 0], atol=1e-4)
    np.testing.assert_allclose(rows["coarse"][:, 0], points[:, 0], atol=1e-4)
    # Points past the map's edge read its edge.
    assert sample_grid(ramp(4, 8), np.array([[100.0, 0.0]]))[0, 0] == 28.0
