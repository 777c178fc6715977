"""Routers: per-token scores deciding global attention (channel 0) versus the refiner (1)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..registry import ROUTER_REGISTRY


def token_embedding(dim: int) -> nn.Sequential:
    """LayerNorm(C) -> Linear(C, C) -> GELU: the token embedding a router starts with."""
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU())


def score_head(dim: int, in_dim: int | None = None) -> nn.Sequential:
    """Linear(in, C/2) -> GELU -> Linear(C/2, C/4) -> GELU -> Linear(C/4, 2) -> LogSoftmax, with
    ``in`` = ``in_dim`` or C: the MLP mapping router features to log-probabilities."""
    return nn.Sequential(
        nn.Linear(in_dim or dim, dim // 2),
        nn.GELU(),
        nn.Linear(dim // 2, dim // 4),
        nn.GELU(),
        nn.Linear(dim // 4, 2),
        nn.LogSoftmax(dim=-1),
    )


def check_router_dim(dim: int, name: str) -> None:
    """Routers halve and quarter the width: ``dim`` must be divisible by 4."""
    if dim % 4 != 0:
        raise ValueError(f"{name} needs dim divisible by 4, got {dim}")


def check_tokens(x: Tensor, dim: int, name: str) -> None:
    """A router's input must be tokens ``[B, N, dim]``."""
    if x.dim() != 3 or x.shape[-1] != dim:
        raise ValueError(f"{name} expects tokens [B, N, {dim}], got shape {tuple(x.shape)}")


@ROUTER_REGISTRY.register()
class LocalGlobalRouter(nn.Module):
    """MEMatte's router: half of the embedded channels stay per token, the other half are
    averaged over the image and broadcast back, so each score sees local and global context."""

    def __init__(self, dim: int):
        super().__init__()
        check_router_dim(dim, type(self).__name__)
        self.dim = dim
        self.in_conv = token_embedding(dim)
        self.out_conv = score_head(dim)

    def forward(self, x: Tensor) -> Tensor:
        """Tokens ``[B, N, C]`` -> log-probabilities ``[B, N, 2]``."""
        check_tokens(x, self.dim, type(self).__name__)
        x = self.in_conv(x)
        half = self.dim // 2
        local = x[..., :half]
        context = x[..., half:].mean(dim=1, keepdim=True).expand_as(local)
        return self.out_conv(torch.cat([local, context], dim=-1))


@ROUTER_REGISTRY.register()
class LocalRouter(nn.Module):
    """Ablation router scoring each token from its own features only (no image context).
    Same parameter layout as :class:`LocalGlobalRouter`."""

    def __init__(self, dim: int):
        super().__init__()
        check_router_dim(dim, type(self).__name__)
        self.dim = dim
        self.in_conv = token_embedding(dim)
        self.out_conv = score_head(dim)

    def forward(self, x: Tensor) -> Tensor:
        """Tokens ``[B, N, C]`` -> log-probabilities ``[B, N, 2]``."""
        check_tokens(x, self.dim, type(self).__name__)
        return self.out_conv(self.in_conv(x))
