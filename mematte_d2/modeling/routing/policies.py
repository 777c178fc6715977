"""Routing policies: router log-probabilities -> per-token decisions, plus the budget loss.

Decisions are ``[B, N]`` with 1 = global attention. In training they are floats that are exactly
0 or 1 in value but carry straight-through gradients to the router; at inference they are bool.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import ROUTING_POLICY_REGISTRY


def _check_ratio(value: float | None, name: str) -> None:
    if value is not None and not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")


def check_max_tokens(max_tokens: int | None) -> int | None:
    """The one check of a token cap: None (no cap) or a positive int, returned as int.

    0 is refused: it would switch global attention off in every routed block, which neither a
    user's cap nor the memory budget (whose smallest cap is 1 token) ever means.
    """
    if max_tokens is None:
        return None
    if (
        isinstance(max_tokens, bool)
        or not isinstance(max_tokens, numbers.Integral)
        or max_tokens < 1
    ):
        raise ValueError(f"max_tokens must be None or a positive int, got {max_tokens!r}")
    return int(max_tokens)


def check_keep_ratio(value: float | None) -> float | None:
    """The one check of an inference keep ratio: None or a number in (0, 1], returned as float
    (the share of tokens each routed block keeps)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"keep_ratio must be a number in (0, 1] or None, got {value!r}")
    if not (math.isfinite(value) and 0.0 < value <= 1.0):
        raise ValueError(f"keep_ratio must be in (0, 1], got {value}")
    return float(value)


def routing_margin(log_probs: Tensor) -> Tensor:
    """Router preference for global attention: ``log p0 - log p1``, shape ``[B, N]``."""
    return log_probs[..., 0] - log_probs[..., 1]


def top_margin_mask(margin: Tensor, k: int) -> Tensor:
    """Bool mask ``[B, N]`` selecting, per image, the ``k`` tokens with the largest margin."""
    k = max(0, min(int(k), margin.shape[-1]))
    mask = torch.zeros_like(margin, dtype=torch.bool)
    if k > 0:
        # A tensor source, not the scalar True: torch.jit's tracer (FLOP counting, export)
        # has no schema for scatter_ with a bool scalar.
        indices = margin.topk(k, dim=-1).indices
        mask.scatter_(-1, indices, torch.ones_like(indices, dtype=torch.bool))
    return mask


def ratio_to_count(ratio: float, num_tokens: int) -> int:
    """``ceil(ratio * N)`` tokens (ratio checked to lie in [0, 1])."""
    _check_ratio(ratio, "keep ratio")
    return min(num_tokens, math.ceil(float(ratio) * num_tokens - 1e-9))


def cap_tokens(keep: Tensor, margin: Tensor, max_tokens: int | None) -> Tensor:
    """Per image, if more than ``max_tokens`` tokens are kept, keep only the ``max_tokens``
    kept tokens with the largest margin."""
    max_tokens = check_max_tokens(max_tokens)
    if max_tokens is None:
        return keep
    over = keep.sum(dim=-1) > max_tokens
    if not bool(over.any()):
        return keep
    ranked = margin.masked_fill(~keep, float("-inf"))
    capped = top_margin_mask(ranked, max_tokens) & keep
    return torch.where(over[:, None], capped, keep)


@dataclass(frozen=True)
class RoutingBudget:
    """The inference token budget of one call, passed down to the encoder as an argument.

    ``max_tokens``: per image and routed block, at most this many tokens attend globally (the
    encoder enforces it after the policy). ``keep_ratio``: the policy keeps the ``ceil(ratio *
    N)`` largest-margin tokens per image instead of its own rule. None leaves the encoder's
    configured value. A budget is a value, never model state: two calls with different budgets
    on one model cannot see each other's.
    """

    max_tokens: int | None = None
    keep_ratio: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_tokens", check_max_tokens(self.max_tokens))
        object.__setattr__(self, "keep_ratio", check_keep_ratio(self.keep_ratio))


def straight_through(hard: Tensor, soft: Tensor) -> Tensor:
    """Value of ``hard`` (0/1 floats), gradient of ``soft``."""
    return hard - soft.detach() + soft


