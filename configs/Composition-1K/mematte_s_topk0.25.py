"""MEMatte ViT-S on Composition-1K (keep ratio 0.25): 16 images x 2 GPUs, 30 epochs.

Student and teacher start from a ViTMatte-S Composition-1K checkpoint:
    train.init_checkpoint=/path/to/ViTMatte_S_Com.pth
"""

from ..common.data.comp1k import dataloader
from ..common.models.mematte_s import model
from ..common.optim import optimizer
from ..common.schedule import lr_multiplier
from ..common.train import train

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]

dataloader.train.total_batch_size = 32
train.max_iter = int(43100 / 32 * 30)  # 40,406
train.output_dir = "./output/comp1k_mematte_s_topk0.25"
