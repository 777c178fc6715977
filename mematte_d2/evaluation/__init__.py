"""Matting evaluation: the official SAD / MSE / Grad / Conn and a detectron2 DatasetEvaluator."""

from .evaluator import MattingEvaluator
from .metrics import (
    compute_conn,
    compute_grad,
    compute_matting_metrics,
    compute_mse,
    compute_sad,
)
from .timing import TimedModel

__all__ = [
    "MattingEvaluator",
    "TimedModel",
    "compute_conn",
    "compute_grad",
    "compute_matting_metrics",
    "compute_mse",
    "compute_sad",
]
