"""ViTMatte ViT-S baseline on Composition-1K with the MEMatte schedule (no routing, no teacher)."""

from detectron2.config import LazyConfig

from ..common.models.vitmatte_s import model

dataloader, lr_multiplier, optimizer, train = LazyConfig.load_rel(
    "mematte_s_topk0.25.py", ("dataloader", "lr_multiplier", "optimizer", "train")
)

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]

train.output_dir = "./output/comp1k_vitmatte_s"
