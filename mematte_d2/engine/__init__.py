"""Training engine: MattingTrainer and the pieces it is built from.

Configs are loaded by :mod:`mematte_d2.config` (``load_config``, ``apply_overrides``).
"""

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
    "FractionalMultiStep",
    "MattingStepRunner",
    "MattingTrainer",
    "MattingVisualizer",
    "ViTLayerDecay",
    "bind_device",
    "check_datasets",
    "gradient_compression_hook",
    "resolve_device",
    "test_dataset_names",
    "train_dataset_names",
    "unwrap_model",
    "warmup_multistep",
]
