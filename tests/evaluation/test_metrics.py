"""SAD / MSE / Grad / Conn against hand-computed values and slow references written from
the definitions in docs/metrics.md."""

import math
import warnings
from collections import deque

import numpy as np
import pytest

from mematte_d2.evaluation import (
    compute_conn,
    compute_grad,
    compute_matting_metrics,
    compute_mse,
    compute_sad,
)

U = 128


# ------------------------------------------------------------ slow references (docs/metrics.md)
def ref_mat2gray(x):
    x = x.astype(np.float64)
    return (x - x.min()) / (x.max() - x.min())


def ref_kernel(sigma=1.4):
    h = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * 0.01)))

    def g(x):
        return math.exp(-(x**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))

    def dg(x):
        return -x * g(x) / sigma**2

    hx = np.zeros((2 * h + 1, 2 * h + 1))
    for i in range(2 * h + 1):
        for j in range(2 * h + 1):
            hx[i, j] = g(i - h) * dg(j - h)
    return hx / math.sqrt((hx**2).sum())


def ref_convolve_replicate(image, kernel):
    """out(y, x) = sum_ab k(a, b) I(y - (a - h), x - (b - h)), borders replicated."""
    h = kernel.shape[0] // 2
    pad = np.pad(image, h, mode="edge")
    rows, cols = image.shape
    out = np.zeros_like(image)
    for a in range(2 * h + 1):
        for b in range(2 * h + 1):
            dy, dx = a - h, b - h
            out += kernel[a, b] * pad[h - dy : h - dy + rows, h - dx : h - dx + cols]
    return out


def ref_grad(pred, alpha, trimap, rescale=ref_mat2gray):
    hx = ref_kernel()
    amps = []
    for x in (pred, alpha):
        x = rescale(x)
        gx, gy = ref_convolve_replicate(x, hx), ref_convolve_replicate(x, hx.T)
        amps.append(np.sqrt(gx**2 + gy**2).astype(np.float32))
    err = ((amps[0] - amps[1]) ** 2).astype(np.float64)
    return err[trimap == U].sum() / 1000


def ref_largest_foreground(mask):
    """Largest 4-connected True component by BFS, scanning in MATLAB's column-major order."""
    rows, cols = mask.shape
    seen = np.zeros_like(mask)
    best = []
    for x in range(cols):
        for y in range(rows):
            if not mask[y, x] or seen[y, x]:
                continue
            comp, queue = [], deque([(y, x)])
            seen[y, x] = True
            while queue:
                cy, cx = queue.popleft()
                comp.append((cy, cx))
                for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                    if 0 <= ny < rows and 0 <= nx < cols and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
            if len(comp) > len(best):  # strictly larger: ties keep the first found
                best = comp
    omega = np.zeros_like(mask)
    for y, x in best:
        omega[y, x] = True
    return omega


def ref_conn(pred, alpha, trimap, largest=ref_largest_foreground):
    p, a = pred / 255.0, alpha / 255.0
    t = [k / 10 for k in range(11)]
    lmap = -np.ones(p.shape)
    for i in range(1, 11):
        omega = largest((p >= t[i]) & (a >= t[i]))
        lmap[(lmap == -1) & ~omega] = t[i - 1]
    lmap[lmap == -1] = 1

    def phi(x):
        d = x - lmap
        return 1 - d * (d >= 0.15)

    return np.abs(phi(p) - phi(a))[trimap == U].sum() / 1000


def buggy_largest_with_background(mask):
    """The popular-port bug: argmax of a bincount over all labels, background included."""
    from scipy import ndimage

    labels, _ = ndimage.label(mask)
    return labels == np.argmax(np.bincount(labels.ravel()))


def smooth_case(rng, shape, lo=0, hi=255):
    from scipy import ndimage

    alpha = ndimage.gaussian_filter(rng.random(shape), 2.0)
    alpha = (alpha - alpha.min()) / (alpha.max() - alpha.min())
    pred = np.clip(alpha + 0.15 * ndimage.gaussian_filter(rng.standard_normal(shape), 1.5), 0, 1)
    to_u8 = lambda x: np.round(lo + x * (hi - lo)).astype(np.uint8)  # noqa: E731
    trimap = np.where(alpha > 0.5, 255, 0).astype(np.uint8)
    trimap[(alpha > 0.2) & (alpha < 0.8)] = U
    return to_u8(pred), to_u8(alpha), trimap


