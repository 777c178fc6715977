"""Matting losses against independent numpy / scipy formulas; finite on degenerate trimaps."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from mematte_d2.modeling.losses import (
    MattingCriterion,
    distillation_loss,
    gradient_penalty_loss,
    laplacian_loss,
    region_l1_loss,
)


def _trimap(size=64):
    trimap = torch.zeros(2, 1, size, size)
    trimap[..., size // 4 : 3 * size // 4, size // 4 :] = 1.0
    trimap[..., size // 4 - 3 : size // 4 + 3, :] = 0.5
    return trimap


def test_region_l1_is_the_region_mean_on_512_crops():
    pred, gt = torch.rand(2, 1, 512, 512), torch.rand(2, 1, 512, 512)
    region = (torch.rand(2, 1, 512, 512) > 0.7).float()
    expected = (pred - gt).abs()[region.bool()].mean()
    torch.testing.assert_close(region_l1_loss(pred, gt, region), expected)


def _np_laplacian_loss(pred, gt, levels=5):
    kernel = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0

    def pyramid(img):
        out, cur = [], img
        for _ in range(levels):
            down = ndimage.correlate(cur, kernel, mode="mirror")[::2, ::2]
            up = np.zeros_like(cur)
            up[::2, ::2] = 4 * down
            out.append(cur - ndimage.correlate(up, kernel, mode="mirror"))
            cur = down
        return out

    return (
        sum(2**i * np.abs(p - g).mean() for i, (p, g) in enumerate(zip(pyramid(pred), pyramid(gt))))
        / levels
    )


def test_laplacian_loss_matches_scipy_reference():
    pred, gt = (
        torch.rand(1, 1, 64, 96, dtype=torch.float64),
        torch.rand(1, 1, 64, 96, dtype=torch.float64),
    )
    expected = _np_laplacian_loss(pred[0, 0].numpy(), gt[0, 0].numpy())
    assert laplacian_loss(pred, gt).item() == pytest.approx(expected, rel=1e-9)


def test_laplacian_loss_ignores_constant_offsets_but_not_detail():
    gt = torch.rand(1, 1, 64, 64)
    assert laplacian_loss(gt + 0.3, gt).item() == pytest.approx(0.0, abs=1e-5)
    assert laplacian_loss(gt.flip(-1), gt).item() > 1e-2


def test_gradient_penalty_matches_scipy_sobel():
    pred, gt = (
        torch.rand(2, 1, 40, 48, dtype=torch.float64),
        torch.rand(2, 1, 40, 48, dtype=torch.float64),
    )
    region = (torch.rand(2, 1, 40, 48) > 0.5).double()
    p, g, m = pred.numpy(), gt.numpy(), region.numpy()
    terms = 0.0
    for axis in (-1, -2):  # scipy smooths along every other axis, so filter image by image
        sp = np.stack([ndimage.sobel(img, axis=axis, mode="constant") for img in p[:, 0]])[:, None]
        sg = np.stack([ndimage.sobel(img, axis=axis, mode="constant") for img in g[:, 0]])[:, None]
        terms += np.abs((sp - sg) * m).mean() + 0.01 * np.abs(sp * m).mean()
    expected = terms * 2 * 512 * 512 / m.sum()
    assert gradient_penalty_loss(pred, gt, region).item() == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("fill", [0.5, 0.0, 1.0])
def test_criterion_is_finite_when_a_region_is_empty(fill):
    """fill 0.5: no known pixels; 0 / 1: no unknown pixels."""
    pred = torch.rand(2, 1, 32, 32, requires_grad=True)
    losses = MattingCriterion()(pred, torch.rand(2, 1, 32, 32), torch.full((2, 1, 32, 32), fill))
    assert set(losses) == set(MattingCriterion.LOSSES)
    total = sum(losses.values())
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(pred.grad).all()
    empty = "loss_known_l1" if fill == 0.5 else "loss_unknown_l1"
    assert losses[empty].item() == 0.0


def test_criterion_handles_one_pixel_band_and_tiny_images():
    trimap = torch.zeros(1, 1, 20, 20)
    trimap[..., 10, :] = 0.5
    losses = MattingCriterion()(torch.rand(1, 1, 20, 20), torch.rand(1, 1, 20, 20), trimap)
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_laplacian"] > 0 and losses["loss_unknown_l1"] > 0


def test_criterion_weights_selection_and_errors():
    pred, gt, trimap = torch.rand(2, 1, 64, 64), torch.rand(2, 1, 64, 64), _trimap()
    full = MattingCriterion()(pred, gt, trimap)
    some = MattingCriterion(losses=("loss_grad",), weights={"loss_grad": 2.0})(pred, gt, trimap)
    assert set(some) == {"loss_grad"}
    torch.testing.assert_close(some["loss_grad"], 2 * full["loss_grad"])
    with pytest.raises(KeyError, match="loss_unknown_l1"):
        MattingCriterion(losses=("loss_l2",))
    with pytest.raises(ValueError, match="same shape"):
        MattingCriterion()(pred, gt, trimap[..., :32])


def test_distillation_is_mse_and_checks_shapes():
    student = torch.randn(2, 8, 4, 4, requires_grad=True)
    teacher = torch.randn(2, 8, 4, 4, requires_grad=True)
    loss = distillation_loss(student, teacher)
    torch.testing.assert_close(loss, ((student - teacher) ** 2).mean())
    loss.backward()
    assert teacher.grad is None and student.grad is not None
    with pytest.raises(ValueError, match="teacher features"):
        distillation_loss(student, teacher[:, :4])
