"""Routing ablations for MEMatte, built on mematte_d2's public registries only.

Importing this package registers its routers, token refiners and routing policies, so a
LazyConfig can select them by name (``model.backbone.router = "GlobalRouter"``). Import it
under this one name only: a second import under another name would register twice.
"""

from .policies import PerBlockRatio, RandomRouting
from .refiners import IdentityRefiner, LTRMNoECA
from .routers import DynamicViTRouter, GlobalRouter

__all__ = [
    "DynamicViTRouter",
    "GlobalRouter",
    "IdentityRefiner",
    "LTRMNoECA",
    "PerBlockRatio",
    "RandomRouting",
]
