"""Tiny matting sets written to temporary folders for the data tests."""

import itertools
from pathlib import Path

import cv2
import numpy as np

from mematte_d2.utils.image_io import write_png

_counter = itertools.count()


def unique_name(prefix: str) -> str:
    """A data set name no other test registers (the catalogs are process-wide)."""
    return f"_test_{prefix}_{next(_counter)}"


def soft_alpha(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 alpha: an opaque disc with a blurred rim, a hole and a 1 px semi-transparent line."""
    alpha = np.zeros((h, w), np.uint8)
    centre = (int(rng.integers(w // 3, 2 * w // 3)), int(rng.integers(h // 3, 2 * h // 3)))
    cv2.circle(alpha, centre, min(h, w) // 4, 255, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.5)
    cv2.circle(alpha, centre, min(h, w) // 12, 0, -1)
    cv2.line(alpha, (0, h - 3), (w - 1, 2), 140, 1)
    return alpha


def write_composition_set(root: Path, n_fg: int = 3, n_bg: int = 2, size=(40, 56),
                          seed: int = 0) -> dict[str, str]:
    """fg/, alpha/ (PNG) and bg/ (JPG, larger than the foregrounds) under `root`."""
    rng = np.random.default_rng(seed)
    dirs = {key: root / sub for key, sub in
            (("fg_dir", "fg"), ("alpha_dir", "alpha"), ("bg_dir", "bg"))}
    for d in dirs.values():
        d.mkdir(parents=True)
    h, w = size
    for i in range(n_fg):
        write_png(dirs["fg_dir"] / f"obj{i}.png", rng.integers(0, 256, (h, w, 3), np.uint8))
        write_png(dirs["alpha_dir"] / f"obj{i}.png", soft_alpha(h, w, rng))
    for i in range(n_bg):
        bg = rng.integers(0, 256, (h + 20, w + 30, 3), np.uint8)
        cv2.imwrite(str(dirs["bg_dir"] / f"bg{i}.jpg"), bg)
    return {k: str(v) for k, v in dirs.items()}


def write_evaluation_set(root: Path, n: int = 2, size=(37, 53), seed: int = 0
                         ) -> dict[str, str]:
    """image/, alpha/, trimap/ (PNG) under `root`; trimaps use the codes 0 / 100 / 200 / 255."""
    rng = np.random.default_rng(seed)
    dirs = {key: root / sub for key, sub in
            (("image_dir", "image"), ("alpha_dir", "alpha"), ("trimap_dir", "trimap"))}
    for d in dirs.values():
        d.mkdir(parents=True)
    h, w = size
    for i in range(n):
        alpha = soft_alpha(h, w, rng)
        trimap = np.where(alpha == 0, 0, np.where(alpha == 255, 255, 100)).astype(np.uint8)
        trimap[0, 0] = 200  # a non-standard "foreground" code that must read as 255
        write_png(dirs["image_dir"] / f"im{i}.png", rng.integers(0, 256, (h, w, 3), np.uint8))
        write_png(dirs["alpha_dir"] / f"im{i}.png", alpha)
        write_png(dirs["trimap_dir"] / f"im{i}.png", trimap)
    return {k: str(v) for k, v in dirs.items()}
