"""Pytest setup shared by tests/ and projects/: small, deterministic CPU runs."""

import os
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
# The shared test helpers (tests/tiny_models.py, ...) import by name from projects/ too.
sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))


@pytest.fixture(autouse=True)
def _deterministic_cpu():
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
