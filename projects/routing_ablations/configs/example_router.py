"""How to add a component: select ``ContrastRouter`` (``../example_router.py``) by name."""

import example_router  # noqa: F401  (the import registers ContrastRouter in ROUTER_REGISTRY)

from ._base import OUTPUT_ROOT, dataloader, lr_multiplier, model, optimizer, train

model.backbone.router = "ContrastRouter"
model.backbone.router_kwargs = {"hidden": 32}
train.output_dir = f"{OUTPUT_ROOT}/example_router"

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]
