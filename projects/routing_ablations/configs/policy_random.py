"""Routing ablation: random routing: each token kept with probability rho."""

from ._base import OUTPUT_ROOT, dataloader, lr_multiplier, model, optimizer, train

model.backbone.router = "LocalGlobalRouter"
model.backbone.refiner = "LTRM"
model.backbone.routing_policy = "RandomRouting"
train.output_dir = f"{OUTPUT_ROOT}/policy_random"

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]