class RoutingPolicy(nn.Module):
    """Base policy. Subclasses implement :meth:`train_decisions`, :meth:`eval_decisions` and
    :meth:`loss`.

    Policies decide; the encoder alone applies the inference token cap (by router margin) to
    whatever ``eval_decisions`` returns, so no policy can exceed it.

    Args:
        keep_ratio: target share of tokens sent to global attention (the paper's rho).
        loss_weight: weight of the budget loss.
    """

    def __init__(self, keep_ratio: float = 0.25, loss_weight: float = 1.0):
        super().__init__()
        _check_ratio(keep_ratio, "keep_ratio")
        self.keep_ratio = float(keep_ratio)
        self.loss_weight = float(loss_weight)

    def train_decisions(self, log_probs: Tensor) -> Tensor:
        """Float decisions ``[B, N]`` (0/1 values, straight-through gradients)."""
        raise NotImplementedError

    def eval_decisions(self, log_probs: Tensor, keep_ratio: float | None = None) -> Tensor:
        """Bool decisions ``[B, N]``. ``keep_ratio`` (if given) keeps the ``ceil(ratio * N)``
        largest-margin tokens per image."""
        raise NotImplementedError

    def loss(self, decisions: Tensor) -> Tensor:
        """Budget loss from the training decisions of all routed blocks ``[B, K, N]``."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"keep_ratio={self.keep_ratio}, loss_weight={self.loss_weight}"


class GumbelPolicy(RoutingPolicy):
    """Hard Gumbel-softmax decisions in training; at inference the router's argmax, or the
    ``ceil(keep_ratio * N)`` largest-margin tokens per image when a ratio is given. Subclasses
    define the budget :meth:`loss`."""

    def __init__(self, keep_ratio: float = 0.25, loss_weight: float = 1.0, tau: float = 1.0):
        super().__init__(keep_ratio, loss_weight)
        if tau <= 0:
            raise ValueError(f"{type(self).__name__}: tau must be positive, got {tau}")
        self.tau = float(tau)

    def train_decisions(self, log_probs: Tensor) -> Tensor:
        return F.gumbel_softmax(log_probs, tau=self.tau, hard=True, dim=-1)[..., 0]

    def eval_decisions(self, log_probs: Tensor, keep_ratio: float | None = None) -> Tensor:
        margin = routing_margin(log_probs)
        if keep_ratio is None:
            return margin > 0
        return top_margin_mask(margin, ratio_to_count(keep_ratio, margin.shape[-1]))


@ROUTING_POLICY_REGISTRY.register()
class BATR(GumbelPolicy):
    """Batch-constrained Adaptive Token Routing: ``loss_weight * (r - rho)^2`` where ``r`` is the
    share of routed tokens over the whole batch and all routed blocks, so single images and
    blocks may route more or fewer tokens."""

    def loss(self, decisions: Tensor) -> Tensor:
        if decisions.numel() == 0:
            return decisions.new_zeros(())
        return self.loss_weight * (decisions.mean() - self.keep_ratio) ** 2


@ROUTING_POLICY_REGISTRY.register()
class PerImageRatio(GumbelPolicy):
    """DynamicViT-style constraint: every image and every block is pulled to the keep ratio,
    ``loss_weight * mean_{image, block} (share_{image, block} - rho)^2``."""

    def loss(self, decisions: Tensor) -> Tensor:
        if decisions.numel() == 0:
            return decisions.new_zeros(())
        share = decisions.mean(dim=-1)
        return self.loss_weight * ((share - self.keep_ratio) ** 2).mean()


@ROUTING_POLICY_REGISTRY.register()
class FixedTopK(RoutingPolicy):
    """Exactly ``ceil(keep_ratio * N)`` tokens per image, the ones with the largest router
    margin, in training and inference. Training decisions pass gradients straight through the
    router's probability of global attention; the budget holds by construction (zero loss)."""

    def train_decisions(self, log_probs: Tensor) -> Tensor:
        margin = routing_margin(log_probs)
        hard = top_margin_mask(margin, ratio_to_count(self.keep_ratio, margin.shape[-1]))
        return straight_through(hard.to(log_probs.dtype), log_probs[..., 0].exp())

    def eval_decisions(self, log_probs: Tensor, keep_ratio: float | None = None) -> Tensor:
        margin = routing_margin(log_probs)
        ratio = self.keep_ratio if keep_ratio is None else keep_ratio
        return top_margin_mask(margin, ratio_to_count(ratio, margin.shape[-1]))

    def loss(self, decisions: Tensor) -> Tensor:
        return decisions.new_zeros(())
