"""A generated foreground set and the per-crop statistics used to compare training pipelines.

The reference figures in tests/fixtures/release_crops_stats.json were computed by running the
authors' release pipeline (outside this repository) on the set :func:`write_foreground_set`
writes, one background per sample with foreground index = sample index mod #foregrounds.
"""

from pathlib import Path

import cv2
import numpy as np

from mematte_d2.data.procedural import random_foreground

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "release_crops_stats.json"
STATISTICS = ("unknown_share", "foreground_share", "fractional_share", "mean_abs_grad")
# Alpha within half an 8-bit level of 0 / 1 counts as 0 / 1 (resampling noise).
_LEVEL = 0.5 / 255


def foreground_shapes(seed: int, count: int) -> list[tuple[int, int]]:
    """(height, width) of each foreground: sides uniform in [400, 1600], so some samples are
    upscaled before cropping and most exceed the 1024 px rotation threshold."""
    rng = np.random.default_rng([seed, 1])
    return [(int(h), int(w)) for h, w in rng.integers(400, 1601, size=(count, 2))]


def _harden(alpha: np.ndarray) -> np.ndarray:
    """A solid object: the matte pushed towards 0 / 1, leaving a 1-2 px anti-aliased edge, so
    the crop's unknown region is mostly the trimap's band."""
    return np.clip((alpha - 0.5) * 8 + 0.5, 0.0, 1.0)


def write_foreground_set(root: Path, seed: int = 0, num_fg: int = 12, num_bg: int = 400
                         ) -> dict[str, Path]:
    """fg/, alpha/ (8-bit PNG) and bg/ (small JPG) folders of a deterministic procedural set:
    even-numbered foregrounds as generated, odd-numbered ones with solid mattes."""
    dirs = {key: root / key for key in ("fg", "alpha", "bg")}
    for d in dirs.values():
        d.mkdir(parents=True)
    for i, (h, w) in enumerate(foreground_shapes(seed, num_fg)):
        fg, alpha = random_foreground(np.random.default_rng([seed, 2, i]), h, w)
        alpha = _harden(alpha) if i % 2 else alpha  # half hairy / veiled, half solid
        cv2.imwrite(str(dirs["fg"] / f"fg{i:03d}.png"), cv2.cvtColor(fg, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(dirs["alpha"] / f"fg{i:03d}.png"), np.round(alpha * 255).astype(np.uint8))
    rng = np.random.default_rng([seed, 3])
    for i in range(num_bg):
        bg = rng.integers(0, 256, (int(rng.integers(48, 97)), int(rng.integers(48, 97)), 3))
        cv2.imwrite(str(dirs["bg"] / f"bg{i:04d}.jpg"), bg.astype(np.uint8))
    return dirs


def crop_statistics(alpha: np.ndarray, trimap: np.ndarray) -> dict[str, float]:
    """Unknown share (trimap == 128), foreground and fractional-alpha shares and the mean
    alpha gradient magnitude (per pixel) of one training crop."""
    alpha = np.asarray(alpha, np.float64)
    gy, gx = np.gradient(alpha)
    return {
        "unknown_share": float(np.mean(np.asarray(trimap) == 128)),
        "foreground_share": float(np.mean(alpha >= 1 - _LEVEL)),
        "fractional_share": float(np.mean((alpha > _LEVEL) & (alpha < 1 - _LEVEL))),
        "mean_abs_grad": float(np.mean(np.hypot(gx, gy))),
    }

