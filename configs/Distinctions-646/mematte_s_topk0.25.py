"""MEMatte ViT-S on Distinctions-646: the Composition-1K recipe, 596 foregrounds x 100 bgs."""

from detectron2.config import LazyConfig

from ..common.data.d646 import dataloader

lr_multiplier, model, optimizer, train = LazyConfig.load_rel(
    "../Composition-1K/mematte_s_topk0.25.py", ("lr_multiplier", "model", "optimizer", "train")
)

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]

dataloader.train.total_batch_size = 32
train.max_iter = int(596 * 100 / 32 * 30)
train.output_dir = "./output/d646_mematte_s_topk0.25"
