"""GCA-Matting style training augmentation as small composable steps.

Each transform is a callable ``t(sample, rng) -> sample`` on a dict of numpy arrays:

* "fg": HxWx3 float32 RGB in [0, 255]; "alpha": HxW float32 in [0, 1];
* "bg": H'xW'x3 float32 RGB in [0, 255] (any size until composited);
* "trimap": HxW uint8 with codes 0 / 128 / 255 (added by :class:`GenerateTrimap`);
* "image": HxWx3 float32 in [0, 255] (added by :class:`CompositeOnBackground`).

All randomness comes from the `rng` argument (a numpy Generator), so a pipeline is reproducible
given the generator's seed.
"""

from collections.abc import Sequence

import cv2
import numpy as np

from .datasets import get_matting_dataset_dicts
from .reading import read_foreground

__all__ = [
    "CompositeOnBackground",
    "CropAroundUnknown",
    "ForegroundColorJitter",
    "GenerateTrimap",
    "RandomAffine",
    "RandomSecondForeground",
    "default_train_transforms",
]

# Keys aligned pixel-for-pixel with the foreground (moved together by geometric transforms).
_LINEAR_KEYS = ("fg", "alpha", "image")
_NEAREST_KEYS = ("trimap",)
# Alpha values this close to 0 / 1 (interpolation noise) count as exactly 0 / 1.
_SNAP_EPS = 1e-4

TRIMAP_BG, TRIMAP_UNKNOWN, TRIMAP_FG = 0, 128, 255


def _fractional(alpha: np.ndarray) -> np.ndarray:
    return (alpha > 0) & (alpha < 1)


def _resize(sample: dict, height: int, width: int) -> None:
    for key in _LINEAR_KEYS + _NEAREST_KEYS:
        if key in sample:
            interp = cv2.INTER_NEAREST if key in _NEAREST_KEYS else cv2.INTER_LINEAR
            sample[key] = cv2.resize(sample[key], (width, height), interpolation=interp)
    if "alpha" in sample:
        sample["alpha"] = np.clip(sample["alpha"], 0.0, 1.0)


class RandomSecondForeground:
    """With probability `prob`, lay a second foreground of the data set under the first.

    The second one is resized to the first's size; alpha = 1 - (1 - a1)(1 - a2) and the colour
    is fg1 where the first is opaque, fg2 where it is transparent (fg1 * a1 + fg2 * (1 - a1)).
    Skipped when the union would be opaque everywhere (nothing left to matte).

    Args:
        sources: data set name(s) or a list of composition dicts to draw foregrounds from;
            names are resolved on first use (inside the data loader worker).
    """

    def __init__(self, sources: str | Sequence[str] | Sequence[dict], prob: float = 0.5):
        self.sources = sources
        self.prob = prob
        self._pairs: list[tuple[str, str]] | None = None

    def _pool(self) -> list[tuple[str, str]]:
        if self._pairs is None:
            dicts = get_matting_dataset_dicts(self.sources)
            self._pairs = sorted({(d["fg_file"], d["alpha_file"]) for d in dicts})
        return self._pairs

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        if rng.random() >= self.prob:
            return sample
        pool = self._pool()
        fg2_file, alpha2_file = pool[rng.integers(len(pool))]
        fg2, alpha2 = read_foreground(fg2_file, alpha2_file)
        h, w = sample["alpha"].shape
        fg2 = cv2.resize(fg2, (w, h), interpolation=cv2.INTER_LINEAR)
        alpha2 = np.clip(cv2.resize(alpha2, (w, h), interpolation=cv2.INTER_LINEAR), 0, 1)
        a1 = sample["alpha"]
        union = 1.0 - (1.0 - a1) * (1.0 - alpha2)
        if np.all(union >= 1.0):
            return sample
        sample["fg"] = sample["fg"] * a1[:, :, None] + fg2 * (1.0 - a1[:, :, None])
        sample["alpha"] = union.astype(np.float32)
        return sample


