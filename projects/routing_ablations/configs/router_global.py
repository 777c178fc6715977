"""Routing ablation: global-only router (scores from image-level context only)."""

from ._base import OUTPUT_ROOT, dataloader, lr_multiplier, model, optimizer, train

model.backbone.router = "GlobalRouter"
model.backbone.refiner = "LTRM"
model.backbone.routing_policy = "BATR"
train.output_dir = f"{OUTPUT_ROOT}/router_global"

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]
