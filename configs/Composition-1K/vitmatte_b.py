"""ViTMatte ViT-B baseline on Composition-1K with the MEMatte schedule (no routing, no teacher)."""

from detectron2.config import LazyConfig

from ..common.models.vitmatte_b import model

dataloader, lr_multiplier, optimizer, train = LazyConfig.load_rel(
    "mematte_b_topk0.25.py", ("dataloader", "lr_multiplier", "optimizer", "train")
)

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]

train.output_dir = "./output/comp1k_vitmatte_b"
