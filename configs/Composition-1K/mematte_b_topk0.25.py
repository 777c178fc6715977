"""MEMatte ViT-B on Composition-1K (keep ratio 0.25): 10 images x 4 GPUs, 60 epochs,
lr x0.1 after epoch 30 and x0.05 after epoch 52.

Student and teacher start from a ViTMatte-B Composition-1K checkpoint:
    train.init_checkpoint=/path/to/ViTMatte_B_Com.pth
"""

from ..common.data.comp1k import dataloader
from ..common.models.mematte_b import model
from ..common.optim import optimizer
from ..common.schedule import lr_multiplier
from ..common.train import train

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]

dataloader.train.total_batch_size = 40
train.max_iter = int(43100 / 40 * 60)  # 64,650
lr_multiplier.milestones = [30 / 60, 52 / 60]
train.output_dir = "./output/comp1k_mematte_b_topk0.25"
