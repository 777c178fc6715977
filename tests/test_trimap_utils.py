import numpy as np
import torch

from mematte_d2.utils.trimap import clamp_known_regions, normalize_trimap, trimap_to_uint8


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
