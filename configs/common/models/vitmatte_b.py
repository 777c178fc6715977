"""ViTMatte ViT-B baseline: the ViT-S baseline at width 768 with 12 heads."""

from .vitmatte_s import model

model.backbone.embed_dim, model.backbone.num_heads = 768, 12
model.decoder.in_chans = 768
