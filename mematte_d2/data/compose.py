"""Offline composition helpers for building test sets (datasets/compose_*.py, the synthetic set).

Test sets that papers report on are composed by the official Adobe Deep Image Matting script
(``Composition_code.py``); :func:`adobe_background` and :func:`adobe_composite` reproduce it
byte for byte, reading files with PIL as it does (:func:`read_adobe_rgb`,
:func:`read_adobe_alpha`). :func:`composite` is the rounding blend of the synthetic set.

Images are uint8 RGB HxWx3, alphas float32 HxW in [0, 1] (uint8 for the Adobe rule);
composition works in row strips so that multi-megapixel images do not need several full-size
float copies at once.
"""

import glob
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from mematte_d2.utils.image_io import IMAGE_EXTENSIONS, ImageReadError

from .transforms import TRIMAP_BG, TRIMAP_FG, TRIMAP_UNKNOWN

__all__ = [
    "adobe_background",
    "adobe_composite",
    "compose_pairs",
    "composite",
    "cover_crop",
    "find_by_stem",
    "list_image_files",
    "read_adobe_alpha",
    "read_adobe_rgb",
    "trimap_from_alpha",
]

_STRIP_ROWS = 512
_ALPHA_MODES = ("L", "LA", "RGB", "RGBA")


def _open(path: str | Path) -> Image.Image:
    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError) as e:
        raise ImageReadError(f"{path}: not a readable image ({e})") from e
    return img


def read_adobe_rgb(path: str | Path) -> Image.Image:
    """A foreground or background opened by PIL (no EXIF rotation) and converted to RGB, as the
    official script does for modes other than RGB (it keeps RGBA foregrounds' colour bands)."""
    img = _open(path)
    return img if img.mode == "RGB" else img.convert("RGB")


def read_adobe_alpha(path: str | Path) -> np.ndarray:
    """An 8-bit alpha matte as HxW uint8 (its first band when it has several)."""
    img = _open(path)
    if img.mode not in _ALPHA_MODES:
        raise ImageReadError(f"{path}: alpha mode {img.mode!r} is not one of the 8-bit modes "
                             f"{', '.join(_ALPHA_MODES)}")
    alpha = np.asarray(img)
    return alpha if alpha.ndim == 2 else alpha[:, :, 0]


def adobe_background(bg: Image.Image, height: int, width: int) -> np.ndarray:
    """The official script's background for an HxW foreground as HxWx3 uint8: RGB, enlarged with
    PIL's bicubic filter to (ceil(bw r), ceil(bh r)) when r = max(W / bw, H / bh) > 1, then its
    top-left HxW corner."""
    if bg.mode != "RGB":
        bg = bg.convert("RGB")
    bw, bh = bg.size
    ratio = max(width / bw, height / bh)
    if ratio > 1:
        bg = bg.resize((math.ceil(bw * ratio), math.ceil(bh * ratio)), Image.BICUBIC)
    return np.asarray(bg)[:height, :width]


