"""Images made from a predicted alpha: RGBA cutout, composite on a background, routing overlay.

Foreground colours come from pymatting's multi-level estimator (`estimate_foreground_ml`),
which removes the background colour bleeding through semi-transparent pixels; multiplying
the raw image by alpha would leave a halo of the old background around hair and fur.
"""

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def estimate_foreground(image01: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Foreground colours (HxWx3 float32 in [0, 1]) of an HxWx3 [0, 1] image given its alpha.

    A single pixel has no neighbours to take colours from (and pymatting divides by zero on
    it): its foreground is its own colour.
    """
    if alpha.size == 1:
        return np.clip(image01, 0.0, 1.0).astype(np.float32)
    from pymatting import estimate_foreground_ml

    fg = estimate_foreground_ml(image01.astype(np.float64), alpha.astype(np.float64))
    return np.clip(fg, 0.0, 1.0).astype(np.float32)


def make_cutout(foreground01: np.ndarray, alpha: np.ndarray, bits: int = 8) -> np.ndarray:
    """Straight (not premultiplied) RGBA cutout as uint8 (bits=8) or uint16 (bits=16)."""
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    scale, dtype = (255.0, np.uint8) if bits == 8 else (65535.0, np.uint16)
    rgba = np.concatenate([foreground01, alpha[:, :, None]], axis=2)
    return np.round(np.clip(rgba, 0.0, 1.0) * scale).astype(dtype)


def composite(foreground01: np.ndarray, alpha: np.ndarray, background01: np.ndarray) -> np.ndarray:
    """alpha * F + (1 - alpha) * B as uint8 RGB; the background is resized to the image size."""
    h, w = alpha.shape
    if background01.shape[:2] != (h, w):
        background01 = cv2.resize(background01, (w, h), interpolation=cv2.INTER_LINEAR)
    a = alpha[:, :, None]
    out = a * foreground01 + (1.0 - a) * background01
    return np.round(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)


def routing_overlay(
    image_u8: np.ndarray, routing: torch.Tensor, strength: float = 0.6
) -> np.ndarray:
    """Tint each 16x16 patch red by the share of routed blocks that sent it to global attention.

    `routing` is the model's bool tensor [num_routed_blocks, h, w] over the padded token grid;
    with no routed blocks (plain ViTMatte) the image is returned unchanged.
    """
    h, w = image_u8.shape[:2]
    if routing.numel() == 0 or routing.shape[0] == 0:
        return image_u8.copy()
    share = routing.float().mean(dim=0)[None, None]
    up = F.interpolate(share, scale_factor=16, mode="nearest")[0, 0, :h, :w]
    weight = (strength * up).cpu().numpy()[:, :, None]
    red = np.array([255.0, 0.0, 0.0], dtype=np.float32)
    out = (1.0 - weight) * image_u8.astype(np.float32) + weight * red
    return np.round(out).astype(np.uint8)
