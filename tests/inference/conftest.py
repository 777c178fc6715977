"""Fixture: a checkpoint of the tiny MEMatte with seeded random weights."""

import pytest
import torch
from detectron2.config import instantiate
from tiny_models import tiny_cfg


@pytest.fixture(scope="session")
def weights(tmp_path_factory) -> str:
    """Path of ``{"model": state_dict}`` of ``tiny_cfg()`` built after ``manual_seed(0)``."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "tiny.pth"
    torch.save({"model": instantiate(tiny_cfg().model).state_dict()}, path)
    return str(path)
