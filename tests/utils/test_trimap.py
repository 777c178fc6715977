"""Trimaps as people draw them: snapping, and label maps that must not pass for codes
(mematte_d2.utils.trimap)."""

import cv2
import numpy as np
import pytest

from mematte_d2.utils.trimap import codes_on_255_scale, snap_trimap, trimap_codes


def drawn_trimap(size: int = 64) -> np.ndarray:
    """A trimap drawn with an anti-aliased brush: many values between the three codes."""
    tri = np.zeros((size, size), np.uint8)
    centre = (size // 2, size // 2)
    cv2.circle(tri, centre, size * 3 // 8, 128, -1, lineType=cv2.LINE_AA)
    cv2.circle(tri, centre, size // 5, 255, -1, lineType=cv2.LINE_AA)
    return tri


def test_snap_uses_the_authors_thresholds_and_counts_changed_pixels():
    codes = np.array([[0, 1, 84, 85, 128, 169, 170, 254, 255]], np.uint8)
    snapped, changed = snap_trimap(codes)
    assert snapped.tolist() == [[0, 0, 0, 128, 128, 128, 255, 255, 255]]
    assert changed == 6
    assert snap_trimap(np.array([[0, 128, 255]], np.uint8))[1] == 0
    with pytest.raises(TypeError, match="uint8"):
        snap_trimap(np.array([[0.5]]))


def test_anti_aliased_trimap_is_snapped_not_refused_as_labels():
    tri = drawn_trimap()
    tri[0, :3] = (1, 2, 2)  # soft brushes leave a few 1s and 2s: not a label map
    assert len(np.unique(tri)) > 10
    snapped, changed = snap_trimap(codes_on_255_scale(tri))
    assert set(np.unique(snapped)) == {0, 128, 255}
    assert changed == int(np.isin(tri, (0, 128, 255), invert=True).sum())
    np.testing.assert_array_equal(trimap_codes(tri), snapped)
    with pytest.raises(ValueError, match="values other than 0 / 128 / 255"):
        trimap_codes(tri, snap=False)


def test_label_map_with_a_stray_255_is_refused():
    labels = np.zeros((20, 20), np.uint8)
    labels[5:15, 5:15] = 1
    labels[8:12, 8:12] = 2
    labels[0, 0] = 255  # one stray foreground code must not make it pass for 0-255 codes
    with pytest.raises(ValueError, match=r"uint8 with values mostly in 0-2 \(100 pixels of 1 "
                                         r"or 2, 1 of other values\)"):
        trimap_codes(labels)
    with pytest.raises(ValueError, match="uint8 with values only in 0-2"):
        trimap_codes(np.where(labels == 255, 0, labels).astype(np.uint8))
