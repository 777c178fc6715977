"""Routing ablation: plain per-token MLP refiner (no spatial mixing, no ECA)."""

from ._base import OUTPUT_ROOT, dataloader, lr_multiplier, model, optimizer, train

model.backbone.router = "LocalGlobalRouter"
model.backbone.refiner = "MLPRefiner"
model.backbone.routing_policy = "BATR"
train.output_dir = f"{OUTPUT_ROOT}/refiner_mlp"

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]
