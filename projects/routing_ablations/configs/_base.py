"""What every variant starts from: the tiny synthetic schedule, with this project registered.

For paper-scale runs replace the schedule import with the Composition-1K recipe (README).
"""

from ....configs.quick_schedules.mematte_tiny_synthetic import (
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    train,
)
from ._project import OUTPUT_ROOT

__all__ = ["OUTPUT_ROOT", "dataloader", "lr_multiplier", "model", "optimizer", "train"]
