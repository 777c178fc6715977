"""Inference on images of any size: predictor, memory estimate, file I/O and result images."""

from .memory import ModelDims, choose_max_tokens, estimate_peak_memory, model_dims
from .predictor import MattingPredictor, MattingResult

__all__ = [
    "MattingPredictor",
    "MattingResult",
    "ModelDims",
    "choose_max_tokens",
    "estimate_peak_memory",
    "model_dims",
]
