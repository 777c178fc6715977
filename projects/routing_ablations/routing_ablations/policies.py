"""Routing-policy ablations: a per-block budget and score-independent random routing.

Both follow the ``ROUTING_POLICY_REGISTRY`` contract of
:class:`~mematte_d2.modeling.routing.RoutingPolicy`: ``Policy(keep_ratio, **kwargs)`` turns
router log-probabilities ``[B, N, 2]`` into decisions ``[B, N]`` (1 = global attention; floats
with straight-through gradients in training, bool at inference) and routed-block decisions
``[B, K, N]`` into a budget loss.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mematte_d2.modeling import ROUTING_POLICY_REGISTRY, RoutingPolicy
from mematte_d2.modeling.routing import (
    GumbelPolicy,
    ratio_to_count,
    top_margin_mask,
)


@ROUTING_POLICY_REGISTRY.register()
class PerBlockRatio(GumbelPolicy):
    """Every routed block is pulled to the keep ratio on its own, over the whole batch:
    ``loss_weight * mean_k (share_k - rho)^2`` with ``share_k`` the share of tokens block ``k``
    routes over all images. Images may still differ; blocks may not (unlike BATR)."""

    def loss(self, decisions: Tensor) -> Tensor:
        if decisions.numel() == 0:
            return decisions.new_zeros(())
        share = decisions.mean(dim=(0, 2))
        return self.loss_weight * ((share - self.keep_ratio) ** 2).mean()


@ROUTING_POLICY_REGISTRY.register()
class RandomRouting(RoutingPolicy):
    """Lower bound for learned routing: every token goes to global attention with probability
    ``keep_ratio``, independently of the router, in training and at inference. A ratio given at
    inference keeps a uniformly random ``ceil(ratio * N)`` tokens per image (the encoder's token
    cap then drops kept tokens by router margin). No budget loss (the expectation is exact).

    Training decisions add ``0 * p(global)`` so the router stays in the autograd graph with
    exactly zero gradients (DistributedDataParallel rejects parameters that get no gradient).
    Draws use torch's global generator (seeded by detectron2's ``train.seed``).
    """

    def _scores(self, log_probs: Tensor) -> Tensor:
        return torch.rand(log_probs.shape[:-1], device=log_probs.device)

    def train_decisions(self, log_probs: Tensor) -> Tensor:
        hard = (self._scores(log_probs) < self.keep_ratio).to(log_probs.dtype)
        return hard + 0.0 * log_probs[..., 0].exp()

    def eval_decisions(self, log_probs: Tensor, keep_ratio: float | None = None) -> Tensor:
        scores = self._scores(log_probs)
        if keep_ratio is None:
            return scores < self.keep_ratio
        return top_margin_mask(-scores, ratio_to_count(keep_ratio, scores.shape[-1]))

    def loss(self, decisions: Tensor) -> Tensor:
        return decisions.new_zeros(())
