"""ViTMatte ViT-B baseline: the ViT-S baseline at width 768 with 12 heads (decoder follows)."""

from .vitmatte_s import model

model.backbone.embed_dim, model.backbone.num_heads = 768, 12
