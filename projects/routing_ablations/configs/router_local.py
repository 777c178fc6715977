"""Routing ablation: local-only router (each token scored from its own features)."""

from ._base import OUTPUT_ROOT, dataloader, lr_multiplier, model, optimizer, train

model.backbone.router = "LocalRouter"
model.backbone.refiner = "LTRM"
model.backbone.routing_policy = "BATR"
train.output_dir = f"{OUTPUT_ROOT}/router_local"

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]
