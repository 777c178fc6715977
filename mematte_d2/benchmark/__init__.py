"""Latency and peak-memory benchmark of inference and training, one fresh process per case."""

from .cases import InferenceCase, TrainCase, synthetic_pair
from .runner import run_case

__all__ = ["InferenceCase", "TrainCase", "run_case", "synthetic_pair"]
