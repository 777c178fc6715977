"""How the authors' MEMatte release feeds a test image to the model (its ``inference.py``).

The release reads image and trimap with PIL and torchvision's ``to_tensor``: the trimap channel
is the first channel of the trimap file divided by 255 (unknown = 128 / 255, not 0.5), and no
EXIF rotation is applied. Its model pads bottom / right with zeros (after normalisation) only
when a side is not a multiple of 32, and then grows *each* side by ``32 - side % 32``, so an
aligned side gains 32 pixels.
"""

from pathlib import Path

import numpy as np
import torch
from PIL import Image

RELEASE_PAD_MULTIPLE = 32

# PIL modes whose first band ``to_tensor`` turns into the trimap channel as value / 255.
_TRIMAP_MODES = ("L", "LA", "P", "RGB", "RGBA")


def release_padded_size(height: int, width: int) -> tuple[int, int]:
    """The encoder input size the release pads an HxW image to."""
    m = RELEASE_PAD_MULTIPLE
    if height % m == 0 and width % m == 0:
        return height, width
    return height + m - height % m, width + m - width % m


def read_release_image(path: str | Path) -> np.ndarray:
    """An image as HxWx3 float32 RGB on the 0-255 scale, decoded by PIL without EXIF rotation.

    The release accepts only RGB files; other modes are converted to RGB here.
    """
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.float32)


def read_release_trimap(path: str | Path) -> np.ndarray:
    """The first band of a trimap file as HxW uint8 codes, unquantised, as the release reads it."""
    with Image.open(path) as img:
        if img.mode not in _TRIMAP_MODES:
            raise ValueError(
                f"{path}: trimap mode {img.mode!r} is not one of the 8-bit modes "
                f"{', '.join(_TRIMAP_MODES)}"
            )
        codes = np.asarray(img)
    return codes if codes.ndim == 2 else codes[:, :, 0]


def release_trimap_channel(codes: np.ndarray) -> torch.Tensor:
    """The release's fourth input channel: 1xHxW float32 codes / 255."""
    return torch.from_numpy(np.array(codes))[None].float().div(255)
