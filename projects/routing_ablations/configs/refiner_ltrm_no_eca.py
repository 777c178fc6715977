"""Routing ablation: LTRM without efficient channel attention."""

from ._base import OUTPUT_ROOT, dataloader, lr_multiplier, model, optimizer, train

model.backbone.router = "LocalGlobalRouter"
model.backbone.refiner = "LTRMNoECA"
model.backbone.routing_policy = "BATR"
train.output_dir = f"{OUTPUT_ROOT}/refiner_ltrm_no_eca"

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]
