"""Composition-1K schedule: warmup 250 iterations, lr x0.1 after epoch 6, x0.05 after 26 of 30."""

from detectron2.config import LazyCall as L

from mematte_d2.engine import warmup_multistep

lr_multiplier = L(warmup_multistep)(
    max_iter="${train.max_iter}",
    milestones=[6 / 30, 26 / 30],
    values=[1.0, 0.1, 0.05],
    warmup_iters=250,
)
