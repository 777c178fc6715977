"""Reading the files of a matting sample as float arrays, with errors that name the file.

Built on mematte_d2.utils.image_io (8/16-bit, grayscale, RGBA handled there): colour images come
back as HxWx3 RGB float32 on the 0-255 scale, alpha mattes as HxW float32 in [0, 1] taken from
the first channel (what the official evaluation reads), trimaps as HxW uint8 0/128/255 codes.
"""

from pathlib import Path

import numpy as np

from mematte_d2.utils.image_io import read_image, read_trimap, to_float01
from mematte_d2.utils.trimap import trimap_to_uint8


def read_rgb(path: str | Path) -> np.ndarray:
    """An image as HxWx3 RGB float32 in [0, 255] (16-bit files are rescaled, alpha dropped)."""
    return to_float01(read_image(path)) * np.float32(255.0)


def read_alpha(path: str | Path) -> np.ndarray:
    """An alpha matte as HxW float32 in [0, 1], from the file's first (red or gray) channel."""
    return to_float01(read_image(path)[:, :, 0])


def read_trimap_codes(path: str | Path) -> np.ndarray:
    """A trimap as HxW uint8 with exactly the codes 0 / 128 / 255."""
    return trimap_to_uint8(read_trimap(path))


def check_same_size(arrays: dict[str, np.ndarray]) -> None:
    """Raise ValueError naming every file when the arrays (keyed by file) differ in HxW."""
    sizes = {str(name): tuple(a.shape[:2]) for name, a in arrays.items()}
    if len(set(sizes.values())) > 1:
        listing = ", ".join(f"{name} is {h}x{w}" for name, (h, w) in sizes.items())
        raise ValueError(f"image sizes differ: {listing} (HxW)")


def read_foreground(fg_file: str | Path, alpha_file: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A foreground (HxWx3, 0-255) and its alpha (HxW, [0, 1]); their sizes must match."""
    fg, alpha = read_rgb(fg_file), read_alpha(alpha_file)
    check_same_size({fg_file: fg, alpha_file: alpha})
    return fg, alpha