class RandomAffine:
    """Random rotation, scale, horizontal shear and horizontal flip about the image centre.

    The output keeps the input size; pixels brought in from outside are transparent.
    """

    def __init__(self, degrees: float = 30.0, scale: tuple[float, float] = (0.8, 1.25),
                 shear: float = 10.0, flip_prob: float = 0.5):
        self.degrees, self.scale, self.shear, self.flip_prob = degrees, scale, shear, flip_prob

    def matrix(self, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        """The 2x3 matrix mapping input to output pixel coordinates."""
        angle = np.deg2rad(rng.uniform(-self.degrees, self.degrees))
        scale = rng.uniform(*self.scale)
        shear = np.tan(np.deg2rad(rng.uniform(-self.shear, self.shear)))
        flip = -1.0 if rng.random() < self.flip_prob else 1.0
        cos, sin = np.cos(angle), np.sin(angle)
        linear = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, shear], [0.0, 1.0]])
        linear = scale * linear @ np.diag([flip, 1.0])
        centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
        return np.hstack([linear, (centre - linear @ centre)[:, None]])

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        h, w = sample["alpha"].shape
        m = self.matrix(h, w, rng)
        for key in _LINEAR_KEYS + _NEAREST_KEYS:
            if key not in sample:
                continue
            interp = cv2.INTER_NEAREST if key in _NEAREST_KEYS else cv2.INTER_LINEAR
            border = cv2.BORDER_REFLECT if key in ("fg", "image") else cv2.BORDER_CONSTANT
            sample[key] = cv2.warpAffine(sample[key], m, (w, h), flags=interp, borderMode=border)
        sample["alpha"] = np.clip(sample["alpha"], 0.0, 1.0)
        return sample


class ForegroundColorJitter:
    """Random hue shift and saturation / value offsets of the foreground (HSV space).

    Offsets scale with how far the foreground's mean saturation / value (over alpha > 0) is
    from saturation, and values are reflected back into [0, 1] rather than clipped.
    """

    def __init__(self, hue_degrees: float = 40.0, strength: float = 0.2):
        self.hue_degrees, self.strength = hue_degrees, strength

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        visible = sample["alpha"] > 0
        if not visible.any():
            return sample
        hsv = cv2.cvtColor(sample["fg"] / np.float32(255.0), cv2.COLOR_RGB2HSV)
        hsv[:, :, 0] = np.mod(hsv[:, :, 0] + rng.uniform(-self.hue_degrees, self.hue_degrees),
                              360.0)
        for channel in (1, 2):
            values = hsv[:, :, channel]
            room = 1.1 - float(values[visible].mean())
            values = np.abs(values + rng.uniform(-1.0, 1.0) * self.strength * room)
            hsv[:, :, channel] = np.where(values > 1.0, 2.0 - values, values)
        fg = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * np.float32(255.0)
        sample["fg"] = np.clip(fg, 0.0, 255.0)
        return sample


