"""Routing ablation: DynamicViT-style ratio per image and block."""

from ._base import OUTPUT_ROOT, dataloader, lr_multiplier, model, optimizer, train

model.backbone.router = "LocalGlobalRouter"
model.backbone.refiner = "LTRM"
model.backbone.routing_policy = "PerImageRatio"
train.output_dir = f"{OUTPUT_ROOT}/policy_per_image"

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]
