"""Router ablations: image-context-only scores and DynamicViT's full-width score predictor.

Both follow the ``ROUTER_REGISTRY`` contract: ``Router(dim)`` maps block-input tokens
``[B, N, C]`` to log-probabilities ``[B, N, 2]`` (channel 0 = global attention).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mematte_d2.modeling import ROUTER_REGISTRY
from mematte_d2.modeling.routing import (
    check_router_dim,
    check_tokens,
    score_head,
    token_embedding,
)


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
        check_router_dim(dim, type(self).__name__)
        self.dim = dim
        self.in_conv = token_embedding(dim)
        self.out_conv = score_head(dim)

    def forward(self, x: Tensor) -> Tensor:
        """Tokens ``[B, N, C]`` -> log-probabilities ``[B, N, 2]``, equal across the N tokens."""
        check_tokens(x, self.dim, type(self).__name__)
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
        check_router_dim(dim, type(self).__name__)
        self.dim = dim
        self.in_conv = token_embedding(dim)
        self.out_conv = score_head(dim, in_dim=2 * dim)

    def forward(self, x: Tensor) -> Tensor:
        """Tokens ``[B, N, C]`` -> log-probabilities ``[B, N, 2]``."""
        check_tokens(x, self.dim, type(self).__name__)
        local = self.in_conv(x)
        context = local.mean(dim=1, keepdim=True).expand_as(local)
        return self.out_conv(torch.cat([local, context], dim=-1))
