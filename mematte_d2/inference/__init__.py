"""Inference on images of any size: the engine, the predictor, memory estimate, file I/O and
result images."""

from .engine import MattingInference, PredictionOutOfMemoryError
from .memory import ModelDims, choose_max_tokens, estimate_peak_memory, model_dims
from .predictor import MattingPredictor, MattingResult

__all__ = [
    "MattingInference",
    "MattingPredictor",
    "MattingResult",
    "ModelDims",
    "PredictionOutOfMemoryError",
    "choose_max_tokens",
    "estimate_peak_memory",
    "model_dims",
]