# ---------------------------------------------------------------- SAD / MSE
def test_sad_mse_by_hand():
    pred = np.array([[255, 51, 0], [10, 0, 0], [0, 0, 200]], np.uint8)
    alpha = np.array([[0, 0, 0], [10, 255, 0], [0, 0, 0]], np.uint8)
    trimap = np.array([[U, U, 0], [U, 255, 0], [0, 0, 0]], np.uint8)
    # unknown pixels: |255-0| = 255, |51-0| = 51, |10-10| = 0 -> 1.0 + 0.2 + 0.0 on the 0-1 scale
    assert compute_sad(pred, alpha, trimap) == pytest.approx(1.2 / 1000, rel=1e-12)
    assert compute_mse(pred, alpha, trimap) == pytest.approx((1.0 + 0.04) / 3, rel=1e-12)
    # whole image: also |0-255| = 1.0 and |200-0| = 200/255 over all 9 pixels
    whole_sad = (1.2 + 1.0 + 200 / 255) / 1000
    whole_mse = (1.0 + 0.04 + 1.0 + (200 / 255) ** 2) / 9
    assert compute_sad(pred, alpha, trimap, "whole") == pytest.approx(whole_sad, rel=1e-12)
    assert compute_mse(pred, alpha, trimap, "whole") == pytest.approx(whole_mse, rel=1e-12)


# ---------------------------------------------------------------- Grad
def test_grad_kernel_is_the_9x9_unit_norm_gaussian_derivative():
    from mematte_d2.evaluation.metrics import gaussian_derivative_factors

    g, dg = gaussian_derivative_factors(1.4)
    np.testing.assert_allclose(np.outer(g, dg), ref_kernel(1.4), rtol=1e-12, atol=1e-15)
    assert ref_kernel(1.4).shape == (9, 9)  # h = ceil(1.4 * sqrt(-2 ln(0.0351))) = 4


