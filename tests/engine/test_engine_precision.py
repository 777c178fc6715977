"""The training loss is float32 under any autocast: bf16 would round the ground truth."""

from types import SimpleNamespace

import torch

from mematte_d2.modeling.losses import MattingCriterion
from mematte_d2.modeling.meta_arch import MEMatte


def _sample(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(2, 1, 32, 32, generator=g)  # fine values: bf16 keeps only 8 bits
    pred = (gt + 0.05 * torch.randn(2, 1, 32, 32, generator=g)).clamp(0, 1)
    trimap = torch.full_like(gt, 0.5)
    trimap[..., :8] = 0.0
    trimap[..., -8:] = 1.0
    return pred, gt, trimap


def test_criterion_under_bf16_autocast_equals_float32():
    pred, gt, trimap = _sample()
    criterion = MattingCriterion()
    half_pred = pred.bfloat16()
    expected = criterion(half_pred.float(), gt, trimap)  # fp32 from the same bf16 prediction
    with torch.autocast("cpu", dtype=torch.bfloat16):  # convolutions run in bf16 here
        mixed = criterion(half_pred, gt, trimap)
    for name, value in expected.items():
        assert mixed[name].dtype == torch.float32, name
        torch.testing.assert_close(mixed[name], value, rtol=1e-6, atol=1e-7, msg=name)


def test_ground_truth_alpha_reaches_the_loss_in_float32():
    pred, gt, trimap = _sample(1)
    owner = SimpleNamespace(criterion=MattingCriterion())
    batch = [{"image": torch.zeros(3, 32, 32), "alpha": gt[i]} for i in range(2)]
    half_pred = pred.bfloat16()
    losses = MEMatte._matting_losses(owner, batch, half_pred, trimap)
    exact = owner.criterion(half_pred.float(), gt, trimap)
    rounded_gt = owner.criterion(half_pred.float(), gt.bfloat16().float(), trimap)
    for name in exact:
        torch.testing.assert_close(losses[name], exact[name], rtol=1e-6, atol=1e-7)
    assert any(not torch.equal(exact[n], rounded_gt[n]) for n in exact)
