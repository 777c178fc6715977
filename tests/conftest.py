"""Its presence puts tests/ on sys.path, so test modules import shared helpers such as
``decoder_samples`` by name (the deterministic-CPU fixture lives in the root conftest.py).
Fixtures: checkpoints of the tiny MEMatte with seeded random weights."""

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


@pytest.fixture(scope="session")
def image_sensitive_weights(tmp_path_factory) -> str:
    """``weights`` with the alpha logit's weights scaled x100: default-init alphas stay within
    about 0.03 of 0.5 whatever the picture, these swing between 0 and 1 with it, so a test
    comparing alphas can tell one picture (or orientation) from another."""
    torch.manual_seed(0)
    state = instantiate(tiny_cfg().model).state_dict()
    state["decoder.matting_head.matting_convs.3.weight"] *= 100
    path = tmp_path_factory.mktemp("w") / "tiny_image_sensitive.pth"
    torch.save({"model": state}, path)
    return str(path)
