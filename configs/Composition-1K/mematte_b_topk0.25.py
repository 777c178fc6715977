"""MEMatte ViT-B on Composition-1K (keep ratio 0.25)."""

from ..common.models.mematte_b import model

__all__ = ["model"]
