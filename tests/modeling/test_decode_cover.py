"""Sparse decoder cover: every needed cell decoded once, windows no larger than a tile."""

import numpy as np
import pytest

from mematte_d2.benchmark.cases import disc_trimap, outline_trimap
from mematte_d2.modeling.decode_cover import DecodeWindow, plan_cover
from mematte_d2.modeling.tiling import tile_windows

CELL = 16


def _owns(windows, shape):
    """How many windows own each cell."""
    count = np.zeros(shape, int)
    for window in windows:
        y0, y1, x0, x1 = (v // CELL for v in window.own)
        count[y0:y1, x0:x1] += 1
    return count


def _area(windows) -> int:
    return sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in (w.crop for w in windows))


def _check_cover(needed, windows, max_cells, context, extent, max_side=(10**9, 10**9)):
    owns = _owns(windows, needed.shape)
    assert (owns[needed] == 1).all() and owns.max() <= 1  # needed cells once, no overlaps
    for window in windows:
        y0, y1, x0, x1 = window.own
        assert 0 < y1 - y0 <= max_cells * CELL and 0 < x1 - x0 <= max_cells * CELL
        assert y1 <= needed.shape[0] * CELL and x1 <= needed.shape[1] * CELL
        assert window.crop == (max(0, y0 - context), min(extent[0], y1 + context),
                               max(0, x0 - context), min(extent[1], x1 + context))
        crop_y0, crop_y1, crop_x0, crop_x1 = window.crop
        assert crop_y1 - crop_y0 <= max_side[0] and crop_x1 - crop_x0 <= max_side[1]


def test_one_cell_is_decoded_with_its_context_clipped_to_the_extent():
    needed = np.zeros((10, 12), bool)
    needed[4, 5] = True
    assert plan_cover(needed, CELL, 8, 64, (160, 192)) == [
        DecodeWindow(crop=(0, 144, 16, 160), own=(64, 80, 80, 96))]
    needed[4, 5], needed[9, 11] = False, True  # bottom-right corner: the extent clips
    assert plan_cover(needed, CELL, 8, 64, (176, 192)) == [
        DecodeWindow(crop=(80, 176, 112, 192), own=(144, 160, 176, 192))]


@pytest.mark.parametrize("gap, windows", [(4, 1), (5, 2)])
def test_gaps_narrower_than_two_contexts_are_bridged(gap, windows):
    needed = np.zeros((6, 20), bool)
    needed[3, 2] = needed[3, 3 + gap] = True
    cover = plan_cover(needed, CELL, 16, 32, (96, 320))  # a gap of 4 cells = 2 x 32 pixels
    _check_cover(needed, cover, 16, 32, (96, 320))
    assert len(cover) == windows


def test_long_runs_are_split_into_windows_no_larger_than_a_tile():
    needed = np.zeros((4, 20), bool)
    needed[1] = True
    cover = plan_cover(needed, CELL, 8, 64, (64, 320))
    _check_cover(needed, cover, 8, 64, (64, 320))
    assert [w.own[2:] for w in cover] == [(0, 128), (128, 256), (256, 320)]


def test_a_crop_limit_shortens_the_windows_away_from_the_edges():
    # Crops of at most 192 px with 64 px of context (as for two 128 px tiles): a window in the
    # middle owns at most 64 px, one at an edge, where the crop is clipped, up to 128.
    needed = np.ones((1, 20), bool)
    cover = plan_cover(needed, CELL, 8, 64, (16, 320), (16, 192))
    _check_cover(needed, cover, 8, 64, (16, 320), (16, 192))
    assert [w.own[2:] for w in cover] == [(0, 128), (128, 192), (192, 320)]


@pytest.mark.parametrize("seed", range(8))
def test_random_masks_are_covered_exactly_once(seed):
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(1, 40, size=2)
    needed = rng.random((rows, cols)) < rng.choice([0.01, 0.1, 0.5])
    if seed % 2:  # blobs: a few filled rectangles
        needed[:] = False
        for _ in range(3):
            y, x = rng.integers(0, rows), rng.integers(0, cols)
            needed[y : y + rng.integers(1, 10), x : x + rng.integers(1, 10)] = True
    max_cells, context = int(rng.integers(1, 12)), int(rng.choice([0, 16, 64]))
    extent = (rows * CELL + context, cols * CELL + context)
    # Crops may be limited below max_cells cells plus two contexts (two tiles on an axis).
    max_side = tuple(int(rng.integers(CELL + 2 * context, max_cells * CELL + 2 * context + 1))
                     for _ in range(2))
    cover = plan_cover(needed, CELL, max_cells, context, extent, max_side)
    _check_cover(needed, cover, max_cells, context, extent, max_side)
    if not needed.any():
        assert cover == []


@pytest.mark.parametrize("size", [1024, 2048])
def test_trimap_bands_decode_far_less_than_their_tiles(size):
    """The benchmark's trimaps at the recipe's 512-pixel tiles and 64 pixels of context."""
    tiles = tile_windows(size // 512, 512, 64)
    for trimap in (disc_trimap(size), outline_trimap(size)):
        unknown = trimap == 128
        cells = unknown.reshape(size // CELL, CELL, size // CELL, CELL).any(axis=(1, 3))
        cover = plan_cover(cells, CELL, 512 // CELL, 64, (size, size))
        _check_cover(cells, cover, 512 // CELL, 64, (size, size))
        tile_area = sum((y1 - y0) * (x1 - x0) for y0, y1, oy0, oy1 in tiles
                        for x0, x1, ox0, ox1 in tiles if unknown[oy0:oy1, ox0:ox1].any())
        assert _area(cover) < 0.7 * tile_area


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="needed must be a 2-d bool array"):
        plan_cover(np.ones((2, 2)), CELL, 4, 16, (32, 32))
    with pytest.raises(ValueError, match="context a multiple of 16"):
        plan_cover(np.ones((2, 2), bool), CELL, 4, 8, (32, 32))
    with pytest.raises(ValueError, match="max_cells >= 1"):
        plan_cover(np.ones((2, 2), bool), CELL, 0, 16, (32, 32))


def test_a_limit_below_one_cell_and_its_context_is_named():
    with pytest.raises(ValueError, match="exceeds the window limit of 100 pixels"):
        plan_cover(np.ones((4, 4), bool), CELL, 4, 64, (1000, 1000), (100, 1000))
