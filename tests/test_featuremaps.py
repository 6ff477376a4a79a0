"""Feature-map grids and heatmap overlays on arrays with known answers."""

import numpy as np
import pytest

from pose_app.draw.featuremaps import (
    channel_range,
    colorize,
    combined_heatmap,
    grid_columns,
    heatmap_overlay,
    normalise_per_tile,
    select_channels,
    shrink,
    strongest_channels,
    tile_grid,
)
from pose_app.inference.families.posenet import input_transform


def features_with_means(means: list[float], height: int = 4, width: int = 6) -> np.ndarray:
    """(C, H, W) maps whose channel c has mean means[c] (a ramp around it, so tiles vary)."""
    ramp = np.linspace(-0.5, 0.5, height * width, dtype=np.float32).reshape(height, width)
    return np.stack([mean + ramp for mean in means])


def test_strongest_channels_are_ordered_by_mean_activation():
    features = features_with_means([0.1, 3.0, 0.5, 2.0, 3.0])
    # Ties (channels 1 and 4) keep the lower index first.
    assert strongest_channels(features, 3).tolist() == [1, 4, 3]
    assert select_channels(features, "strongest", 10).tolist() == [1, 4, 3, 2, 0]


def test_channel_range_is_clipped_to_the_tensor():
    assert channel_range(10, 3, 4).tolist() == [3, 4, 5, 6]
    assert channel_range(10, 8, 5).tolist() == [8, 9]
    assert channel_range(10, 12, 5).tolist() == []
    assert select_channels(np.zeros((10, 2, 2)), "range", 2, start=5).tolist() == [5, 6]
    with pytest.raises(ValueError):
        select_channels(np.zeros((3, 2, 2)), "random", 2)


def test_normalisation_maps_each_tile_min_max_to_0_255():
    maps = np.array(
        [
            [[1.0, 2.0], [3.0, 5.0]],  # min 1, max 5
            [[6.0, 6.0], [6.0, 6.0]],  # constant: no pattern -> zeros
            [[0.0, 0.0], [0.0, 0.3]],  # weak but with a pattern -> full range
        ]
    )
    tiles = normalise_per_tile(maps)
    assert tiles.dtype == np.uint8
    assert tiles[0].tolist() == [[0, 64], [128, 255]]
    assert tiles[1].tolist() == [[0, 0], [0, 0]]
    assert tiles[2].tolist() == [[0, 0], [0, 255]]


def test_colorize_maps_low_and_high_to_viridis_ends():
    colours = colorize(np.array([[[0, 255]], [[255, 0]]], np.uint8))
    assert colours.shape == (2, 1, 2, 3)
    assert (colours[0, 0, 0] == colours[1, 0, 1]).all()  # same value, same colour
    # Viridis runs from dark purple (RGB 68, 1, 84) to yellow (RGB 253, 231, 37); BGR here.
    np.testing.assert_allclose(colours[0, 0, 0], (84, 1, 68), atol=3)
    np.testing.assert_allclose(colours[0, 0, 1], (37, 231, 253), atol=3)


def test_grid_columns_make_a_roughly_square_picture():
    assert grid_columns(16, 10, 10) == 4
    assert grid_columns(1, 10, 10) == 1
    # Wide tiles stack in fewer columns: 8 tiles of 10x40 -> 2 columns, 4 rows (80 x 80 px).
    assert grid_columns(8, 10, 40) == 2
    assert grid_columns(0, 10, 10) == 1


def test_tile_grid_layout_and_gaps():
    tiles = np.stack([np.full((3, 5, 3), value, np.uint8) for value in (10, 20, 30, 40, 50)])
    grid = tile_grid(tiles, columns=3, gap=2, background=(1, 2, 3))
    assert grid.shape == (2 * 3 + 2, 3 * 5 + 2 * 2, 3)
    assert (grid[0:3, 0:5] == 10).all()
    assert (grid[0:3, 7:12] == 20).all()  # second tile starts after one tile and one gap
    assert (grid[5:8, 7:12] == 50).all()  # tile 4: second row, second column
    assert (grid[3:5, :] == (1, 2, 3)).all()  # gap row between the two rows
    assert (grid[5:8, 14:] == (1, 2, 3)).all()  # empty last cell keeps the background


def test_combined_heatmap_is_the_max_over_keypoints():
    heatmaps = np.zeros((17, 3, 3), np.float32)
    heatmaps[0, 0, 0] = 0.9
    heatmaps[5, 2, 2] = 0.4
    assert combined_heatmap(heatmaps)[0, 0] == pytest.approx(0.9)
    assert combined_heatmap(heatmaps)[2, 2] == pytest.approx(0.4)
    assert combined_heatmap(heatmaps, 5)[0, 0] == 0.0


@pytest.mark.parametrize("out_width", [None, 320])
def test_heatmap_overlay_puts_the_hot_cell_where_the_transform_says(out_width):
    frame = np.zeros((480, 640, 3), np.uint8)
    stride = 16
    transform = input_transform(640, 480, 353, stride)
    grid_w = (transform.input_size[0] - 1) // stride + 1
    grid_h = (transform.input_size[1] - 1) // stride + 1
    heatmaps = np.zeros((17, grid_h, grid_w), np.float32)
    row, col = 7, 12
    heatmaps[3, row, col] = 1.0
    overlay = heatmap_overlay(frame, heatmaps, transform, 3, out_width=out_width, alpha=1.0)
    scale = 1.0 if out_width is None else out_width / 640
    assert overlay.shape == (round(480 * scale), round(640 * scale), 3)
    expected_xy = (transform.to_frame(np.array([col * stride, row * stride], np.float32)) + 0.5) * scale - 0.5
    brightness = overlay.astype(np.int32).sum(axis=2)
    y, x = np.unravel_index(np.argmax(brightness), brightness.shape)
    assert abs(x - expected_xy[0]) <= 1.0 and abs(y - expected_xy[1]) <= 1.0
    # Another keypoint's heatmap is cold: the frame (black) shows through unchanged.
    assert heatmap_overlay(frame, heatmaps, transform, 4, alpha=1.0).max() == 0
    mirrored = heatmap_overlay(frame, heatmaps, transform, 3, out_width=out_width, alpha=1.0, mirror=True)
    assert (mirrored == overlay[:, ::-1]).all()


def test_shrink_averages_fine_detail_instead_of_aliasing():
    stripes = np.zeros((480, 640, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: plain subsampling would give all 0 or all 255
    small = shrink(stripes, (160, 120))
    assert small.shape == (120, 160, 3)
    assert np.abs(small.astype(np.float64) - 127.5).max() < 8
    assert shrink(stripes, (640, 480)) is stripes
