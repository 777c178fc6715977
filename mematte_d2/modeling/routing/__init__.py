"""Swappable token-routing components (routers, token refiners, routing policies)."""

from .policies import (
    BATR,
    FixedTopK,
    GumbelPolicy,
    PerImageRatio,
    RoutingPolicy,
    cap_tokens,
    check_max_tokens,
    ratio_to_count,
    routing_margin,
    top_margin_mask,
)
from .refiners import ECA, LTRM, MLPRefiner
from .routers import LocalGlobalRouter, LocalRouter

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
    "RoutingPolicy",
    "cap_tokens",
    "check_max_tokens",
    "ratio_to_count",
    "routing_margin",
    "top_margin_mask",
]
