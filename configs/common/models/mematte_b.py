"""MEMatte ViT-B: the ViT-S layout at width 768 with 12 heads (teacher and decoder follow)."""

from .mematte_s import model

model.backbone.embed_dim, model.backbone.num_heads = 768, 12
