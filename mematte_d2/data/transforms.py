"""The training pipeline of the MEMatte release (GCA-Matting's) as small composable steps.

Each transform is a callable ``t(sample, rng) -> sample`` on a dict of numpy arrays:

* "fg": HxWx3 float32 RGB on the 0-255 scale; "alpha": HxW float32. As in the release, alpha
  is not clipped after resampling (cubic / Lanczos may overshoot [0, 1] slightly) until
  :class:`Composite` clips it; colours are clipped to [0, 255] after every resampling, as the
  release's 8-bit images saturate (they are kept in float here, not rounded to 8 bits);
* "bg": H'xW'x3 float32 RGB, any size until :class:`FitBackground`;
* "trimap": HxW uint8 with codes 0 / 128 / 255 (added by :class:`GenerateTrimap`);
* "image": HxWx3 float32 on the 0-255 scale (added by :class:`Composite`).

Every resize or warp of a colour image or an alpha draws its own interpolation from
:data:`INTERPOLATIONS`; trimaps are always resampled with nearest neighbour. All randomness
comes from the `rng` argument (a numpy Generator), so a pipeline is reproducible from its seed.
:func:`release_train_transforms` lists the steps in the release's order.
"""

from collections.abc import Callable, Sequence

import cv2
import numpy as np

from .datasets import get_matting_dataset_dicts
from .reading import read_foreground

__all__ = [
    "INTERPOLATIONS",
    "RELEASE_CROP_SIZE",
    "Composite",
    "CropAroundUnknown",
    "FitBackground",
    "ForegroundColorJitter",
    "GenerateTrimap",
    "RandomAffine",
    "RandomResize",
    "RandomSecondForeground",
    "fold_into_unit",
    "random_interpolation",
    "release_train_transforms",
]

RELEASE_CROP_SIZE = 512  # the release's crop; its other pixel sizes go with it
INTERPOLATIONS = (cv2.INTER_NEAREST, cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_LANCZOS4)
TRIMAP_BG, TRIMAP_UNKNOWN, TRIMAP_FG = 0, 128, 255
# Alpha within this of 1 (of 0) is definite foreground (background) for the trimap.
_DEFINITE_EPS = 1e-5
_COLOUR_KEYS = ("fg", "bg")
_FOREGROUND_KEYS = ("fg", "alpha", "trimap")  # moved together before the background is fitted
_ALIGNED_KEYS = ("fg", "alpha", "bg", "trimap")  # moved together once it is

Resampler = Callable[[np.ndarray, int], np.ndarray]


def random_interpolation(rng: np.random.Generator) -> int:
    """One of nearest / linear / cubic / Lanczos-4, uniformly (the release's random_interp)."""
    return INTERPOLATIONS[rng.integers(len(INTERPOLATIONS))]


def _resize_to(height: int, width: int) -> Resampler:
    return lambda array, interp: cv2.resize(array, (width, height), interpolation=interp)


def _resample(sample: dict, keys: Sequence[str], rng: np.random.Generator,
              resampler: Resampler) -> None:
    """Apply `resampler` to each present key: trimaps nearest, the rest with a random
    interpolation each; colours clipped to [0, 255]."""
    for key in keys:
        if key not in sample:
            continue
        interp = cv2.INTER_NEAREST if key == "trimap" else random_interpolation(rng)
        out = resampler(sample[key], interp)
        if key in _COLOUR_KEYS:
            np.clip(out, 0.0, 255.0, out=out)
        sample[key] = out


def _check_background_fitted(sample: dict, step: str) -> None:
    if "bg" in sample and sample["bg"].shape[:2] != sample["alpha"].shape:
        raise ValueError(
            f"{step}: the background is {sample['bg'].shape[:2]} but the foreground is "
            f"{sample['alpha'].shape} (HxW); put FitBackground before {step}"
        )


