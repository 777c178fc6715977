"""Fixtures of the app tests: the tiny MEMatte's config overrides and seeded weights, a photo."""

import numpy as np
import pytest
import torch
from detectron2.config import instantiate
from tiny_models import FAST_MEMATTE_OPTS, MEMATTE_CONFIG

from mematte_d2.config import load_config


@pytest.fixture(scope="session")
def tiny_model_args(tmp_path_factory) -> tuple[str, str, list[str]]:
    """(config file, weights file, overrides) of the tiny MEMatte with seeded random weights."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("app_weights") / "tiny.pth"
    model = instantiate(load_config(MEMATTE_CONFIG, FAST_MEMATTE_OPTS).model)
    torch.save({"model": model.state_dict()}, path)
    return MEMATTE_CONFIG, str(path), list(FAST_MEMATTE_OPTS)


@pytest.fixture(scope="session")
def photo_rgb() -> np.ndarray:
    """A real photograph (scikit-image's cat, 451 x 300)."""
    from skimage import data

    return data.chelsea()
