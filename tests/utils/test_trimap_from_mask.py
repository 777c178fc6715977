"""Trimaps from coarse masks: band width, relative default, thresholds, holes, thin parts."""

import numpy as np
import pytest

from mematte_d2.utils.trimap_from_mask import band_radius, trimap_from_mask


def _disc(size: int, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (np.hypot(yy - size / 2, xx - size / 2) <= radius).astype(np.uint8) * 255


def _ray(trimap: np.ndarray) -> np.ndarray:
    """The trimap along the row through the centre, from the centre to the right edge."""
    size = trimap.shape[0]
    return trimap[size // 2, size // 2:]


def test_band_spans_erode_inside_and_dilate_outside_the_edge():
    trimap = trimap_from_mask(_disc(400, 100), erode=5, dilate=8)
    ray = _ray(trimap)
    unknown = np.flatnonzero(ray == 128)
    assert unknown.min() == pytest.approx(100 - 5, abs=1)
    assert unknown.max() == pytest.approx(100 + 8, abs=1)
    assert (ray[: unknown.min()] == 255).all() and (ray[unknown.max() + 1:] == 0).all()
    assert set(np.unique(trimap)) == {0, 128, 255}


def test_default_band_grows_with_the_image():
    assert band_radius((600, 800)) == 6
    assert band_radius((6000, 8000)) == 60
    assert band_radius((40, 40)) == 1  # never zero
    small = (_ray(trimap_from_mask(_disc(300, 75))) == 128).sum()
    large = (_ray(trimap_from_mask(_disc(600, 150))) == 128).sum()
    assert large == pytest.approx(2 * small, abs=1)


def test_threshold_and_soft_band_of_a_soft_mask():
    ramp = np.tile(np.linspace(0, 1, 101, dtype=np.float32), (5, 1))
    hard = trimap_from_mask(ramp, threshold=0.6, erode=0, dilate=0)[2]
    assert (hard[:60] == 0).all() and (hard[60:] == 255).all()
    soft = trimap_from_mask(ramp, threshold=0.8, soft_low=0.2, erode=0, dilate=0)[2]
    assert (soft[:21] == 0).all() and (soft[21:80] == 128).all() and (soft[80:] == 255).all()
    # The same mask as 8 bits (scale from the dtype) gives the same trimap.
    as_uint8 = np.round(ramp * 255).astype(np.uint8)
    np.testing.assert_array_equal(
        trimap_from_mask(as_uint8, threshold=0.8, soft_low=0.2, erode=0, dilate=0)[2], soft)


def test_small_holes_become_unknown_large_holes_keep_background():
    mask = _disc(200, 80)
    mask[97:104, 97:104] = 0      # 7 px hole
    mask[40:70, 85:115] = 0       # 30 px hole
    trimap = trimap_from_mask(mask, erode=2, dilate=5)
    assert trimap[100, 100] == 128
    assert trimap[55, 100] == 0


def test_thin_strands_removed_by_the_erosion_become_unknown_not_background():
    mask = _disc(200, 40)
    mask[99:102, 140:190] = 255   # a 3 px strand sticking out of the disc
    trimap = trimap_from_mask(mask, erode=4, dilate=3)
    strand = trimap[100, 150:185]
    assert (strand == 128).all()
    assert trimap[100, 100] == 255 and trimap[20, 20] == 0


def test_bool_mask_and_degenerate_masks():
    mask = _disc(64, 20) > 0
    np.testing.assert_array_equal(trimap_from_mask(mask, erode=2, dilate=2),
                                  trimap_from_mask(_disc(64, 20), erode=2, dilate=2))
    assert (trimap_from_mask(np.zeros((32, 32), bool)) == 0).all()
    assert (trimap_from_mask(np.ones((32, 32), bool)) == 255).all()


@pytest.mark.parametrize("mask, kwargs, message", [
    (np.zeros((4, 4, 3), np.uint8), {}, "2-D"),
    (np.full((4, 4), np.nan, np.float32), {}, "finite"),
    (np.full((4, 4), 2.0, np.float32), {}, r"\[0, 1\]"),
    (np.eye(4, dtype=np.uint8), {}, "0 and 1"),
    (np.zeros((4, 4), np.int64), {}, "dtype"),
    (np.zeros((4, 4), bool), {"erode": -1}, "erode"),
    (np.zeros((4, 4), bool), {"dilate": 1.5}, "dilate"),
    (np.zeros((4, 4), bool), {"band_fraction": 0.0}, "band_fraction"),
    (np.zeros((4, 4), bool), {"threshold": 0.5, "soft_low": 0.7}, "soft_low"),
])
def test_bad_masks_and_options_are_refused_with_the_reason(mask, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        trimap_from_mask(mask, **kwargs)
