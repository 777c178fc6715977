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
    check_bf16_native(dtype, device, f"{setting}={name!r}")
    return dtype


def check_bf16_native(dtype: torch.dtype | None, device: torch.device, what: str) -> None:
    """Refuse bfloat16 on a GPU that only emulates it (pre-Ampere): it would run far slower
    than fp16 for no gain in range that the model needs."""
    if dtype != torch.bfloat16 or device.type != "cuda":
        return
    # torch.cuda.is_bf16_supported reads the current device, not necessarily `device`
    if not torch.version.hip and torch.cuda.get_device_capability(device)[0] < 8:
        raise ValueError(
            f"{what}: {torch.cuda.get_device_name(device)} has no native bfloat16 "
            "(emulated only); use float16"
        )


def autocast(dtype: torch.dtype | None, device: torch.device):
    """``torch.autocast`` to ``dtype`` on ``device``, or a no-op for None (fp32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
