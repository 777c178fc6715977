"""Benchmark inputs: the outline trimap is a thin band like a photo's; skipped tiles save FLOPs."""

import numpy as np
import pytest
import torch
from tiny_models import FAST_MEMATTE_OPTS

from mematte_d2.benchmark.cases import outline_trimap, synthetic_pair
from mematte_d2.benchmark.flops import count_gflops
from mematte_d2.benchmark.measure import build_model
from mematte_d2.inference import MattingInference
from mematte_d2.modeling.routing import RoutingBudget


@pytest.mark.parametrize("size", [512, 2048])
def test_outline_trimap_is_a_thin_band_like_a_photos(size):
    shares = []
    for seed in range(4):
        trimap = outline_trimap(size, seed)
        assert set(np.unique(trimap).tolist()) == {0, 128, 255}
        shares.append(float(np.mean(trimap == 128)))
    assert all(0.05 <= share <= 0.15 for share in shares), shares
    with pytest.raises(ValueError, match="unknown trimap shape 'ring'"):
        synthetic_pair(64, trimap="ring")


def test_gflops_count_only_the_decoded_tiles():
    model = build_model("mematte_s", FAST_MEMATTE_OPTS + ["model.tile_size=64"], seed=0).eval()
    image, trimap = synthetic_pair(256, trimap="outline")
    image_t = torch.from_numpy(image).permute(2, 0, 1).float()
    trimap_t = torch.from_numpy(trimap)[None].float()
    gflops = {}
    for skip in (True, False):
        engine = MattingInference(model, skip_known_tiles=skip)
        gflops[skip] = count_gflops(engine, image_t, trimap_t, RoutingBudget(keep_ratio=0.25))
    assert 0 < gflops[True] < gflops[False]
