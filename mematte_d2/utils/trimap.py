"""Trimap encoding and known-region clamping shared by the model, evaluator and predictor."""

import numpy as np
import torch

# Thresholds of the 0-255 trimap encoding: < 85 background, >= 170 foreground, else unknown.
TRIMAP_BG_THRESHOLD = 85
TRIMAP_FG_THRESHOLD = 170


def normalize_trimap(trimap: torch.Tensor) -> torch.Tensor:
    """Map a trimap given as 0/128/255 (or already 0/0.5/1) to 0 / 0.5 / 1 floats.

    A trimap whose maximum exceeds 1 is read on the 0-255 scale.
    """
    trimap = trimap.float()
    if trimap.numel() and trimap.max() > 1:
        out = torch.full_like(trimap, 0.5)
        out[trimap < TRIMAP_BG_THRESHOLD] = 0.0
        out[trimap >= TRIMAP_FG_THRESHOLD] = 1.0
        return out
    out = torch.full_like(trimap, 0.5)
    out[trimap <= 0.25] = 0.0
    out[trimap >= 0.75] = 1.0
    return out


def clamp_known_regions(alpha: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
    """Set alpha to 0 / 1 where the trimap says background / foreground.

    `trimap` may be on the 0-255 or the 0-1 scale and must have alpha's shape.
    """
    if alpha.shape != trimap.shape:
        raise ValueError(f"alpha shape {tuple(alpha.shape)} != trimap shape {tuple(trimap.shape)}")
    tri = normalize_trimap(trimap.to(alpha.device))
    out = alpha.clone()
    out[tri == 0] = 0.0
    out[tri == 1] = 1.0
    return out


def trimap_to_uint8(trimap: np.ndarray) -> np.ndarray:
    """Quantise a trimap of any scale to the 0 / 128 / 255 codes the official evaluation uses."""
    tri = normalize_trimap(torch.from_numpy(np.asarray(trimap, dtype=np.float32))).numpy()
    out = np.full(tri.shape, 128, dtype=np.uint8)
    out[tri == 0] = 0
    out[tri == 1] = 255
    return out
