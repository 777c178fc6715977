"""Routing ablation: no refiner: unrouted tokens skip the attention sub-layer."""

from ._base import OUTPUT_ROOT, dataloader, lr_multiplier, model, optimizer, train

model.backbone.router = "LocalGlobalRouter"
model.backbone.refiner = "IdentityRefiner"
model.backbone.routing_policy = "BATR"
train.output_dir = f"{OUTPUT_ROOT}/refiner_identity"

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]
