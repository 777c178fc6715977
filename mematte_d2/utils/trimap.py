"""Trimap encoding and known-region clamping shared by the model, evaluator and predictor."""

import numpy as np
import torch

# Thresholds of the 0-255 trimap encoding: < 85 background, >= 170 foreground, else unknown.
TRIMAP_BG_THRESHOLD = 85
TRIMAP_FG_THRESHOLD = 170
TRIMAP_CODES = (0, 128, 255)


def on_255_scale(trimap: torch.Tensor) -> bool:
    """Whether a trimap holds 0-255 codes (its maximum exceeds 1) rather than 0-1 values."""
    return bool(trimap.numel()) and bool(trimap.max() > 1)


def known_regions(
    trimap: torch.Tensor, scale_255: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(background, foreground) bool masks of a trimap on the 0-255 or the 0-1 scale.

    ``scale_255`` gives the scale (None: ``on_255_scale(trimap)``); a part of a trimap must be
    read on the scale of the whole, which its own values may not reveal.
    """
    if scale_255 is None:
        scale_255 = on_255_scale(trimap)
    if scale_255:
        return trimap < TRIMAP_BG_THRESHOLD, trimap >= TRIMAP_FG_THRESHOLD
    return trimap <= 0.25, trimap >= 0.75


def normalize_trimap(trimap: torch.Tensor, scale_255: bool | None = None) -> torch.Tensor:
    """Map a trimap given as 0/128/255 (or already 0/0.5/1) to 0 / 0.5 / 1 floats.

    A trimap whose maximum exceeds 1 is read on the 0-255 scale (see ``known_regions``).
    """
    background, foreground = known_regions(trimap, scale_255)
    out = torch.full(trimap.shape, 0.5, dtype=torch.float32, device=trimap.device)
    # masked_fill_, not boolean indexing: on CUDA an index_put with a bool mask counts the mask
    # on the host (a device sync); masked_fill_ stays on the device.
    out.masked_fill_(background, 0.0)
    out.masked_fill_(foreground, 1.0)
    return out


def clamp_known_regions_(alpha: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
    """In place: set alpha to 0 / 1 where the trimap (0-255 or 0-1 scale, alpha's shape) says
    background / foreground. Needs no float copy of either map; returns ``alpha``."""
    if alpha.shape != trimap.shape:
        raise ValueError(f"alpha shape {tuple(alpha.shape)} != trimap shape {tuple(trimap.shape)}")
    background, foreground = known_regions(trimap.to(alpha.device))
    alpha.masked_fill_(background, 0.0)
    alpha.masked_fill_(foreground, 1.0)
    return alpha


def clamp_known_regions(alpha: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
    """``clamp_known_regions_`` on a copy of alpha."""
    return clamp_known_regions_(alpha.clone(), trimap)


def trimap_codes(trimap: np.ndarray, snap: bool = True) -> np.ndarray:
    """The 0 / 128 / 255 codes of an HxW trimap whose scale its dtype decides.

    uint8 holds 0-255 codes and float 0-1 values (see :func:`codes_on_255_scale` for what is
    refused). Other values (soft or anti-aliased trimaps) are snapped by :func:`snap_trimap`
    when `snap`, else refused with the values found.
    """
    codes = codes_on_255_scale(trimap)
    if snap:
        return snap_trimap(codes)[0]
    stray = describe_stray_codes(codes)
    if stray:
        raise ValueError(
            f"trimap has values other than 0 / 128 / 255 ({stray}); snap it to these codes "
            "(< 85 background, >= 170 foreground, else unknown), as predict does unless "
            "--strict-trimap and evaluate_folder with --snap-trimap"
        )
    return codes


def codes_on_255_scale(trimap: np.ndarray) -> np.ndarray:
    """An HxW trimap as uint8 on the 0-255 scale, which its dtype decides, not snapped.

    uint8 is taken as 0-255 codes and float as 0-1 values (x 255, rounded); other dtypes are
    refused, as are float values outside [0, 1] and uint8 maps whose non-zero pixels are
    mostly 1 or 2 (a 0/1/2 label map or a 0-1 trimap stored as uint8, which on the 0-255
    scale would be all background; a stray 255 must not hide one).
    """
    trimap = np.asarray(trimap)
    if trimap.dtype == np.uint8:
        _check_not_labels(trimap)
        return trimap
    if np.issubdtype(trimap.dtype, np.floating):
        finite = np.isfinite(trimap).all()
        if trimap.size and not (finite and 0 <= trimap.min() <= trimap.max() <= 1):
            raise ValueError(
                f"trimap is {trimap.dtype}, read on the 0-1 scale, but holds values in "
                f"[{np.nanmin(trimap):g}, {np.nanmax(trimap):g}] (or NaN); a 0-255 trimap "
                "must be uint8"
            )
        return np.round(trimap * 255.0).astype(np.uint8)
    raise TypeError(
        f"trimap dtype must be uint8 (0-255 codes) or float (0-1), got {trimap.dtype}"
    )


def _check_not_labels(codes: np.ndarray) -> None:
    """Refuse a uint8 map whose non-zero pixels are mostly 1 or 2: label values, not codes.

    In a 0-255 trimap, even an anti-aliased one, 1s and 2s are a few edge pixels; in a 0/1/2
    label map they are the unknown and foreground regions, whatever few other values (a
    stroke of 255) it also holds.
    """
    zeros, low = np.count_nonzero(codes == 0), np.count_nonzero(codes <= 2)  # no int64 copy
    labels, other = low - zeros, codes.size - low
    if labels > other:
        top = 2 if (codes == 2).any() else 1
        found = f"only in 0-{top}" if not other else (
            f"mostly in 0-{top} ({labels} pixels of 1 or 2, {other} of other values)"
        )
        raise ValueError(
            f"trimap is uint8 with values {found}: uint8 trimaps are 0-255 codes "
            "(0 background, 128 unknown, 255 foreground), which would make this one all "
            "background; give 0/128/255 codes, or a float trimap in [0, 1]"
        )


def snap_trimap(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Trimap codes on the 0-255 scale snapped to 0 / 128 / 255, and how many pixels changed.

    Trimaps as people draw them (anti-aliased brushes, resized files) hold values between
    the codes. The rule is the authors' (MEMatte's and ViTMatte's preprocessing): below 85
    background, from 170 foreground, else unknown.
    """
    codes = np.asarray(codes)
    if codes.dtype != np.uint8:
        raise TypeError(f"trimap codes must be uint8 on the 0-255 scale, got {codes.dtype}")
    out = np.full(codes.shape, 128, dtype=np.uint8)
    out[codes < TRIMAP_BG_THRESHOLD] = 0
    out[codes >= TRIMAP_FG_THRESHOLD] = 255
    return out, int(np.count_nonzero(out != codes))


def describe_stray_codes(codes: np.ndarray) -> str:
    """The values of a uint8 trimap other than 0 / 128 / 255, as "v1, v2, ... in N pixels"
    (at most 8 values shown), or "" when there are none."""
    counts = np.bincount(codes.ravel(), minlength=256)
    counts[list(TRIMAP_CODES)] = 0
    stray = np.flatnonzero(counts)
    if not stray.size:
        return ""
    shown = ", ".join(str(v) for v in stray[:8]) + (", ..." if stray.size > 8 else "")
    return f"{shown} in {int(counts.sum())} pixels"


def trimap_to_uint8(trimap: np.ndarray) -> np.ndarray:
    """Quantise a trimap of any scale to the 0 / 128 / 255 codes the official evaluation uses."""
    tri = normalize_trimap(torch.from_numpy(np.asarray(trimap, dtype=np.float32))).numpy()
    out = np.full(tri.shape, 128, dtype=np.uint8)
    out[tri == 0] = 0
    out[tri == 1] = 255
    return out
