"""A small MEMatte trained from scratch on the bundled synthetic set: the CPU main job.

The data: python -m mematte_d2.data.synthetic --out datasets/synthetic (make demo does it).
"""

from ..common.data.synthetic import dataloader
from ..common.models.mematte_s import model
from ..common.optim import optimizer
from ..common.schedule import lr_multiplier
from ..common.train import train

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]

width, depth = 64, 4
model.backbone.update(
    embed_dim=width,
    num_heads=2,
    depth=depth,
    window_size=4,
    window_block_indexes=[0, 2],
    residual_block_indexes=[1, 3],
)
model.teacher_backbone = None  # nothing to distil from when training from scratch
model.decoder.update(convstream_out=[16, 32, 64], fusion_out=[96, 48, 32, 16])
model.tile_size = 0  # test images are small: decode them whole

optimizer.lr = 1e-3

train.max_iter = 600
train.eval_period = 300
train.vis_period = 300
train.log_period = 20
train.checkpointer.period = 300
train.device = "cpu"
train.output_dir = "./output/quick_mematte_tiny_synthetic"
lr_multiplier.warmup_iters = 20
lr_multiplier.milestones = [0.7, 0.9]
lr_multiplier.values = [1.0, 0.1, 0.01]
