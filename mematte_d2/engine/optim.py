"""Optimizer pieces of the recipe: layer-wise lr decay for ViT encoders."""

from detectron2.modeling.backbone.vit import get_vit_lr_decay_rate

__all__ = ["ViTLayerDecay"]


class ViTLayerDecay:
    """lr factor per parameter name: ``decay_rate ** (num_layers + 1 - layer)``.

    Patch and position embeddings are layer 0, block i is layer i + 1, and everything else
    (routers, residual bottlenecks, the decoder) trains at the full rate, as in ViTMatte.
    A named class rather than a ``functools.partial`` so configs can override its fields.
    """

    def __init__(self, num_layers: int = 12, decay_rate: float = 0.65):
        if not 0 < decay_rate <= 1:
            raise ValueError(f"ViTLayerDecay: decay_rate must be in (0, 1], got {decay_rate}")
        self.num_layers = num_layers
        self.decay_rate = decay_rate

    def __call__(self, name: str) -> float:
        return get_vit_lr_decay_rate(name, self.decay_rate, self.num_layers)
