"""What every variant starts from: the tiny synthetic schedule, with this project registered.

The schedule is read from the installed mematte_d2 (``model_zoo.get_config``, as detectron2's
ViTDet recipes read theirs), so this folder works wherever it lies. For paper-scale runs
replace the name with ``"Composition-1K/mematte_s_topk0.25.py"`` (README).
"""

from mematte_d2 import model_zoo

from ._project import OUTPUT_ROOT

_schedule = model_zoo.get_config("quick_schedules/mematte_tiny_synthetic.py")
dataloader = _schedule.dataloader
lr_multiplier = _schedule.lr_multiplier
model = _schedule.model
optimizer = _schedule.optimizer
train = _schedule.train

__all__ = ["OUTPUT_ROOT", "dataloader", "lr_multiplier", "model", "optimizer", "train"]
