"""Trimaps from the editor's painted layers and previews (snapped by utils.trimap.snap_trimap)."""

import numpy as np

from mematte_d2.app.painting import (
    make_preview,
    mask_from_painting,
    painted_levels,
    preview_size,
    trimap_from_painting,
)


def _layer(h, w, strokes):
    """An RGBA layer with opaque grey-level strokes given as (rows, cols, level)."""
    layer = np.zeros((h, w, 4), np.uint8)
    for rows, cols, level in strokes:
        layer[rows, cols, :3] = level
        layer[rows, cols, 3] = 255
    return layer


def test_preview_fits_side_and_never_enlarges():
    assert preview_size(4000, 6000, 1024) == (683, 1024)
    assert preview_size(300, 451, 1024) == (300, 451)
    image = np.zeros((300, 451, 3), np.uint8)
    assert make_preview(image) is image
    assert make_preview(np.zeros((2048, 1024, 3), np.uint8)).shape == (1024, 512, 3)


def test_topmost_stroke_wins_and_unpainted_is_background():
    bottom = _layer(4, 4, [(slice(0, 4), slice(0, 4), 128)])  # all unknown
    top = _layer(4, 4, [(slice(1, 3), slice(1, 3), 255), (0, 0, 0)])  # fg centre, bg corner
    trimap = trimap_from_painting([bottom, top], 4, 4)
    expected = np.full((4, 4), 128, np.uint8)
    expected[1:3, 1:3] = 255
    expected[0, 0] = 0
    np.testing.assert_array_equal(trimap, expected)
    lone = trimap_from_painting([_layer(4, 4, [(1, 1, 255)])], 4, 4)
    assert lone[1, 1] == 255 and np.count_nonzero(lone) == 1


def test_faint_brush_edges_are_not_painted():
    layer = _layer(2, 2, [(0, 0, 128)])
    layer[1, 1] = (255, 255, 255, 100)  # anti-aliased edge below half opacity
    assert painted_levels([layer]).tolist() == [[128, 0], [0, 0]]


def test_nothing_painted_is_none():
    empty = np.zeros((3, 3, 4), np.uint8)
    assert trimap_from_painting([empty], 3, 3) is None
    assert trimap_from_painting([], 3, 3) is None
    assert mask_from_painting([empty], 3, 3) is None


def test_painting_is_scaled_to_the_image_with_nearest_neighbour():
    layer = _layer(2, 2, [(0, slice(0, 2), 255), (1, 0, 128)])
    trimap = trimap_from_painting([layer], 4, 6)
    assert trimap.shape == (4, 6)
    assert set(np.unique(trimap)) <= {0, 128, 255}
    assert (trimap[:2] == 255).all()
    assert (trimap[2:, :3] == 128).all() and (trimap[2:, 3:] == 0).all()


def test_mask_from_painting_counts_grey_and_white_strokes():
    layer = _layer(2, 3, [(0, 0, 255), (0, 1, 128), (0, 2, 0)])
    mask = mask_from_painting([layer], 2, 3)
    assert mask.dtype == bool
    assert mask.tolist() == [[True, True, False], [False, False, False]]