def test_grad_uses_mat2gray_not_division_by_255():
    # alpha spans 0..255 in steps of 51; pred is the same ramp squeezed into 100..200
    ramp = np.array([0, 51, 102, 153, 204, 255, 255, 204, 153, 102, 51, 0], np.uint8)
    alpha = np.tile(ramp, (7, 1))
    pred = (100 + (alpha // 51) * 20).astype(np.uint8)
    trimap = np.full(alpha.shape, U, np.uint8)
    # mat2gray maps both to the same image: no gradient error at all
    assert compute_grad(pred, alpha, trimap) == 0.0
    # x / 255 would see a lower-contrast prediction and report an error
    by_255 = ref_grad(pred, alpha, trimap, rescale=lambda x: x / 255.0)
    assert by_255 > 1e-4
    assert ref_grad(pred, alpha, trimap) == pytest.approx(0.0, abs=1e-12)


def test_grad_of_a_linear_ramp_interior_by_hand():
    width = 30
    alpha = np.tile((np.arange(width) * 8).astype(np.uint8), (20, 1))  # exact ramp 0..232
    pred = np.zeros_like(alpha)
    pred[0, 0] = 1  # mat2gray of pred: a single spike far from the tested pixel
    trimap = np.zeros_like(alpha)
    trimap[10, 15] = U
    # interior of x / (W-1) ramp: gx = -sum_b dg(b) (b - h) / (W - 1) * sum_a g(a); gy = 0
    hx = ref_kernel()
    h = hx.shape[0] // 2
    gx = -sum(hx[a, b] * (b - h) for a in range(9) for b in range(9)) / (width - 1)
    expected = (np.float32(0.0) - np.float32(gx)) ** 2 / 1000
    assert compute_grad(pred, alpha, trimap) == pytest.approx(float(expected), rel=1e-6)


@pytest.mark.parametrize("seed,lo,hi", [(0, 0, 255), (1, 30, 220), (2, 0, 180)])
def test_grad_matches_slow_reference(seed, lo, hi):
    pred, alpha, trimap = smooth_case(np.random.default_rng(seed), (23, 31), lo, hi)
    assert trimap.min() == 0 and (trimap == U).any()
    got = compute_grad(pred, alpha, trimap)
    assert got == pytest.approx(ref_grad(pred, alpha, trimap), rel=1e-6, abs=1e-12)
    assert got > 0


# ---------------------------------------------------------------- Conn
def test_conn_when_background_is_the_largest_component():
    # one foreground pixel shared by pred and alpha; pred has an extra 128 in the corner
    alpha = np.zeros((3, 3), np.uint8)
    alpha[1, 1] = 255
    pred = alpha.copy()
    pred[0, 0] = 128
    trimap = np.full((3, 3), U, np.uint8)
    # omega = {centre} at every threshold: l = 0 elsewhere, 1 at the centre;
    # corner: phi(pred) = 1 - 128/255, phi(alpha) = 1 -> |diff| = 128/255
    expected = 128 / 255 / 1000
    assert compute_conn(pred, alpha, trimap) == pytest.approx(expected, rel=1e-6)
    assert ref_conn(pred, alpha, trimap) == pytest.approx(expected, rel=1e-12)
    # the popular port takes the 8-pixel background as omega and reports 0
    assert ref_conn(pred, alpha, trimap, largest=buggy_largest_with_background) == 0.0


def test_conn_threshold_where_a_pixel_leaves_omega():
    alpha = np.zeros((3, 3), np.uint8)
    pred = alpha.copy()
    alpha[1, 1], pred[1, 1] = 255, 255
    alpha[1, 2], pred[1, 2] = 102, 153  # 0.4 vs 0.6: joined to the centre up to t = 0.4
    trimap = np.full((3, 3), U, np.uint8)
    # the pixel leaves omega at t = 0.5 -> l = 0.4; phi(pred) = 1 - 0.2, phi(alpha) = 1
    assert compute_conn(pred, alpha, trimap) == pytest.approx(0.2 / 1000, rel=1e-6)


def test_conn_tie_goes_to_first_component_in_column_major_order():
    pred = np.zeros((3, 3), np.uint8)
    alpha = np.zeros((3, 3), np.uint8)
    pred[0, 2], alpha[0, 2] = 255, 26  # A: first in row-major order
    pred[2, 0], alpha[2, 0] = 255, 255  # B: first in column-major order (MATLAB)
    trimap = np.full((3, 3), U, np.uint8)
    # t = 0.1: A and B are 1-pixel components; MATLAB keeps B, so A gets l = 0:
    # phi(pred) = 0, phi(alpha) = 1 (d = 0.102 < 0.15) -> 1.0. Keeping A instead gives 0.9.
    assert compute_conn(pred, alpha, trimap) == pytest.approx(1.0 / 1000, rel=1e-6)
    assert ref_conn(pred, alpha, trimap) == pytest.approx(1.0 / 1000, rel=1e-12)


@pytest.mark.parametrize("seed,lo,hi", [(0, 0, 255), (3, 20, 240), (4, 0, 255)])
def test_conn_matches_slow_reference(seed, lo, hi):
    pred, alpha, trimap = smooth_case(np.random.default_rng(seed), (19, 27), lo, hi)
    got = compute_conn(pred, alpha, trimap)
    assert got == pytest.approx(ref_conn(pred, alpha, trimap), rel=1e-5)
    assert got > 0


# ---------------------------------------------------------------- whole / degenerate / errors
def test_no_unknown_pixels_gives_zeros_without_warnings():
    rng = np.random.default_rng(5)
    pred, alpha, _ = smooth_case(rng, (16, 16))
    trimap = np.where(alpha > 127, 255, 0).astype(np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = compute_matting_metrics(pred, alpha, trimap)
        singles = [f(pred, alpha, trimap) for f in (compute_sad, compute_mse, compute_grad,
                                                    compute_conn)]
        whole = compute_matting_metrics(pred, alpha, trimap, region="whole")
    assert result == {"SAD": 0.0, "MSE": 0.0, "Grad": 0.0, "Conn": 0.0}
    assert singles == [0.0] * 4
    assert all(math.isfinite(v) and v > 0 for v in whole.values())


def test_whole_region_equals_unknown_region_on_all_unknown_trimap():
    pred, alpha, trimap = smooth_case(np.random.default_rng(6), (20, 20))
    all_unknown = np.full_like(trimap, U)
    assert compute_matting_metrics(pred, alpha, trimap, "whole") == pytest.approx(
        compute_matting_metrics(pred, alpha, all_unknown)
    )


def test_perfect_prediction_and_dict_keys():
    pred, alpha, trimap = smooth_case(np.random.default_rng(7), (12, 12))
    assert compute_matting_metrics(alpha, alpha, trimap) == {
        "SAD": 0.0, "MSE": 0.0, "Grad": 0.0, "Conn": 0.0
    }


@pytest.mark.parametrize(
    "change,match",
    [
        (lambda p, a, t: (p.astype(np.float32), a, t), "pred must be uint8"),
        (lambda p, a, t: (p, a.astype(np.uint16), t), "alpha must be uint8"),
        (lambda p, a, t: (p, a, t[..., None]), "trimap must be a 2-D"),
        (lambda p, a, t: (p, a[:, :-1], t), "alpha shape"),
        (lambda p, a, t: (p, a, np.where(t == U, 127, t).astype(np.uint8)), "trimap has values"),
        (lambda p, a, t: (p.tolist(), a, t), "pred must be a numpy array"),
    ],
)
def test_bad_inputs_name_the_argument(change, match):
    pred, alpha, trimap = smooth_case(np.random.default_rng(8), (8, 9))
    with pytest.raises((TypeError, ValueError), match=match):
        compute_matting_metrics(*change(pred, alpha, trimap))


def test_bad_region():
    pred, alpha, trimap = smooth_case(np.random.default_rng(9), (8, 8))
    with pytest.raises(ValueError, match="region"):
        compute_sad(pred, alpha, trimap, region="all")
