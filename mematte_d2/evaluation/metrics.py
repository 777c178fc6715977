"""SAD, MSE, Grad and Conn exactly as the official Deep Image Matting MATLAB evaluation.

Semantics follow compute_sad_loss.m, compute_mse_loss.m, compute_gradient_loss.m (with
gaussgradient.m), compute_connectivity_error.m and the scaling of evaluate.m; docs/metrics.md
states them. Inputs are 8-bit HxW arrays as read from PNG files: the
prediction, the ground-truth alpha and the trimap (codes 0 / 128 / 255, unknown = 128).

Per image: SAD / 1000, MSE unscaled (papers print it x 1e3), Grad / 1000, Conn / 1000.
``region="whole"`` sums over every pixel instead of the unknown region (and MSE divides by
H x W), the variant some papers use on Distinctions-646.

Where MATLAB computes in single precision the per-pixel terms are computed in float32 too;
sums are accumulated in float64 (MATLAB's summation order is not reproducible, so totals may
differ from it in the last float32 digits). SAD and MSE are exact (integer sums).
"""

import math

import cv2
import numpy as np
from scipy import ndimage

from mematte_d2.utils.trimap import describe_stray_codes

REGIONS = ("unknown", "whole")
UNKNOWN_CODE = 128

GRAD_SIGMA = 1.4
# Connectivity thresholds t_k = k / 10, k = 0..10, as the smallest 8-bit value x with
# x / 255 >= t_k (integer comparisons avoid any float rounding at the thresholds).
CONN_STEPS = 10
_CONN_THRESHOLDS_U8 = [(255 * k + CONN_STEPS - 1) // CONN_STEPS for k in range(CONN_STEPS + 1)]
CONN_MIN_DISTANCE = 0.15
_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


def _check_array(name: str, arr) -> None:
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(arr).__name__}")
    if arr.dtype != np.uint8:
        raise TypeError(f"{name} must be uint8 (an 8-bit matte as read from PNG), got {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D HxW array, got shape {arr.shape}")


def region_mask(trimap: np.ndarray, region: str = "unknown") -> np.ndarray | None:
    """Boolean mask of the pixels a metric sums over; None means every pixel."""
    if region not in REGIONS:
        raise ValueError(f"region must be one of {REGIONS}, got {region!r}")
    return trimap == UNKNOWN_CODE if region == "unknown" else None


def check_inputs(pred: np.ndarray, alpha: np.ndarray, trimap: np.ndarray) -> None:
    """Raise a TypeError / ValueError naming the argument that is not a valid 8-bit input."""
    for name, arr in (("pred", pred), ("alpha", alpha), ("trimap", trimap)):
        _check_array(name, arr)
    for name, arr in (("alpha", alpha), ("trimap", trimap)):
        if arr.shape != pred.shape:
            raise ValueError(f"{name} shape {arr.shape} differs from pred shape {pred.shape}")
    stray = describe_stray_codes(trimap)
    if stray:
        raise ValueError(
            f"trimap has values other than 0 / 128 / 255 ({stray}); the official evaluation "
            "treats exactly 128 as unknown, so snap the trimap to these codes first"
        )


def _masked_sum(values: np.ndarray, mask: np.ndarray | None) -> float:
    selected = values if mask is None else values[mask]
    return float(selected.sum(dtype=np.float64))


def _sad(pred: np.ndarray, alpha: np.ndarray, mask: np.ndarray | None) -> float:
    diff = np.abs(pred.astype(np.int32) - alpha.astype(np.int32))
    total = int(diff.sum() if mask is None else diff[mask].sum())
    return total / 255.0 / 1000.0


def _mse(pred: np.ndarray, alpha: np.ndarray, mask: np.ndarray | None) -> float:
    diff = pred.astype(np.int32) - alpha.astype(np.int32)
    sq = diff * diff
    total = int(sq.sum(dtype=np.int64) if mask is None else sq[mask].sum(dtype=np.int64))
    count = pred.size if mask is None else int(np.count_nonzero(mask))
    return total / (255.0 * 255.0 * count) if count else 0.0


def mat2gray(x: np.ndarray) -> np.ndarray:
    """MATLAB mat2gray: rescale to [0, 1] by the image's own min and max (float64).

    A constant image is returned as its values clipped to [0, 1], as MATLAB does.
    """
    lo, hi = float(x.min()), float(x.max())
    if hi == lo:
        return np.clip(x.astype(np.float64), 0.0, 1.0)
    return (x.astype(np.float64) - lo) / (hi - lo)


def gaussian_derivative_factors(sigma: float = GRAD_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """The 1-D factors (g, g') of gaussgradient.m's kernel hx = g(i) g'(j) / ||.||_2.

    Half size h = ceil(sigma sqrt(-2 ln(sqrt(2 pi) sigma 0.01))); both factors are returned
    with unit L2 norm, so np.outer(g, dg) is the normalised hx (rows i, columns j).
    """
    half = math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * 0.01)))
    x = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2.0 * sigma**2)) / (sigma * math.sqrt(2.0 * math.pi))
    dg = -x * g / sigma**2
    return g / np.linalg.norm(g), dg / np.linalg.norm(dg)