class RandomSecondForeground:
    """With probability `prob`, merge a second foreground of the data set into this one.

    The second foreground (drawn uniformly, possibly the same one) is resized to this one's
    size; alpha = 1 - (1 - a1)(1 - a2) and colour = fg1 a1 + fg2 (1 - a1). Skipped when that
    alpha would be 1 everywhere (nothing left to matte).

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
        second = {"fg": fg2, "alpha": alpha2}
        _resample(second, ("fg", "alpha"), rng, _resize_to(*sample["alpha"].shape))
        a1 = sample["alpha"]
        union = 1.0 - (1.0 - a1) * (1.0 - second["alpha"])
        if not np.any(union < 1.0):
            return sample
        sample["fg"] = sample["fg"] * a1[:, :, None] + second["fg"] * (1.0 - a1[:, :, None])
        sample["alpha"] = union.astype(np.float32)
        return sample


class RandomResize:
    """With probability `prob`, resize the foreground and alpha to `size` (H, W) regardless of
    aspect ratio (the release: 640 x 640 with probability 1/4)."""

    def __init__(self, size: tuple[int, int] = (640, 640), prob: float = 0.25):
        self.size, self.prob = tuple(size), prob

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        if rng.random() < self.prob:
            _resample(sample, _FOREGROUND_KEYS, rng, _resize_to(*self.size))
        return sample


class RandomAffine:
    """Random affine warp of the foreground and alpha about the centre, keeping their size.

    Rotation in [-degrees, degrees] only when the longer side is at least
    `min_rotation_side` (else none); independent x and y scales in `scale`; a shear in
    [-shear, shear] degrees; each axis flipped with probability `flip_prob`. The centre is
    (W/2 + 0.5, H/2 + 0.5) in pixel coordinates, the release's convention; pixels brought in
    from outside are 0 (transparent, black).
    """

    def __init__(self, degrees: float = 30.0, scale: tuple[float, float] = (0.8, 1.25),
                 shear: float = 10.0, flip_prob: float = 0.5, min_rotation_side: int = 1024):
        self.degrees, self.scale, self.shear = degrees, tuple(scale), shear
        self.flip_prob, self.min_rotation_side = flip_prob, min_rotation_side

    def draw(self, height: int, width: int, rng: np.random.Generator) -> dict:
        """Random parameters for an input of this size (angles in degrees, flips as +-1)."""
        rotate = max(height, width) >= self.min_rotation_side
        return {
            "angle": rng.uniform(-self.degrees, self.degrees) if rotate else 0.0,
            "scales": rng.uniform(*self.scale, size=2),
            "shear": rng.uniform(-self.shear, self.shear),
            "flips": np.where(rng.random(2) < self.flip_prob, -1.0, 1.0),
        }

    @staticmethod
    def matrix(height: int, width: int, angle: float, scales: Sequence[float], shear: float,
               flips: Sequence[float]) -> np.ndarray:
        """The 2x3 matrix mapping input to output pixel coordinates: scale and flip each
        axis, then x' = x cos(a + s) - y sin(a + s), y' = x sin(a) + y cos(a)
        (rotation a, shear s), about the centre."""
        a, s = np.deg2rad(angle), np.deg2rad(shear)
        turn = np.array([[np.cos(a + s), -np.sin(a + s)], [np.sin(a), np.cos(a)]])
        linear = turn @ np.diag(np.asarray(scales) * np.asarray(flips))
        centre = np.array([width * 0.5 + 0.5, height * 0.5 + 0.5])
        return np.hstack([linear, (centre - linear @ centre)[:, None]])

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        h, w = sample["alpha"].shape
        m = self.matrix(h, w, **self.draw(h, w, rng))
        _resample(sample, _FOREGROUND_KEYS, rng,
                  lambda array, interp: cv2.warpAffine(array, m, (w, h), flags=interp))
        return sample


def _ellipse(diameter: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (diameter, diameter))


class GenerateTrimap:
    """Trimap from the alpha, drawn at a fixed working resolution.

    The alpha is resized to `work_size` (H, W); its definite foreground (alpha >= 1 - 1e-5)
    and background (alpha <= 1e-5) are eroded with elliptical kernels whose sizes are drawn
    independently from `kernel_sizes` (inclusive); the rest is unknown. The trimap is resized
    back to the sample's size with nearest neighbour, so the band's width scales with the
    image, not with the crop.
    """

    def __init__(self, work_size: tuple[int, int] = (640, 640),
                 kernel_sizes: tuple[int, int] = (1, 29)):
        if not 1 <= kernel_sizes[0] <= kernel_sizes[1]:
            raise ValueError(f"kernel_sizes must be 1 <= low <= high, got {kernel_sizes}")
        self.work_size, self.kernel_sizes = tuple(work_size), tuple(kernel_sizes)

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        h, w = sample["alpha"].shape
        work_h, work_w = self.work_size
        alpha = cv2.resize(sample["alpha"], (work_w, work_h),
                           interpolation=random_interpolation(rng))
        fg_k, bg_k = rng.integers(self.kernel_sizes[0], self.kernel_sizes[1] + 1, size=2)
        fg = cv2.erode((alpha >= 1 - _DEFINITE_EPS).astype(np.uint8), _ellipse(int(fg_k)))
        bg = cv2.erode((alpha <= _DEFINITE_EPS).astype(np.uint8), _ellipse(int(bg_k)))
        trimap = np.full(alpha.shape, TRIMAP_UNKNOWN, np.uint8)
        trimap[fg > 0] = TRIMAP_FG
        trimap[bg > 0] = TRIMAP_BG
        sample["trimap"] = cv2.resize(trimap, (w, h), interpolation=cv2.INTER_NEAREST)
        return sample


class FitBackground:
    """Resize the whole background to the foreground's size (any aspect ratio)."""

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        _resample(sample, ("bg",), rng, _resize_to(*sample["alpha"].shape))
        return sample


