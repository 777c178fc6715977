"""Routing ablation: MEMatte as published: local-global router, LTRM, BATR."""

from ._base import OUTPUT_ROOT, dataloader, lr_multiplier, model, optimizer, train

model.backbone.router = "LocalGlobalRouter"
model.backbone.refiner = "LTRM"
model.backbone.routing_policy = "BATR"
train.output_dir = f"{OUTPUT_ROOT}/baseline"

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]
