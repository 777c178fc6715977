"""``train.deterministic``: the switches that make a CUDA training run repeat bit for bit.

CPU kernels in this project are deterministic already; on CUDA several backward passes
accumulate with atomic adds, cuDNN picks algorithms by timing, cuBLAS splits reductions by
workspace and TF32 rounds matmul / convolution inputs. See docs/determinism.md for what this
covers and what it cannot.
"""

from __future__ import annotations

import logging
import os

import torch

__all__ = ["CUBLAS_WORKSPACE", "enable_determinism", "prepare_cublas_workspace"]

logger = logging.getLogger(__name__)

# cuBLAS's deterministic workspace settings (":16:8" is the smaller, slower one).
CUBLAS_WORKSPACE = ":4096:8"
_CUBLAS_DETERMINISTIC = (":4096:8", ":16:8")


def prepare_cublas_workspace() -> None:
    """Set ``CUBLAS_WORKSPACE_CONFIG`` for deterministic cuBLAS, unless a deterministic value is
    set already. cuBLAS reads it once per process, when CUDA starts: call this before (the
    training command does so before it starts its processes, which inherit it)."""
    if os.environ.get("CUBLAS_WORKSPACE_CONFIG") not in _CUBLAS_DETERMINISTIC:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE


def enable_determinism() -> None:
    """Deterministic kernels for this process: ``torch.use_deterministic_algorithms(True)``
    (an op without a deterministic kernel raises instead of running), deterministic cuDNN
    without benchmarking, TF32 off for matmuls and convolutions, deterministic cuBLAS."""
    if torch.cuda.is_initialized() and os.environ.get(
            "CUBLAS_WORKSPACE_CONFIG") not in _CUBLAS_DETERMINISTIC:
        logger.warning("train.deterministic: CUDA started before CUBLAS_WORKSPACE_CONFIG was "
                       "set; cuBLAS may stay nondeterministic in this process")
    prepare_cublas_workspace()
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
