"""Router ablations: image-context-only scores and DynamicViT's full-width score predictor.

Both follow the ``ROUTER_REGISTRY`` contract: ``Router(dim)`` maps block-input tokens
``[B, N, C]`` to log-probabilities ``[B, N, 2]`` (channel 0 = global attention).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mematte_d2.modeling import ROUTER_REGISTRY


def _embed(dim: int) -> nn.Sequential:
    """LayerNorm(C) -> Linear(C, C) -> GELU, the token embedding every router starts with."""
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU())


def _score_head(in_dim: int, dim: int) -> nn.Sequential:
    """Linear(in, C/2) -> GELU -> Linear(C/2, C/4) -> GELU -> Linear(C/4, 2) -> LogSoftmax."""
    return nn.Sequential(
        nn.Linear(in_dim, dim // 2),
        nn.GELU(),
        nn.Linear(dim // 2, dim // 4),
        nn.GELU(),
        nn.Linear(dim // 4, 2),
        nn.LogSoftmax(dim=-1),
    )


def _check(router: nn.Module, x: Tensor) -> None:
    if x.dim() != 3 or x.shape[-1] != router.dim:
        raise ValueError(
            f"{type(router).__name__} expects tokens [B, N, {router.dim}], "
            f"got shape {tuple(x.shape)}"
        )


def _check_dim(name: str, dim: int) -> None:
    if dim % 4 != 0:
        raise ValueError(f"{name} needs dim divisible by 4, got {dim}")


@ROUTER_REGISTRY.register()
class GlobalRouter(nn.Module):
    """Ablation router scoring from image-level context only: the embedded tokens are averaged
    over the image and one score pair is broadcast to every token.

    It can choose how many tokens an image routes but not which: in training every token draws
    its own Gumbel sample from the shared probability; at inference all tokens of an image tie
    (argmax policies keep all or none; a ratio picks among the tied tokens arbitrarily).
    """

    def __init__(self, dim: int):
        super().__init__()
        _check_dim(type(self).__name__, dim)
        self.dim = dim
        self.in_conv = _embed(dim)
        self.out_conv = _score_head(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """Tokens ``[B, N, C]`` -> log-probabilities ``[B, N, 2]``, equal across the N tokens."""
        _check(self, x)
        context = self.in_conv(x).mean(dim=1, keepdim=True)
        return self.out_conv(context).expand(-1, x.shape[1], -1)


@ROUTER_REGISTRY.register()
class DynamicViTRouter(nn.Module):
    """DynamicViT's prediction module as its paper writes it: the full embedded token
    (local feature, C channels) concatenated with the full image average (global feature,
    C channels), then the MLP score head on 2C channels.

    MEMatte's :class:`~mematte_d2.modeling.routing.LocalGlobalRouter` instead splits the C
    channels in half (C/2 local, C/2 pooled), so its head reads C channels. DynamicViT pools only
    over tokens still kept; MEMatte never drops a token for good, so the pool is all tokens.
    """

    def __init__(self, dim: int):
        super().__init__()
        _check_dim(type(self).__name__, dim)
        self.dim = dim
        self.in_conv = _embed(dim)
        self.out_conv = _score_head(2 * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """Tokens ``[B, N, C]`` -> log-probabilities ``[B, N, 2]``."""
        _check(self, x)
        local = self.in_conv(x)
        context = local.mean(dim=1, keepdim=True).expand_as(local)
        return self.out_conv(torch.cat([local, context], dim=-1))
