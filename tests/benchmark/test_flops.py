"""GFLOPs of an inference call: attention and routing ops are handled, routing saves work."""

import torch
import torch.nn.functional as F
from tiny_models import FAST_MEMATTE_OPTS, FAST_VITMATTE_OPTS
from torch import nn

from mematte_d2.benchmark.cases import synthetic_pair
from mematte_d2.benchmark.flops import flop_analysis, matting_flop_analysis
from mematte_d2.benchmark.measure import build_model
from mematte_d2.inference import MattingInference
from mematte_d2.modeling.routing import RoutingBudget


class _Attention(nn.Module):
    def forward(self, image, trimap):
        q = image.reshape(2, 3, 40, 8)
        k = trimap.reshape(2, 3, 24, 8)
        v = torch.cat([k, k], dim=-1)
        return F.scaled_dot_product_attention(q, k, v)


def test_attention_counts_both_products():
    analysis = flop_analysis(_Attention(), (torch.rand(2, 3, 320), torch.rand(2, 3, 192)))
    # q k^T: 2*3*40*24*8 multiply-adds; attn v: 2*3*40*24*16.
    assert analysis.total() == 2 * 3 * 40 * 24 * (8 + 16)
    assert not analysis.unsupported_ops()


def _gflops(model_name: str, opts: list[str], keep_ratio: float) -> tuple[float, dict]:
    model = build_model(model_name, opts, seed=0).eval()
    image, trimap = synthetic_pair(96)
    image_t = torch.from_numpy(image).permute(2, 0, 1).float()
    trimap_t = torch.from_numpy(trimap)[None].float()
    engine = MattingInference(model)
    with torch.no_grad():
        analysis = matting_flop_analysis(engine, image_t, trimap_t,
                                         RoutingBudget(keep_ratio=keep_ratio))
        return analysis.total() / 1e9, analysis.unsupported_ops()


def test_mematte_count_lies_between_routed_only_and_all_global():
    # The smallest keep ratio a RoutingBudget accepts: one token per image to global attention.
    none_global, unsupported = _gflops("mematte_s", FAST_MEMATTE_OPTS, 1e-9)
    quarter, _ = _gflops("mematte_s", FAST_MEMATTE_OPTS, 0.25)
    all_global, _ = _gflops("mematte_s", FAST_MEMATTE_OPTS, 1.0)
    assert none_global < quarter < all_global
    assert not unsupported, f"ops skipped by the count: {dict(unsupported)}"


def test_vitmatte_has_no_uncounted_ops():
    total, unsupported = _gflops("vitmatte_s", FAST_VITMATTE_OPTS, 0.25)
    assert total > 0
    assert not unsupported, f"ops skipped by the count: {dict(unsupported)}"