class CropAroundUnknown:
    """Crop `size` x `size` centred on a random unknown pixel; smaller inputs are resized up.

    "Unknown" is trimap == 128 when a trimap exists, else pixels with fractional alpha or on
    an alpha edge. Without any, the crop is uniformly random.
    """

    def __init__(self, size: int = 512):
        self.size = size

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        s = self.size
        h, w = sample["alpha"].shape
        if min(h, w) < s:
            ratio = s / min(h, w)
            h, w = max(s, round(h * ratio)), max(s, round(w * ratio))
            _resize(sample, h, w)
            if "trimap" in sample:  # interpolation may create new fractional alpha: keep it unknown
                sample["trimap"][_fractional(sample["alpha"])] = TRIMAP_UNKNOWN
        ys, xs = np.nonzero(self._unknown(sample))
        if len(ys):
            k = rng.integers(len(ys))
            top = int(np.clip(ys[k] - s // 2, 0, h - s))
            left = int(np.clip(xs[k] - s // 2, 0, w - s))
        else:
            top, left = int(rng.integers(h - s + 1)), int(rng.integers(w - s + 1))
        for key in _LINEAR_KEYS + _NEAREST_KEYS:
            if key in sample:
                sample[key] = np.ascontiguousarray(sample[key][top:top + s, left:left + s])
        return sample

    @staticmethod
    def _unknown(sample: dict) -> np.ndarray:
        if "trimap" in sample:
            return sample["trimap"] == TRIMAP_UNKNOWN
        alpha = sample["alpha"]
        kernel = np.ones((3, 3), np.uint8)
        edge = cv2.dilate(alpha, kernel) > cv2.erode(alpha, kernel)
        return edge | _fractional(alpha)


def _disk(diameter: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (diameter, diameter))


class GenerateTrimap:
    """Trimap from the alpha: definite fg (alpha == 1) and bg (alpha == 0) eroded by discs of
    random diameters in `kernel_range`; everything else is unknown.

    Alpha within 1e-4 of 0 or 1 is snapped first, so the unknown region covers every pixel
    whose (output) alpha is strictly between 0 and 1.
    """

    def __init__(self, kernel_range: tuple[int, int] = (1, 30)):
        if not 1 <= kernel_range[0] <= kernel_range[1]:
            raise ValueError(f"kernel_range must be 1 <= low <= high, got {kernel_range}")
        self.kernel_range = kernel_range

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        alpha = sample["alpha"]
        alpha = np.where(alpha < _SNAP_EPS, 0.0, np.where(alpha > 1 - _SNAP_EPS, 1.0, alpha))
        sample["alpha"] = alpha.astype(np.float32)
        low, high = self.kernel_range
        fg_k, bg_k = rng.integers(low, high + 1, size=2)
        fg = cv2.erode((alpha >= 1).astype(np.uint8), _disk(int(fg_k)))
        bg = cv2.erode((alpha <= 0).astype(np.uint8), _disk(int(bg_k)))
        trimap = np.full(alpha.shape, TRIMAP_UNKNOWN, np.uint8)
        trimap[fg > 0] = TRIMAP_FG
        trimap[bg > 0] = TRIMAP_BG
        sample["trimap"] = trimap
        return sample


class CompositeOnBackground:
    """Cut a random window of the background with the foreground's aspect ratio (covering
    `min_cover`..1 of the largest such window), resize it to the foreground's size and
    composite image = fg * alpha + bg * (1 - alpha)."""

    def __init__(self, min_cover: float = 0.5):
        self.min_cover = min_cover

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        h, w = sample["alpha"].shape
        bg = sample["bg"]
        bh, bw = bg.shape[:2]
        fit = min(bh / h, bw / w) * rng.uniform(self.min_cover, 1.0)
        ch, cw = max(1, min(bh, round(h * fit))), max(1, min(bw, round(w * fit)))
        top, left = int(rng.integers(bh - ch + 1)), int(rng.integers(bw - cw + 1))
        window = bg[top:top + ch, left:left + cw]
        if rng.random() < 0.5:
            window = window[:, ::-1]
        bg = cv2.resize(np.ascontiguousarray(window), (w, h), interpolation=cv2.INTER_LINEAR)
        a = sample["alpha"][:, :, None]
        sample["bg"] = bg
        sample["image"] = np.clip(sample["fg"] * a + bg * (1.0 - a), 0.0, 255.0)
        return sample


def default_train_transforms(sources: str | Sequence[str] | Sequence[dict] | None,
                             crop_size: int = 512) -> list:
    """The GCA-Matting pipeline: second foreground, affine, crop around the unknown region,
    trimap, colour jitter, composition. `sources` None leaves out the second foreground."""
    steps = [] if sources is None else [RandomSecondForeground(sources)]
    return steps + [
        RandomAffine(),
        CropAroundUnknown(crop_size),
        GenerateTrimap(),
        ForegroundColorJitter(),
        CompositeOnBackground(),
    ]
