"""MEMatte modeling: encoders, routing components and their registries."""

from .decoder import DetailCapture
from .losses import MattingCriterion, distillation_loss
from .meta_arch import MEMatte
from .model_inputs import MattingInputs
from .regions import RegionSource, crop_region
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
from .tiling import tiled_decode
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
    "DetailCapture",
    "MEMatte",
    "MattingInputs",
    "RegionSource",
    "crop_region",
    "MattingCriterion",
    "distillation_loss",
    "tiled_decode",
]
