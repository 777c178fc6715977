"""MEMatte modeling: encoders, routing components and their registries."""

from .registry import (
    ROUTER_REGISTRY,
    ROUTING_POLICY_REGISTRY,
    TOKEN_REFINER_REGISTRY,
    build_from_registry,
)
from .routed_vit import RoutedBlock, RoutedViT, policy_masked_attention
from .routing import (
    BATR,
    ECA,
    LTRM,
    FixedTopK,
    LocalGlobalRouter,
    LocalRouter,
    MLPRefiner,
    PerImageRatio,
    RoutingPolicy,
)
from .vitmatte_encoder import ViTMatteEncoder

__all__ = [
    "BATR",
    "ECA",
    "LTRM",
    "ROUTER_REGISTRY",
    "ROUTING_POLICY_REGISTRY",
    "TOKEN_REFINER_REGISTRY",
    "FixedTopK",
    "LocalGlobalRouter",
    "LocalRouter",
    "MLPRefiner",
    "PerImageRatio",
    "RoutedBlock",
    "RoutedViT",
    "RoutingPolicy",
    "ViTMatteEncoder",
    "build_from_registry",
    "policy_masked_attention",
]
