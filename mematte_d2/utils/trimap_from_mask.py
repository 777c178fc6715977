"""A trimap from a coarse mask: the usual answer to "where do I get a trimap?".

A segmentation output, a hand-painted mask or the alpha channel of an RGBA picture marks the
subject only roughly. Its edge is where the true matte is uncertain, so the trimap makes a band
around that edge unknown: the foreground is eroded by ``erode`` pixels (inner half of the band)
and the background by ``dilate`` pixels (outer half).

Band widths default to a fraction of the image's shorter side (``band_fraction`` = 1%), so a
6000 px photo gets a band ten times as wide as a 600 px one: a mask's edge error, hair and motion
blur all grow with the resolution a picture is taken at, while a fixed pixel width would be
wide at 600 px and too narrow for hair at 6000 px.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

DEFAULT_BAND_FRACTION = 0.01


def mask_to_unit(mask: np.ndarray) -> np.ndarray:
    """A mask as float32 in [0, 1]: bool as is, uint8 / uint16 divided by their maximum code,
    float taken as 0-1 (refused outside it). The scale is decided by the dtype, never by values."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be a 2-D H x W array, got shape {mask.shape}")
    if mask.dtype == np.bool_:
        return mask.astype(np.float32)
    if mask.dtype in (np.uint8, np.uint16):
        if mask.size and mask.max() == 1:
            raise ValueError(f"the {mask.dtype} mask holds only the codes 0 and 1, which read as "
                             f"0 and 1/{np.iinfo(mask.dtype).max}: pass a label mask as bool, "
                             "or scale it to the full range")
        return mask.astype(np.float32) / np.iinfo(mask.dtype).max
    if np.issubdtype(mask.dtype, np.floating):
        unit = mask.astype(np.float32)
        if not np.isfinite(unit).all():
            raise ValueError("a float mask must hold finite values in [0, 1] (it holds NaN/inf)")
        if unit.size and (unit.min() < 0 or unit.max() > 1):
            raise ValueError("a float mask must hold finite values in [0, 1] "
                             f"(got min {unit.min():.4g}, max {unit.max():.4g})")
        return unit
    raise TypeError(f"mask dtype must be bool, uint8, uint16 or float, got {mask.dtype}")


def check_band_fraction(value: float) -> float:
    """A band half-width as a fraction of the shorter side: in (0, 0.5)."""
    if not (math.isfinite(value) and 0 < value < 0.5):
        raise ValueError(f"band_fraction must be in (0, 0.5), got {value}")
    return float(value)


def check_threshold(value: float, name: str = "threshold") -> float:
    """A mask level on the 0-1 scale: in (0, 1]."""
    if not (math.isfinite(value) and 0 < value <= 1):
        raise ValueError(f"{name} must be in (0, 1], got {value}")
    return float(value)


def check_radius(value: int, name: str = "radius") -> int:
    """A band half-width in pixels: an int >= 0."""
    if isinstance(value, bool) or int(value) != value or value < 0:
        raise ValueError(f"{name} must be a non-negative number of pixels, got {value!r}")
    return int(value)


def band_radius(shape: tuple[int, int], band_fraction: float = DEFAULT_BAND_FRACTION) -> int:
    """Pixels of each half of the unknown band: ``band_fraction`` of the shorter side, >= 1."""
    return max(1, round(check_band_fraction(band_fraction) * min(shape)))


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def trimap_from_mask(
    mask: np.ndarray,
    *,
    threshold: float = 0.5,
    soft_low: float | None = None,
    erode: int | None = None,
    dilate: int | None = None,
    band_fraction: float = DEFAULT_BAND_FRACTION,
) -> np.ndarray:
    """Trimap (uint8 0 / 128 / 255) of ``mask`` (see :func:`mask_to_unit` for its dtypes).

    Args:
        threshold: mask values >= this are foreground before erosion.
        soft_low: for soft masks, values <= this are background and values strictly between
            ``soft_low`` and ``threshold`` unknown whatever the band; None: below ``threshold``
            is background.
        erode / dilate: radii in pixels of the elliptical erosion of the foreground and of the
            background (inner and outer half of the band); None: :func:`band_radius`.

    Thin parts of the subject narrower than ``2 * erode`` vanish from the foreground but stay
    inside the dilated subject, so they become unknown (the model decides them), not background;
    background holes narrower than ``2 * dilate`` likewise become unknown.
    """
    unit = mask_to_unit(mask)
    check_threshold(threshold)
    if soft_low is not None and not 0 <= soft_low < threshold:
        raise ValueError(f"soft_low must be in [0, threshold={threshold}), got {soft_low}")
    default = band_radius(unit.shape, band_fraction)
    erode = default if erode is None else check_radius(erode, "erode")
    dilate = default if dilate is None else check_radius(dilate, "dilate")

    foreground = (unit >= threshold).astype(np.uint8)
    background = (unit <= soft_low if soft_low is not None else unit < threshold).astype(np.uint8)
    if erode:
        foreground = cv2.erode(foreground, _disc(erode))
    if dilate:
        background = cv2.erode(background, _disc(dilate))
    trimap = np.full(unit.shape, 128, np.uint8)
    trimap[background.astype(bool)] = 0
    trimap[foreground.astype(bool)] = 255
    return trimap


def describe_trivial_trimap(trimap: np.ndarray) -> str:
    """Why a trimap made by :func:`trimap_from_mask` leaves the model nothing to decide, or "".

    A mask with no foreground (empty) or no background (all ones) has no edge, hence no
    unknown band, and the alpha comes out all 0 or all 1: usually a wrong or blank mask file.
    """
    if not trimap.size or (trimap == 128).any():
        return ""
    if not trimap.any():
        return "it marks no foreground (an empty mask): the alpha will be all 0"
    if (trimap == 255).all():
        return "it marks the whole image as foreground: the alpha will be all 1"
    return "its trimap has no unknown band (erode and dilate 0): the alpha is the mask itself"
