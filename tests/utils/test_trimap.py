"""mematte_d2.utils.trimap: encodings and known-region clamping; trimaps as people draw them
(snapping), and label maps that must not pass for codes."""

import cv2
import numpy as np
import pytest
import torch

from mematte_d2.utils.trimap import (
    clamp_known_regions,
    codes_on_255_scale,
    normalize_trimap,
    snap_trimap,
    trimap_codes,
    trimap_to_uint8,
)


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


def test_normalize_trimap_both_scales():
    t255 = torch.tensor([0.0, 84.0, 85.0, 128.0, 169.0, 170.0, 255.0])
    assert normalize_trimap(t255).tolist() == [0, 0, 0.5, 0.5, 0.5, 1, 1]
    t01 = torch.tensor([0.0, 0.5, 1.0])
    assert normalize_trimap(t01).tolist() == [0, 0.5, 1]


def test_clamp_known_regions_keeps_unknown_only():
    alpha = torch.full((1, 2, 2), 0.3)
    trimap = torch.tensor([[[0.0, 128.0], [255.0, 128.0]]])
    out = clamp_known_regions(alpha, trimap)
    assert torch.allclose(out, torch.tensor([[[0.0, 0.3], [1.0, 0.3]]]))


def test_trimap_to_uint8_codes():
    tri = np.array([[0, 100, 200]], dtype=np.uint8)
    assert trimap_to_uint8(tri).tolist() == [[0, 128, 255]]


def test_trimap_codes_scale_follows_the_dtype():
    codes = np.array([[0, 128, 255]], np.uint8)
    assert trimap_codes(codes, snap=False).tolist() == [[0, 128, 255]]
    halves = np.array([[0.0, 0.5, 1.0]], np.float32)
    assert trimap_codes(halves, snap=False).tolist() == [[0, 128, 255]]
    # all ones: foreground as float (0-1), background as uint8 (0-255) would be refused
    assert trimap_codes(np.ones((2, 2), np.float64)).tolist() == [[255, 255]] * 2
    with pytest.raises(ValueError, match="uint8 with values only in 0-1"):
        trimap_codes(np.ones((2, 2), np.uint8))
    with pytest.raises(ValueError, match="uint8 with values only in 0-2"):
        trimap_codes(np.array([[0, 1, 2]], np.uint8))
    assert trimap_codes(np.zeros((2, 2), np.uint8)).tolist() == [[0, 0]] * 2
    assert trimap_codes(np.zeros((0, 3), np.float32)).shape == (0, 3)
    with pytest.raises(ValueError, match=r"float32, read on the 0-1 scale, but holds values in "
                                         r"\[0, 255\]"):
        trimap_codes(np.array([[0, 128, 255]], np.float32))
    with pytest.raises(TypeError, match="got int64"):
        trimap_codes(np.array([[0, 128, 255]]))


def test_soft_trimaps_snap_or_are_refused():
    soft = np.array([[3, 84, 85, 127, 169, 170, 252]], np.uint8)
    assert trimap_codes(soft).tolist() == [[0, 0, 128, 128, 128, 255, 255]]
    with pytest.raises(ValueError, match=r"values other than 0 / 128 / 255 \(3, 84, 85, 127, "
                                         r"169, 170, 252 in 7 pixels\)"):
        trimap_codes(soft, snap=False)
    with pytest.raises(ValueError, match=r"\(76 in 1 pixels\)"):
        trimap_codes(np.array([[0.3, 1.0]]), snap=False)
