"""Deterministic stand-ins for ops whose CUDA backward has no deterministic kernel.

Under ``torch.use_deterministic_algorithms(True)`` (``train.deterministic``) the CUDA backward
of ``F.interpolate`` (linear, bilinear, bicubic) and of reflection padding raise a
RuntimeError, as their kernels accumulate with atomic adds. The functions here compute the
same values with ops whose backward is deterministic (matrix products, slices and flips), and
only where needed: on a CUDA tensor that requires grad while deterministic algorithms are on.
Everywhere else they call the native op.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["interpolate", "reflect_pad2d"]

_MODES_2D = {"bilinear", "bicubic"}


def needs_replacement(x: Tensor) -> bool:
    """True where the native CUDA backward would be nondeterministic (and refused)."""
    return (x.device.type == "cuda" and x.requires_grad and torch.is_grad_enabled()
            and torch.are_deterministic_algorithms_enabled())


def _axis_weights(n_in: int, mode: str, align_corners: bool | None, size: int | None,
                  scale: float | None, like: Tensor) -> Tensor:
    """[n_out, n_in] weights of the native op along one axis: the op applied to an identity
    (the other axis kept at scale 1, where linear and cubic weights are the identity)."""
    eye = torch.eye(n_in, device=like.device, dtype=torch.float32)[None, None]
    with torch.no_grad():
        weights = F.interpolate(
            eye,
            size=None if size is None else (size, n_in),
            scale_factor=None if scale is None else (scale, 1.0),
            mode="bilinear" if mode == "linear" else mode,
            align_corners=align_corners,
        )
    return weights[0, 0].to(like.dtype)


def interpolate(x: Tensor, size=None, scale_factor=None, mode: str = "bilinear",
                align_corners: bool | None = None) -> Tensor:
    """``F.interpolate`` for linear (3-D input), bilinear and bicubic (4-D input) modes, as
    separable matrix products where the native backward is nondeterministic."""
    if not needs_replacement(x) or mode not in _MODES_2D | {"linear"}:
        return F.interpolate(x, size=size, scale_factor=scale_factor, mode=mode,
                             align_corners=align_corners)
    dims = x.dim() - 2
    sizes = [None] * dims if size is None else ([size] * dims if isinstance(size, int)
                                                 else list(size))
    scales = [None] * dims if scale_factor is None else (
        [scale_factor] * dims if isinstance(scale_factor, (int, float)) else list(scale_factor))
    axes = [_axis_weights(n, mode, align_corners, s, f, x)
            for n, s, f in zip(x.shape[2:], sizes, scales)]
    if dims == 1:
        return x @ axes[0].t()
    return axes[0] @ x @ axes[1].t()


def reflect_pad2d(x: Tensor, pad: tuple[int, int, int, int]) -> Tensor:
    """``F.pad(x, pad, mode="reflect")`` of the last two dims (left, right, top, bottom), built
    from flipped slices where the native backward is nondeterministic."""
    if not needs_replacement(x):
        return F.pad(x, pad, mode="reflect")
    left, right, top, bottom = pad
    x = torch.cat([x[..., 1:left + 1].flip(-1), x, x[..., x.shape[-1] - right - 1:-1].flip(-1)],
                  dim=-1)
    return torch.cat([x[..., 1:top + 1, :].flip(-2), x,
                      x[..., x.shape[-2] - bottom - 1:-1, :].flip(-2)], dim=-2)
