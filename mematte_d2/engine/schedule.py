"""Learning-rate schedules of the recipes, defined relative to the run length."""

from collections.abc import Sequence

from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import MultiStepParamScheduler

__all__ = ["warmup_multistep"]


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
    if len(values) != len(milestones) + 1:
        raise ValueError(
            f"lr schedule: {len(values)} values need {len(values) - 1} milestones, "
            f"got {len(milestones)}"
        )
    if any(not 0 < m < 1 for m in milestones) or list(milestones) != sorted(milestones):
        raise ValueError(f"lr schedule: milestones must be increasing fractions in (0, 1): "
                         f"{list(milestones)}")
    steps = [max(1, int(m * max_iter)) for m in milestones]
    if len(set(steps)) != len(steps) or steps[-1] >= max_iter:
        raise ValueError(f"lr schedule: max_iter={max_iter} is too short for milestones "
                         f"{list(milestones)}")
    return WarmupParamScheduler(
        MultiStepParamScheduler(values=list(values), milestones=steps, num_updates=max_iter),
        warmup_factor=warmup_factor,
        warmup_length=min(1.0, warmup_iters / max_iter),
    )
