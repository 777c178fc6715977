"""MEMatte ViT-S on Composition-1K (keep ratio 0.25)."""

from ..common.models.mematte_s import model

__all__ = ["model"]
