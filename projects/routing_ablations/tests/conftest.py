"""Puts the project on sys.path (as its configs do) and keeps runs small and deterministic."""

import sys
from pathlib import Path

import pytest
import torch

PROJECT_DIR = str(Path(__file__).resolve().parents[1])
if PROJECT_DIR not in sys.path:
    sys.path.insert(0, PROJECT_DIR)


@pytest.fixture(autouse=True)
def _deterministic_cpu():
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
