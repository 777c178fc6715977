"""AdamW with layer-wise lr decay, no weight decay on position embedding and norms.

The decay spans the student's blocks: ``num_layers`` follows ``model.backbone.depth``."""

import torch
from detectron2.config import LazyCall as L
from detectron2.solver.build import get_default_optimizer_params

from mematte_d2.engine import ViTLayerDecay

optimizer = L(torch.optim.AdamW)(
    params=L(get_default_optimizer_params)(
        # model is filled in by the trainer
        base_lr="${..lr}",
        weight_decay_norm=0.0,
        overrides={"pos_embed": {"weight_decay": 0.0}},
        lr_factor_func=L(ViTLayerDecay)(num_layers="${model.backbone.depth}", decay_rate=0.65),
    ),
    lr=5e-4,
    betas=(0.9, 0.999),
    weight_decay=0.1,
)
