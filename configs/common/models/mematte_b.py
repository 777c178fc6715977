"""MEMatte ViT-B: the ViT-S layout at width 768 with 12 heads (student, teacher, decoder)."""

from .mematte_s import model

model.backbone.embed_dim, model.backbone.num_heads = 768, 12
model.teacher_backbone.embed_dim, model.teacher_backbone.num_heads = 768, 12
model.decoder.in_chans = 768
