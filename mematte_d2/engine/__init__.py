"""Training engine: MattingTrainer and the pieces it is built from."""

from .config import ConfigKeyError, apply_overrides
from .hooks import MattingVisualizer, unwrap_model
from .optim import ViTLayerDecay
from .schedule import warmup_multistep
from .step import MattingStepRunner
from .train_loader import build_resumable_train_loader
from .trainer import (
    MattingTrainer,
    check_datasets,
    resolve_device,
    test_dataset_names,
    train_dataset_names,
)

__all__ = [
    "ConfigKeyError",
    "MattingStepRunner",
    "MattingTrainer",
    "MattingVisualizer",
    "ViTLayerDecay",
    "apply_overrides",
    "build_resumable_train_loader",
    "check_datasets",
    "resolve_device",
    "test_dataset_names",
    "train_dataset_names",
    "unwrap_model",
    "warmup_multistep",
]
