"""Learning-rate schedules of the recipes, defined relative to the run length."""

import bisect
from collections.abc import Sequence

from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import ParamScheduler

__all__ = ["FractionalMultiStep", "warmup_multistep"]


class FractionalMultiStep(ParamScheduler):
    """``values[i]`` from training fraction ``milestones[i - 1]`` on (``values[0]`` before)."""

    def __init__(self, values: Sequence[float], milestones: Sequence[float]):
        if len(values) != len(milestones) + 1:
            raise ValueError(
                f"lr schedule: {len(values)} values need {len(values) - 1} milestones, "
                f"got {len(milestones)}"
            )
        if any(not 0 < m < 1 for m in milestones) or list(milestones) != sorted(milestones):
            raise ValueError(
                f"lr schedule: milestones must be increasing fractions in (0, 1): "
                f"{list(milestones)}"
            )
        self.values = list(values)
        self.milestones = list(milestones)

    def __call__(self, where: float) -> float:
        return self.values[bisect.bisect_right(self.milestones, where)]


def warmup_multistep(
    max_iter: int,
    milestones: Sequence[float],
    values: Sequence[float],
    warmup_iters: int = 250,
    warmup_factor: float = 0.001,
) -> WarmupParamScheduler:
    """Linear warmup over `warmup_iters`, then lr x ``values[i]`` after ``milestones[i - 1]``.

    Milestones are fractions of training (e.g. epoch 6 of 30 = 0.2), so overriding
    ``train.max_iter`` keeps the schedule's shape.
    """
    if max_iter < 1:
        raise ValueError(f"lr schedule: train.max_iter must be positive, got {max_iter}")
    return WarmupParamScheduler(
        FractionalMultiStep(values, milestones),
        warmup_factor=warmup_factor,
        warmup_length=min(1.0, warmup_iters / max_iter),
    )
