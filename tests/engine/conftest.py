"""Fixture: a tiny synthetic matting set for the engine tests."""

from pathlib import Path

import pytest
from tiny_models import register_synthetic_sets

from mematte_d2.data.synthetic import generate_synthetic_dataset


@pytest.fixture(scope="session")
def tiny_datasets_root(tmp_path_factory) -> Path:
    """$MEMATTE_DATASETS-style root holding a tiny ``synthetic`` set; also registered in this
    process as ``engine_tiny_train`` / ``engine_tiny_test``."""
    root = tmp_path_factory.mktemp("datasets")
    generate_synthetic_dataset(
        root / "synthetic", num_train=4, num_bg=3, num_test=2, size=96, test_size=80, seed=1
    )
    register_synthetic_sets(root / "synthetic", "engine_tiny")
    return root
