"""Token refiners: the cheap branch that tokens not sent to global attention go through."""

from __future__ import annotations

import math

from torch import Tensor, nn

from .. import vit
from ..registry import TOKEN_REFINER_REGISTRY


def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """ECA's adaptive 1-D kernel size: ``int(|log2(C)/gamma + b/gamma|)`` rounded up to odd."""
    k = int(abs(math.log2(channels) / gamma + b / gamma))
    return k if k % 2 else k + 1


class ECA(nn.Module):
    """Efficient channel attention: per-channel sigmoid gates from a 1-D conv (no bias) across
    the globally pooled channels; returns the gated input."""

    def __init__(self, channels: int):
        super().__init__()
        k = eca_kernel_size(channels)
        self.conv = nn.Conv1d(1, 1, kernel_size=k, padding=(k - 1) // 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, H, W]`` -> ``[B, C, H, W]``."""
        pooled = x.mean(dim=(2, 3))
        gates = self.conv(pooled.unsqueeze(1)).squeeze(1).sigmoid()
        return x * gates[:, :, None, None]


@TOKEN_REFINER_REGISTRY.register()
class LTRM(vit.ChunkedInference, nn.Module):
    """Lightweight Token Refinement Module: Linear(C, rC) -> GELU -> depthwise kxk conv over the
    grid -> GELU -> Linear(rC, C), then ``y + ECA(y)`` (``use_eca=False``: ``y``, no ``eca``
    parameters). Reads the raw block input."""

    def __init__(
        self, dim: int, expand_ratio: int = 2, kernel_size: int = 5, use_eca: bool = True
    ):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"{type(self).__name__} needs an odd kernel_size, got {kernel_size}")
        hidden = dim * expand_ratio
        self.fc1 = nn.Linear(dim, hidden)
        self.act1 = nn.GELU()
        self.dwconv = nn.Conv2d(
            hidden, hidden, kernel_size, padding=kernel_size // 2, groups=hidden
        )
        self.act2 = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.eca = ECA(dim) if use_eca else None

    def forward(self, x: Tensor) -> Tensor:
        """``[B, H, W, C]`` -> ``[B, H, W, C]``. In a low-memory call the part before ECA runs on
        row strips (``map_in_row_strips``) so that its rC-wide hidden states exist for a strip at
        a time: at 8192 x 8192 two of them over all tokens would take 1.6 GB."""
        if self.low_memory():
            hidden = x.shape[0] * x.shape[2] * self.fc1.out_features
            halo = self.dwconv.padding[0]
            rows = max(vit.CHUNK_ELEMENTS // max(1, hidden), 4 * halo)
            y = vit.map_in_row_strips(self._local_mixing, x, rows, halo)
        else:
            y = self._local_mixing(x)
        if self.eca is None:
            return y
        # gated + y, not y + gated: the same sums without a third token-grid buffer
        return self.eca(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1).add_(y)

    def _local_mixing(self, x: Tensor) -> Tensor:
        y = self.act1(self.fc1(x))
        y = self.act2(self.dwconv(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))
        return self.fc2(y)

    def inference_floats_per_token(self) -> int:
        """The output and its ECA-gated copy (C each); the hidden states live per row strip."""
        return 2 * self.fc2.out_features


@TOKEN_REFINER_REGISTRY.register()
class MLPRefiner(nn.Module):
    """Ablation refiner: a per-token two-layer MLP (no spatial mixing, no channel gating)."""

    def __init__(self, dim: int, expand_ratio: int = 2):
        super().__init__()
        self.fc1 = nn.Linear(dim, dim * expand_ratio)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(dim * expand_ratio, dim)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, H, W, C]`` -> ``[B, H, W, C]``."""
        return self.fc2(self.act(self.fc1(x)))

    def inference_floats_per_token(self) -> int:
        """fc1's output and its GELU are alive together."""
        return 2 * self.fc1.out_features
