"""Reading images and trimaps of any common layout (8/16-bit, grayscale, RGBA) and writing PNGs.

OpenCV reads every format it supports unchanged; these helpers turn the result into the two
layouts the predictor takes (HxWx3 RGB, HxW trimap on the 0-255 scale) so callers never see
BGR order, alpha channels or 16-bit values.
"""

from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class ImageReadError(ValueError):
    """A file could not be read as an image (missing, corrupt or of an unsupported layout)."""


def _read_unchanged(path: str | Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise ImageReadError(f"{path}: not a readable image (corrupt or unsupported format)")
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 2, 3, 4)):
        raise ImageReadError(f"{path}: unsupported image layout of shape {img.shape}")
    return img


def to_float01(img: np.ndarray) -> np.ndarray:
    """Scale a uint8 / uint16 / float image to float32 in [0, 1]."""
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0
    if np.issubdtype(img.dtype, np.floating):
        return np.clip(img, 0.0, 1.0).astype(np.float32)
    raise TypeError(f"unsupported image dtype {img.dtype}; expected uint8, uint16 or float")


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Convert a uint8 / uint16 / float-in-[0,1] image to uint8 with rounding."""
    if img.dtype == np.uint8:
        return img
    return np.round(to_float01(img) * 255.0).astype(np.uint8)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as HxWx3 RGB keeping its bit depth (uint8 or uint16; float for float TIFFs).

    Grayscale is replicated to three channels; an alpha channel (RGBA, gray+alpha) is dropped,
    the colour values are used as stored.
    """
    img = _read_unchanged(path)
    if img.ndim == 2 or img.shape[2] == 1:
        return np.repeat(img.reshape(img.shape[0], img.shape[1], 1), 3, axis=2)
    if img.shape[2] == 2:  # gray + alpha
        return np.repeat(img[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(img[:, :, 2::-1])  # BGR(A) -> RGB


def read_trimap(path: str | Path) -> np.ndarray:
    """Read a trimap as an HxW uint8 array on the 0-255 scale (16-bit and colour files accepted)."""
    img = _read_unchanged(path)
    if img.ndim == 3:
        if img.shape[2] >= 3:
            img = cv2.cvtColor(np.ascontiguousarray(img[:, :, :3]), cv2.COLOR_BGR2GRAY)
        else:
            img = img[:, :, 0]
    return to_uint8(img)


def write_png(path: str | Path, img: np.ndarray) -> None:
    """Write an HxW, HxWx3 (RGB) or HxWx4 (RGBA) uint8/uint16 array as PNG."""
    if img.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"{path}: PNG data must be uint8 or uint16, got {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA)
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise OSError(f"{path}: could not encode PNG of shape {img.shape}")
    buf.tofile(str(path))


def alpha_to_png_array(alpha: np.ndarray, bits: int = 8) -> np.ndarray:
    """Quantise an HxW float alpha in [0, 1] to uint8 (bits=8) or uint16 (bits=16)."""
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    scale, dtype = (255.0, np.uint8) if bits == 8 else (65535.0, np.uint16)
    return np.round(np.clip(alpha, 0.0, 1.0) * scale).astype(dtype)
