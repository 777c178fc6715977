"""Routed blocks under CUDA's autocast policy, emulated on the CPU.

CUDA autocast runs ``layer_norm`` in fp32 (CPU autocast keeps the low-precision dtype), so on a
GPU the residual stream of a routed block can be fp32 while its attention output is bf16/fp16,
and a refiner's output dtype follows whatever the refiner does. The fixture makes
``F.layer_norm`` return fp32 inside a CPU autocast region, as it does on CUDA.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mematte_d2.modeling import TOKEN_REFINER_REGISTRY, RoutedViT

TINY = dict(
    embed_dim=32, num_heads=2, depth=4, window_size=4, window_block_indexes=(0, 2),
    residual_block_indexes=(1, 3),
)


class ZeroUpdateRefiner(nn.Module):
    """A refiner returning a tensor of its input's dtype (fp32 on the CUDA residual stream),
    whatever the autocast dtype: the case that used to break ``index_copy_``."""

    def __init__(self, dim: int):
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape)


@pytest.fixture
def cuda_like_layer_norm(monkeypatch):
    """``F.layer_norm`` computing and returning fp32 inside autocast, CUDA's autocast policy."""
    plain = F.layer_norm

    def fp32_layer_norm(x, shape, weight=None, bias=None, eps=1e-5):
        if not torch.is_autocast_enabled(x.device.type):
            return plain(x, shape, weight, bias, eps)
        with torch.autocast(x.device.type, enabled=False):
            as_fp32 = [None if t is None else t.float() for t in (weight, bias)]
            return plain(x.float(), shape, *as_fp32, eps)

    monkeypatch.setattr(F, "layer_norm", fp32_layer_norm)


@pytest.fixture
def zero_update_refiner():
    TOKEN_REFINER_REGISTRY.register(ZeroUpdateRefiner)
    yield
    TOKEN_REFINER_REGISTRY._obj_map.pop("ZeroUpdateRefiner")


def test_emulation_reproduces_cuda_layer_norm_dtype(cuda_like_layer_norm):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = nn.Linear(8, 8)(torch.randn(2, 8))
        assert x.dtype == torch.bfloat16
        assert nn.LayerNorm(8)(x).dtype == torch.float32


@pytest.mark.parametrize("training", [False, True])
def test_every_registered_refiner_runs_under_cuda_autocast_policy(
    cuda_like_layer_norm, zero_update_refiner, training
):
    names = sorted(name for name, _ in TOKEN_REFINER_REGISTRY)
    assert "ZeroUpdateRefiner" in names and "LTRM" in names
    x = torch.randn(2, 4, 64, 96)
    for name in names:
        torch.manual_seed(0)
        encoder = RoutedViT(**TINY, refiner=name, inference_keep_ratio=0.5).train(training)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = encoder(x)
        routing = out["routing"].flatten(1).float().mean()
        assert 0 < routing < 1, name  # both branches were used
        assert torch.isfinite(out["features"].float()).all(), name
        assert out["features"].shape == (2, 32, 4, 6), name
