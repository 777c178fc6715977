"""Trimaps from what people paint or upload in the web app.

The painting editor shows a preview of the photo (at most ``PREVIEW_SIDE`` pixels on its longer
side, so an 8K photo stays responsive in a browser) and returns its layers at that size. Every
painted pixel takes the grey level of its topmost stroke (white foreground, grey unknown, black
background); unpainted pixels are background. The label map is scaled to the photo's full size
with nearest-neighbour sampling and snapped to the 0 / 128 / 255 codes. A foreground stroke is
part of the painted region like an unknown one, so the foreground always lies inside the region
the user marked, and anything left unpainted is background.
"""

from __future__ import annotations

import cv2
import numpy as np

from mematte_d2.utils.trimap import snap_trimap

# Longer side of the picture shown for painting; the painting is scaled up to the photo.
PREVIEW_SIDE = 1024
# A layer pixel counts as painted from this opacity on (brush edges are anti-aliased).
PAINTED_ALPHA = 128
BRUSH_COLORS = {"foreground": "#ffffff", "unknown": "#808080", "background": "#000000"}


def preview_size(height: int, width: int, side: int = PREVIEW_SIDE) -> tuple[int, int]:
    """(height, width) of the preview: the image scaled to fit ``side``, never enlarged."""
    scale = min(1.0, side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def make_preview(image: np.ndarray, side: int = PREVIEW_SIDE) -> np.ndarray:
    """The image shrunk to fit ``side`` pixels (area interpolation), or itself when it fits."""
    h, w = preview_size(*image.shape[:2], side)
    if (h, w) == image.shape[:2]:
        return image
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


def painted_levels(layers: list[np.ndarray]) -> np.ndarray | None:
    """The grey level (uint8) of the topmost painted stroke per pixel, 0 where nothing is
    painted, from the editor's RGBA layers (bottom first); None when no layer holds a stroke."""
    levels, painted_any = None, False
    for layer in layers:
        if layer is None or layer.ndim != 3 or layer.shape[2] != 4:
            continue
        if levels is None:
            levels = np.zeros(layer.shape[:2], np.uint8)
        if layer.shape[:2] != levels.shape:
            layer = cv2.resize(layer, levels.shape[::-1], interpolation=cv2.INTER_NEAREST)
        painted = layer[:, :, 3] >= PAINTED_ALPHA
        if painted.any():
            painted_any = True
            grey = layer[:, :, :3].mean(axis=2)
            levels[painted] = np.round(grey[painted]).astype(np.uint8)
    return levels if painted_any else None


def to_full_size(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """A preview-sized label or mask plane scaled to the image (nearest neighbour)."""
    if plane.shape[:2] == (height, width):
        return plane
    return cv2.resize(plane, (width, height), interpolation=cv2.INTER_NEAREST)


def trimap_from_painting(layers: list[np.ndarray], height: int, width: int) -> np.ndarray | None:
    """The 0 / 128 / 255 trimap of a painting at the image's size (None: nothing painted)."""
    levels = painted_levels(layers)
    if levels is None:
        return None
    codes, _ = snap_trimap(levels)
    return to_full_size(codes, height, width)


def mask_from_painting(layers: list[np.ndarray], height: int, width: int) -> np.ndarray | None:
    """A bool mask at the image's size: pixels painted with a non-background (grey or white)
    brush (None: nothing painted)."""
    levels = painted_levels(layers)
    if levels is None:
        return None
    codes, _ = snap_trimap(levels)
    return to_full_size((codes > 0).astype(np.uint8), height, width).astype(bool)
