"""Matting data: data set registration (builtin and custom), GCA-style training transforms,
dataset mappers and loaders. The synthetic set lives in :mod:`mematte_d2.data.synthetic`."""

from . import builtin, transforms  # noqa: F401  (builtin registers the standard sets)
from .build import build_matting_test_loader, build_matting_train_loader
from .datasets import (
    get_matting_dataset_dicts,
    register_composition_dataset,
    register_evaluation_dataset,
    register_matting_dataset,
)
from .mappers import MattingTestMapper, MattingTrainMapper

__all__ = [
    "MattingTestMapper",
    "MattingTrainMapper",
    "build_matting_test_loader",
    "build_matting_train_loader",
    "get_matting_dataset_dicts",
    "register_composition_dataset",
    "register_evaluation_dataset",
    "register_matting_dataset",
]
