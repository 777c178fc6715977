"""Routing ablation: DynamicViT's score predictor (full-width local + global features)."""

from ._base import OUTPUT_ROOT, dataloader, lr_multiplier, model, optimizer, train

model.backbone.router = "DynamicViTRouter"
model.backbone.refiner = "LTRM"
model.backbone.routing_policy = "BATR"
train.output_dir = f"{OUTPUT_ROOT}/router_dynamicvit"

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]
