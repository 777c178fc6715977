"""MEMatte ViT-S on UHR-395 (35,500 compositions of 4-8K images); 512 crops as in the paper."""

from detectron2.config import LazyConfig

from ..common.data.uhr395 import dataloader

lr_multiplier, model, optimizer, train = LazyConfig.load_rel(
    "../Composition-1K/mematte_s_topk0.25.py", ("lr_multiplier", "model", "optimizer", "train")
)

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]

dataloader.train.total_batch_size = 32
train.max_iter = int(35500 / 32 * 30)
train.output_dir = "./output/uhr395_mematte_s_topk0.25"
model.backbone.max_tokens = 18500  # the release's inference cap of routed tokens per block
