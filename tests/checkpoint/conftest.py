"""Fixture of the checkpoint tests: a tiny synthetic matting set registered in this process."""

from pathlib import Path

import pytest
from tiny_models import register_synthetic_sets

from mematte_d2.data.synthetic import generate_synthetic_dataset


@pytest.fixture(scope="session")
def ckpt_datasets(tmp_path_factory) -> Path:
    """Root of a tiny ``synthetic`` set, registered as ``ckpt_tiny_train`` / ``ckpt_tiny_test``."""
    root = tmp_path_factory.mktemp("ckpt_datasets")
    generate_synthetic_dataset(
        root / "synthetic", num_train=2, num_bg=2, num_test=1, size=64, test_size=48, seed=3
    )
    register_synthetic_sets(root / "synthetic", "ckpt_tiny")
    return root
