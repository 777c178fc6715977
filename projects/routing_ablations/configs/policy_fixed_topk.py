"""Routing ablation: fixed top-k: exactly ceil(rho * N) tokens per image."""

from ._base import OUTPUT_ROOT, dataloader, lr_multiplier, model, optimizer, train

model.backbone.router = "LocalGlobalRouter"
model.backbone.refiner = "LTRM"
model.backbone.routing_policy = "FixedTopK"
train.output_dir = f"{OUTPUT_ROOT}/policy_fixed_topk"

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]
