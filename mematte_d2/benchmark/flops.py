"""FLOPs of one inference call, counted with fvcore on a trace of that very call.

fvcore's convention is kept (one fused multiply-add = one FLOP), the one the ViT and matting
papers report. Routing makes the graph data dependent, so the count holds for the traced input
and keep ratio only. fvcore has no handle for scaled-dot-product attention (global, windowed
and routed attention all use it) nor for the routing's gather/scatter; they get handles here so
that attention is counted and data movement is declared free instead of warned about.
Element-wise ops (activations, norms' arithmetic, residual adds) are not counted, as fvcore's
own handles do not count them either.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import get_shape
from torch import nn

from mematte_d2.modeling.routing import RoutingBudget

# Ops that move or select data, or are element-wise: no multiply-adds to count.
ZERO_FLOP_OPS = (
    "aten::index_select", "aten::index_copy_", "aten::index_copy", "aten::scatter_",
    "aten::scatter", "aten::gather", "aten::topk", "aten::pad", "aten::expand_as",
    "aten::ones_like", "aten::zeros_like",
    "aten::add", "aten::add_", "aten::sub", "aten::sub_", "aten::rsub", "aten::mul",
    "aten::mul_", "aten::div", "aten::div_", "aten::neg", "aten::lt", "aten::gelu",
    "aten::sigmoid", "aten::rsqrt", "aten::mean", "aten::log_softmax", "aten::softmax",
    "aten::clamp", "aten::clamp_", "aten::where", "aten::masked_fill", "aten::masked_fill_",
    "aten::upsample_bicubic2d",
    "aten::upsample_linear1d",
)


def sdpa_flop_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """Multiply-adds of ``softmax(q k^T) v``: ``prod(batch dims) * Nq * Nk * (d_qk + d_v)``."""
    q_shape, k_shape, v_shape = (get_shape(v) for v in inputs[:3])
    *batch, n_q, d_qk = q_shape
    n_k = k_shape[-2]
    d_v = v_shape[-1]
    return math.prod(batch) * n_q * n_k * (d_qk + d_v)


class _AlphaOf(nn.Module):
    """Tensor-in, tensor-out view of a matting model or engine call, as the tracer needs."""

    def __init__(self, model: nn.Module, budget: RoutingBudget | None = None):
        super().__init__()
        self.model = model
        self.budget = budget

    def forward(self, image: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
        return self.model([{"image": image, "trimap": trimap}], self.budget)[0]["alpha"]


def flop_analysis(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> FlopCountAnalysis:
    """fvcore's analysis of ``module(*inputs)`` with the handles above."""
    analysis = FlopCountAnalysis(module, inputs)
    analysis.set_op_handle("aten::scaled_dot_product_attention", sdpa_flop_jit)
    analysis.set_op_handle(**{name: None for name in ZERO_FLOP_OPS})
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return analysis


def matting_flop_analysis(model: nn.Module, image: torch.Tensor, trimap: torch.Tensor,
                          budget: RoutingBudget | None = None) -> FlopCountAnalysis:
    """The analysis of ``model([{"image": image, "trimap": trimap}], budget)`` (a model or a
    ``MattingInference``; image ``[3, H, W]``, trimap ``[1, H, W]``, both 0-255). Call it
    inside the precision of the measured call."""
    return flop_analysis(_AlphaOf(model, budget), (image, trimap))


def count_gflops(model: nn.Module, image: torch.Tensor, trimap: torch.Tensor,
                 budget: RoutingBudget | None = None) -> float:
    """Total GFLOPs (10^9 multiply-adds) of one inference call on ``image`` and ``trimap``."""
    with torch.no_grad():
        return matting_flop_analysis(model, image, trimap, budget).total() / 1e9