class CropAroundUnknown:
    """A `size` x `size` crop centred on a random unknown pixel, as the release picks it.

    A sample with a side <= size is first enlarged by 1.1 size / (its shorter side) until both
    sides exceed size. Candidate centres are the unknown cells of the trimap on a 1/`cell`
    resolution grid, at least size / 2 from the top and left and with the crop inside the
    image; with fewer than `min_candidates` of them the crop is uniformly random; when the
    trimap has no unknown pixel at all the whole sample is resized to size x size instead.
    Needs the trimap and (if present) a background of the foreground's size.
    """

    def __init__(self, size: int = 512, cell: int = 4, min_candidates: int = 10):
        if size < 1 or cell < 1:
            raise ValueError(f"size and cell must be positive, got {size} and {cell}")
        self.size, self.cell, self.min_candidates = size, cell, min_candidates

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        if "trimap" not in sample:
            raise KeyError("CropAroundUnknown needs a trimap; put GenerateTrimap before it")
        _check_background_fitted(sample, "CropAroundUnknown")
        s = self.size
        h, w = sample["alpha"].shape
        if h <= s or w <= s:
            ratio = 1.1 * s / min(h, w)
            while h <= s or w <= s:
                h, w = int(h * ratio), int(w * ratio)
                _resample(sample, _ALIGNED_KEYS, rng, _resize_to(h, w))
        top, left = self._corner(sample["trimap"], rng)
        if not np.any(sample["trimap"] == TRIMAP_UNKNOWN):
            _resample(sample, _ALIGNED_KEYS, rng, _resize_to(s, s))
            return sample
        for key in _ALIGNED_KEYS:
            if key in sample:
                sample[key] = np.ascontiguousarray(sample[key][top:top + s, left:left + s])
        return sample

    def _corner(self, trimap: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
        """Top-left corner: cell (r, c) of the coarse grid, counted from the margin, gives
        corner (cell r, cell c), so the crop's centre is the cell's pixel."""
        s, cell = self.size, self.cell
        h, w = trimap.shape
        coarse = cv2.resize(trimap, (w // cell, h // cell), interpolation=cv2.INTER_NEAREST)
        margin = s // 2 // cell
        window = coarse[margin:(h - s // 2) // cell, margin:(w - s // 2) // cell]
        rows, cols = np.nonzero(window == TRIMAP_UNKNOWN)
        if len(rows) < self.min_candidates:
            return int(rng.integers(h - s + 1)), int(rng.integers(w - s + 1))
        k = rng.integers(len(rows))
        return int(rows[k]) * cell, int(cols[k]) * cell


class ForegroundColorJitter:
    """Random hue shift and saturation / value offsets of the foreground, in HSV.

    The hue moves by a whole number of degrees in [-hue_degrees, hue_degrees); saturation and
    value each move by U(-max_offset, max_offset) (1.1 - m), m being their mean where
    alpha > 0, and are folded back into [0, 1] (absolute value, then 2 - x above 1). Skipped
    when no pixel has alpha > 0.
    """

    def __init__(self, hue_degrees: int = 40, max_offset: float = 0.1):
        self.hue_degrees, self.max_offset = hue_degrees, max_offset

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        visible = sample["alpha"] > 0
        if not visible.any():
            return sample
        hsv = cv2.cvtColor(sample["fg"].astype(np.float32) / np.float32(255.0),
                           cv2.COLOR_RGB2HSV)
        hue_shift = rng.integers(-self.hue_degrees, self.hue_degrees)
        hsv[:, :, 0] = np.remainder(hsv[:, :, 0] + hue_shift, 360.0)
        for channel in (1, 2):
            room = 1.1 - float(hsv[:, :, channel][visible].mean())
            offset = rng.uniform(-self.max_offset, self.max_offset) * room
            hsv[:, :, channel] = fold_into_unit(hsv[:, :, channel] + offset)
        sample["fg"] = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * np.float32(255.0)
        return sample


def fold_into_unit(values: np.ndarray) -> np.ndarray:
    """Reflect values in [-1, 2] back into [0, 1]: |x|, then 2 - x above 1."""
    values = np.abs(values)
    return np.where(values > 1.0, 2.0 - values, values)


class Composite:
    """Clip colours to [0, 255] and alpha to [0, 1], then image = fg alpha + bg (1 - alpha)."""

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        if "bg" not in sample:
            raise KeyError("Composite needs a background 'bg' in the sample")
        _check_background_fitted(sample, "Composite")
        alpha = np.clip(sample["alpha"], 0.0, 1.0).astype(np.float32)
        fg, bg = np.clip(sample["fg"], 0.0, 255.0), np.clip(sample["bg"], 0.0, 255.0)
        a = alpha[:, :, None]
        sample.update(alpha=alpha, fg=fg, bg=bg, image=(fg * a + bg * (1.0 - a)).astype(np.float32))
        return sample


def release_train_transforms(sources: str | Sequence[str] | Sequence[dict] | None,
                             crop_size: int = RELEASE_CROP_SIZE) -> list:
    """The release's training pipeline: second foreground, 640 x 640 resize, affine, trimap,
    background fitting, crop around the unknown region, colour jitter, composition.

    At crop_size 512 every setting is the release's. Its pixel sizes (the 640 x 640 resize
    and trimap grid, the 1024 px rotation threshold) belong to 512 px crops, so they scale
    with crop_size / 512: smaller crops (CPU configs) keep the same geometry relative to the
    crop. `sources` None leaves out the second foreground.
    """
    grid = round(640 * crop_size / RELEASE_CROP_SIZE)
    steps = [] if sources is None else [RandomSecondForeground(sources)]
    return steps + [
        RandomResize(size=(grid, grid)),
        RandomAffine(min_rotation_side=round(1024 * crop_size / RELEASE_CROP_SIZE)),
        GenerateTrimap(work_size=(grid, grid)),
        FitBackground(),
        CropAroundUnknown(crop_size),
        ForegroundColorJitter(),
        Composite(),
    ]
