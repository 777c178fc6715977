"""Swappable token-routing components (routers, token refiners, routing policies)."""

from .policies import (
    BATR,
    FixedTopK,
    GumbelPolicy,
    PerImageRatio,
    RoutingBudget,
    RoutingPolicy,
    cap_tokens,
    check_keep_ratio,
    check_max_tokens,
    ratio_to_count,
    routing_margin,
    top_margin_mask,
)
from .refiners import ECA, LTRM, MLPRefiner
from .routers import (
    LocalGlobalRouter,
    LocalRouter,
    check_router_dim,
    check_tokens,
    score_head,
    token_embedding,
)

__all__ = [
    "BATR",
    "ECA",
    "FixedTopK",
    "GumbelPolicy",
    "LTRM",
    "LocalGlobalRouter",
    "LocalRouter",
    "MLPRefiner",
    "PerImageRatio",
    "RoutingBudget",
    "RoutingPolicy",
    "cap_tokens",
    "check_keep_ratio",
    "check_max_tokens",
    "check_router_dim",
    "check_tokens",
    "ratio_to_count",
    "routing_margin",
    "score_head",
    "token_embedding",
    "top_margin_mask",
]
