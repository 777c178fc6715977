"""Routing ablation: ratio per routed block over the batch."""

from ._base import OUTPUT_ROOT, dataloader, lr_multiplier, model, optimizer, train

model.backbone.router = "LocalGlobalRouter"
model.backbone.refiner = "LTRM"
model.backbone.routing_policy = "PerBlockRatio"
train.output_dir = f"{OUTPUT_ROOT}/policy_per_block"

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]
