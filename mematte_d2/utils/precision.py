"""Autocast precisions by name, shared by training, prediction and the benchmark."""

from __future__ import annotations

import contextlib

import torch

# None = full fp32, no autocast.
PRECISIONS = {
    "fp32": None, "float32": None,
    "fp16": torch.float16, "float16": torch.float16,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
}


def autocast_dtype(name: str, device: torch.device, setting: str = "precision"):
    """The autocast dtype of precision ``name`` on ``device`` (None for fp32).

    Raises a ValueError naming ``setting`` for an unknown name, and for fp16 on the CPU, whose
    autocast supports bfloat16 only.
    """
    if name not in PRECISIONS:
        raise ValueError(f"{setting}={name!r}: choose one of {sorted(PRECISIONS)}")
    dtype = PRECISIONS[name]
    if device.type == "cpu" and dtype == torch.float16:
        raise ValueError(f"{setting}={name!r}: autocast on CPU supports bfloat16 ('bf16') only")
    return dtype


def autocast(dtype: torch.dtype | None, device: torch.device):
    """``torch.autocast`` to ``dtype`` on ``device``, or a no-op for None (fp32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
