"""Deployment export: MEMatte with a fixed token budget per routed block, as ONNX."""

from .graph import FixedBudgetMatting, check_budget, eager_budget
from .onnx_export import export_onnx, onnx_session, run_onnx

__all__ = [
    "FixedBudgetMatting",
    "check_budget",
    "eager_budget",
    "export_onnx",
    "onnx_session",
    "run_onnx",
]