def adobe_composite(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """The official per-pixel blend as HxWx3 uint8, with a = alpha / 255 in double precision:
    the foreground where a == 1, the background where a == 0, else int(a fg + (1 - a) bg).

    `fg` HxWx3 uint8, `alpha` HxW uint8, `bg` at least HxW (its top-left corner is used).
    """
    h, w = alpha.shape
    if alpha.dtype != np.uint8:
        raise TypeError(f"adobe_composite: alpha must be uint8 (0-255), got {alpha.dtype}")
    if fg.shape[:2] != (h, w) or bg.shape[0] < h or bg.shape[1] < w:
        raise ValueError(f"adobe_composite: fg {fg.shape[:2]}, alpha {(h, w)} and bg "
                         f"{bg.shape[:2]} do not fit (bg must cover the foreground)")
    out = np.array(bg[:h, :w, :3], dtype=np.uint8)
    for top in range(0, h, _STRIP_ROWS):
        rows = slice(top, min(h, top + _STRIP_ROWS))
        a = alpha[rows, :, None] / 255.0
        mixed = np.floor(a * fg[rows, :, :3] + (1 - a) * out[rows]).astype(np.uint8)
        out[rows] = np.where(a >= 1, fg[rows, :, :3], np.where(a > 0, mixed, out[rows]))
    return out


def cover_crop(bg: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale `bg` (up or down, aspect kept) to just cover height x width, then centre-crop."""
    bh, bw = bg.shape[:2]
    ratio = max(width / bw, height / bh)
    size = (max(width, math.ceil(bw * ratio)), max(height, math.ceil(bh * ratio)))
    interp = cv2.INTER_CUBIC if ratio > 1 else cv2.INTER_AREA
    scaled = cv2.resize(bg, size, interpolation=interp)
    top, left = (size[1] - height) // 2, (size[0] - width) // 2
    return scaled[top:top + height, left:left + width]


def composite(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """uint8 image = fg * alpha + bg * (1 - alpha), rounded; bg is cropped at its top-left."""
    h, w = alpha.shape
    if fg.shape[:2] != (h, w) or bg.shape[0] < h or bg.shape[1] < w:
        raise ValueError(f"composite: fg {fg.shape[:2]}, alpha {(h, w)} and bg {bg.shape[:2]} "
                         "do not fit (bg must cover the foreground)")
    out = np.empty((h, w, 3), np.uint8)
    for top in range(0, h, _STRIP_ROWS):
        rows = slice(top, min(h, top + _STRIP_ROWS))
        a = alpha[rows, :, None].astype(np.float32)
        mixed = fg[rows].astype(np.float32) * a + bg[rows, :w].astype(np.float32) * (1 - a)
        out[rows] = np.clip(np.round(mixed), 0, 255).astype(np.uint8)
    return out


def trimap_from_alpha(alpha: np.ndarray, kernel: int) -> np.ndarray:
    """Deterministic 0/128/255 trimap: alpha == 1 and alpha == 0 regions eroded by a disc of
    diameter `kernel`; every fractional alpha pixel is unknown. Takes uint8 or [0, 1] alpha."""
    one = 255 if alpha.dtype == np.uint8 else 1.0
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel, kernel))
    trimap = np.full(alpha.shape, TRIMAP_UNKNOWN, np.uint8)
    trimap[cv2.erode((alpha >= one).astype(np.uint8), disc) > 0] = TRIMAP_FG
    trimap[cv2.erode((alpha <= 0).astype(np.uint8), disc) > 0] = TRIMAP_BG
    return trimap


def list_image_files(directory: str | os.PathLike, names_file: str | os.PathLike | None = None
                     ) -> list[Path]:
    """The image files of `directory` in sorted order, or the ones a names file lists (one
    file name per line, in the file's order, as the Adobe test_*_names.txt files do)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such folder")
    if names_file is None:
        return sorted(p for p in directory.iterdir()
                      if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    lines = Path(names_file).read_text().splitlines()
    return [directory / line.strip() for line in lines if line.strip()]


def find_by_stem(directory: str | os.PathLike, stem: str) -> Path:
    """The one image file `<stem>.*` in `directory` (FileNotFoundError naming it if none)."""
    found = [p for p in Path(directory).glob(f"{glob.escape(stem)}.*")
             if p.suffix.lower() in IMAGE_EXTENSIONS]
    if len(found) != 1:
        what = "no image" if not found else f"{len(found)} images"
        raise FileNotFoundError(f"{Path(directory) / stem}.*: {what} with that name")
    return found[0]


def compose_pairs(
    foregrounds: Sequence[Path],
    backgrounds_of: Callable[[int], Sequence[Path]],
    load_foreground: Callable[[Path], Any],
    load_background: Callable[[Path, Any], np.ndarray],
    write: Callable[[Path, int, Any, np.ndarray], None],
    read_errors: tuple[type[Exception], ...],
) -> tuple[int, list[Path]]:
    """The loop of the compose scripts: foreground i with each of ``backgrounds_of(i)``.

    ``load_foreground(path)`` returns what ``load_background(path, fg)`` and
    ``write(fg_path, j, fg, bg)`` need. A file whose loading raises one of ``read_errors`` is
    reported on stderr by name and skipped (with its pairs); the run goes on. Returns the number
    of composites written and the skipped files.
    """
    skipped: list[Path] = []
    written = 0
    for i, fg_path in enumerate(foregrounds):
        try:
            fg = load_foreground(fg_path)
        except read_errors as e:
            print(f"skipped foreground {fg_path}: {e}", file=sys.stderr)
            skipped.append(fg_path)
            continue
        for j, bg_path in enumerate(backgrounds_of(i)):
            try:
                bg = load_background(bg_path, fg)
            except read_errors as e:
                print(f"skipped background {bg_path}: {e}", file=sys.stderr)
                skipped.append(bg_path)
                continue
            write(fg_path, j, fg, bg)
            written += 1
    return written, skipped
