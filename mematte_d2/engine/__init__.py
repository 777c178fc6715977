"""Training engine: MattingTrainer and the pieces it is built from."""

from ..config import ConfigError, ConfigKeyError, apply_overrides, load_config
from .hooks import MattingVisualizer, unwrap_model
from .optim import ViTLayerDecay
from .schedule import FractionalMultiStep, warmup_multistep
from .step import MattingStepRunner
from .trainer import (
    MattingTrainer,
    bind_device,
    check_datasets,
    gradient_compression_hook,
    resolve_device,
    test_dataset_names,
    train_dataset_names,
)

__all__ = [
    "ConfigError",
    "ConfigKeyError",
    "FractionalMultiStep",
    "MattingStepRunner",
    "MattingTrainer",
    "MattingVisualizer",
    "ViTLayerDecay",
    "apply_overrides",
    "bind_device",
    "check_datasets",
    "gradient_compression_hook",
    "load_config",
    "resolve_device",
    "test_dataset_names",
    "train_dataset_names",
    "unwrap_model",
    "warmup_multistep",
]
