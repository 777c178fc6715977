"""Matting evaluation: the official SAD / MSE / Grad / Conn and a detectron2 DatasetEvaluator."""

from .metrics import (
    compute_conn,
    compute_grad,
    compute_matting_metrics,
    compute_mse,
    compute_sad,
)

__all__ = [
    "compute_conn",
    "compute_grad",
    "compute_matting_metrics",
    "compute_mse",
    "compute_sad",
]