def gradient_magnitude(image: np.ndarray, sigma: float = GRAD_SIGMA) -> np.ndarray:
    """|grad| of a float64 image by Gaussian-derivative convolution with replicate borders.

    hx is separable, so the true convolution (kernel flipped: g is even, g' odd) runs as two
    1-D correlations: columns with -g', rows with g for gx; the transpose for gy.
    """
    g, dg = gaussian_derivative_factors(sigma)
    border = cv2.BORDER_REPLICATE
    gx = cv2.sepFilter2D(image, cv2.CV_64F, kernelX=-dg, kernelY=g, borderType=border)
    gy = cv2.sepFilter2D(image, cv2.CV_64F, kernelX=g, kernelY=-dg, borderType=border)
    return np.sqrt(gx * gx + gy * gy)


def _grad(pred: np.ndarray, alpha: np.ndarray, mask: np.ndarray | None) -> float:
    pred_amp = gradient_magnitude(mat2gray(pred)).astype(np.float32)
    alpha_amp = gradient_magnitude(mat2gray(alpha)).astype(np.float32)
    diff = pred_amp - alpha_amp
    return _masked_sum(diff * diff, mask) / 1000.0


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of True pixels (all False if there is none).

    Ties go to the component whose first pixel in column-major order comes first, the
    component MATLAB's bwconncomp + max picks.
    """
    labels, count = ndimage.label(mask, structure=_FOUR_CONNECTED)
    if count == 0:
        return np.zeros(mask.shape, dtype=bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0  # label 0 is the background, never a candidate
    best = np.flatnonzero(sizes == sizes.max())
    if best.size > 1:  # the tied label owning the first column-major pixel of any tied label
        column_major = labels.T.ravel()
        best = column_major[[np.argmax(sizes[column_major] == sizes.max())]]
    return labels == best[0]


def connectivity_levels(pred: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Per pixel, the index k of l_map = t_k = k / 10 of compute_connectivity_error.m.

    A pixel gets t_{i-1} at the first threshold t_i whose largest common component omega
    does not contain it, and t_10 = 1 if it stays in omega through t = 1.
    """
    both = np.minimum(pred, alpha)  # pred >= t and alpha >= t  <=>  min >= t
    levels = np.full(pred.shape, CONN_STEPS, dtype=np.int8)
    pending = np.ones(pred.shape, dtype=bool)
    for k in range(1, CONN_STEPS + 1):
        omega = largest_component(both >= _CONN_THRESHOLDS_U8[k])
        levels[pending & ~omega] = k - 1
        pending &= omega
        if not pending.any():
            break
    return levels


def _conn(pred: np.ndarray, alpha: np.ndarray, mask: np.ndarray | None) -> float:
    lmap = (connectivity_levels(pred, alpha).astype(np.float32) / np.float32(CONN_STEPS))

    def phi(x: np.ndarray) -> np.ndarray:
        d = x.astype(np.float32) / np.float32(255.0) - lmap
        return np.float32(1.0) - d * (d >= CONN_MIN_DISTANCE)

    return _masked_sum(np.abs(phi(pred) - phi(alpha)), mask) / 1000.0


_METRICS = {"SAD": _sad, "MSE": _mse, "Grad": _grad, "Conn": _conn}


def _prepare(pred, alpha, trimap, region: str) -> tuple[np.ndarray | None, bool]:
    """Validate; return the region mask (None: every pixel) and whether it has any pixel."""
    check_inputs(pred, alpha, trimap)
    mask = region_mask(trimap, region)
    return mask, pred.size > 0 and (mask is None or bool(mask.any()))


def compute_matting_metrics(
    pred: np.ndarray, alpha: np.ndarray, trimap: np.ndarray, region: str = "unknown"
) -> dict[str, float]:
    """{"SAD", "MSE", "Grad", "Conn"} of one image, scaled as evaluate.m reports them.

    An image without pixels in the region scores 0 on every metric.
    """
    mask, nonempty = _prepare(pred, alpha, trimap, region)
    if not nonempty:
        return dict.fromkeys(_METRICS, 0.0)
    return {name: fn(pred, alpha, mask) for name, fn in _METRICS.items()}


def compute_sad(
    pred: np.ndarray, alpha: np.ndarray, trimap: np.ndarray, region: str = "unknown"
) -> float:
    """Sum of absolute differences over the region, on the 0-1 scale, / 1000."""
    mask, nonempty = _prepare(pred, alpha, trimap, region)
    return _sad(pred, alpha, mask) if nonempty else 0.0


def compute_mse(
    pred: np.ndarray, alpha: np.ndarray, trimap: np.ndarray, region: str = "unknown"
) -> float:
    """Mean squared difference over the region, on the 0-1 scale (unscaled)."""
    mask, nonempty = _prepare(pred, alpha, trimap, region)
    return _mse(pred, alpha, mask) if nonempty else 0.0


def compute_grad(
    pred: np.ndarray, alpha: np.ndarray, trimap: np.ndarray, region: str = "unknown"
) -> float:
    """Gradient error (mat2gray, Gaussian derivative sigma 1.4) over the region, / 1000."""
    mask, nonempty = _prepare(pred, alpha, trimap, region)
    return _grad(pred, alpha, mask) if nonempty else 0.0


def compute_conn(
    pred: np.ndarray, alpha: np.ndarray, trimap: np.ndarray, region: str = "unknown"
) -> float:
    """Connectivity error (step 0.1) over the region, / 1000."""
    mask, nonempty = _prepare(pred, alpha, trimap, region)
    return _conn(pred, alpha, mask) if nonempty else 0.0
