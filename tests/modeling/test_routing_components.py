"""Routers, token refiners and routing policies, and their registries."""

import math

import pytest
import torch
import torch.nn.functional as F

from mematte_d2.modeling import (
    ROUTER_REGISTRY,
    ROUTING_POLICY_REGISTRY,
    TOKEN_REFINER_REGISTRY,
    build_from_registry,
)
from mematte_d2.modeling.routing import (
    BATR,
    ECA,
    LTRM,
    FixedTopK,
    LocalGlobalRouter,
    LocalRouter,
    MLPRefiner,
    PerImageRatio,
    cap_tokens,
)
from mematte_d2.modeling.routing.refiners import eca_kernel_size


def test_registries_hold_paper_and_alternative_components():
    assert {"LocalGlobalRouter", "LocalRouter"} <= {k for k, _ in ROUTER_REGISTRY}
    assert {"LTRM", "MLPRefiner"} <= {k for k, _ in TOKEN_REFINER_REGISTRY}
    assert {"BATR", "PerImageRatio", "FixedTopK"} <= {k for k, _ in ROUTING_POLICY_REGISTRY}
    assert isinstance(build_from_registry(ROUTER_REGISTRY, "LocalRouter", 32), LocalRouter)
    assert isinstance(build_from_registry(TOKEN_REFINER_REGISTRY, "MLPRefiner", 32), MLPRefiner)
    policy = build_from_registry(ROUTING_POLICY_REGISTRY, "PerImageRatio", 0.4)
    assert isinstance(policy, PerImageRatio) and policy.keep_ratio == 0.4


def test_unknown_name_error_lists_choices():
    with pytest.raises(KeyError, match="registered choices: .*LTRM.*MLPRefiner"):
        build_from_registry(TOKEN_REFINER_REGISTRY, "ltrm", 32)


@pytest.mark.parametrize("channels,kernel", [(384, 5), (768, 5), (64, 3), (32, 3)])
def test_eca_kernel_size(channels, kernel):
    assert eca_kernel_size(channels) == kernel
    assert ECA(channels).conv.weight.shape == (1, 1, kernel)


def test_ltrm_matches_its_definition():
    ltrm = LTRM(32)
    with torch.no_grad():
        ltrm.eca.conv.weight.normal_()
    x = torch.randn(2, 5, 6, 32)
    y = F.gelu(ltrm.fc1(x)).permute(0, 3, 1, 2)
    y = F.gelu(F.conv2d(y, ltrm.dwconv.weight, ltrm.dwconv.bias, padding=2, groups=64))
    y = ltrm.fc2(y.permute(0, 2, 3, 1))
    pooled = y.mean(dim=(1, 2))  # [B, C]
    gates = torch.sigmoid(F.conv1d(pooled[:, None], ltrm.eca.conv.weight, padding=1))[:, 0]
    expected = y + y * gates[:, None, None, :]
    torch.testing.assert_close(ltrm(x), expected, atol=1e-5, rtol=1e-5)


def test_local_global_router_uses_image_context_and_local_router_does_not():
    x = torch.randn(1, 10, 32)
    changed = x.clone()
    changed[0, 9, :8] += 3.0  # not a constant shift: the LayerNorm would remove that
    for cls, context in ((LocalGlobalRouter, True), (LocalRouter, False)):
        router = cls(32)
        out, out_changed = router(x), router(changed)
        assert out.shape == (1, 10, 2)
        torch.testing.assert_close(out.exp().sum(-1), torch.ones(1, 10))
        assert torch.allclose(out[0, :9], out_changed[0, :9]) is not context


def test_router_rejects_wrong_width():
    with pytest.raises(ValueError, match=r"\[B, N, 32\]"):
        LocalGlobalRouter(32)(torch.randn(1, 4, 16))


def log_probs_from_margin(margin):
    return F.log_softmax(torch.stack([margin / 2, -margin / 2], dim=-1), dim=-1)


def test_gumbel_policies_use_argmax_at_inference_and_never_cap():
    margin = torch.tensor([[3.0, -1.0, 2.0, 0.5, -2.0, 4.0], [-1.0, -2.0, -0.5, 1.0, -3.0, -4.0]])
    lp = log_probs_from_margin(margin)
    for policy in (BATR(0.25), PerImageRatio(0.25)):
        keep = policy.eval_decisions(lp)
        assert keep.dtype == torch.bool
        assert torch.equal(keep, margin > 0)
        with pytest.raises(TypeError, match="max_tokens"):  # the encoder alone caps tokens
            policy.eval_decisions(lp, max_tokens=2)
        ratio = policy.eval_decisions(lp, keep_ratio=0.5)
        assert ratio.sum(-1).tolist() == [3, 3]
        assert torch.equal(ratio[1], torch.tensor([True, False, True, True, False, False]))


def test_cap_tokens_validates_and_never_adds_tokens():
    keep = torch.tensor([[True, False, True]])
    margin = torch.tensor([[1.0, 5.0, 2.0]])
    assert torch.equal(cap_tokens(keep, margin, 1), torch.tensor([[False, False, True]]))
    assert torch.equal(cap_tokens(keep, margin, None), keep)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="max_tokens must be None or a positive int"):
            cap_tokens(keep, margin, bad)


def test_gumbel_training_decisions_are_hard_with_gradients():
    logits = torch.randn(4, 50, requires_grad=True)
    lp = log_probs_from_margin(logits)
    keep = BATR(0.25).train_decisions(lp)
    assert set(keep.detach().unique().tolist()) <= {0.0, 1.0}
    (keep * torch.randn(4, 50)).sum().backward()
    assert logits.grad.abs().sum() > 0


def test_batr_and_per_image_losses():
    decisions = torch.zeros(2, 3, 4)  # [B, K, N]
    decisions[0] = 1.0
    assert BATR(0.25, loss_weight=2.0).loss(decisions).item() == pytest.approx(2 * 0.25**2)
    # per image: shares 1.0 and 0.0 -> mean of 0.75^2 and 0.25^2
    expected = (0.75**2 + 0.25**2) / 2
    assert PerImageRatio(0.25).loss(decisions).item() == pytest.approx(expected)
    assert FixedTopK(0.25).loss(decisions).item() == 0.0


def test_fixed_topk_training_decisions_pick_largest_margins_with_gradients():
    margin = torch.randn(3, 37, requires_grad=True)
    keep = FixedTopK(0.2).train_decisions(log_probs_from_margin(margin))
    k = math.ceil(0.2 * 37)
    assert (keep.detach().sum(-1) == k).all()
    for b in range(3):
        chosen = keep[b].detach().bool()
        assert margin[b][chosen].min() > margin[b][~chosen].max()
    keep.sum().backward()
    assert margin.grad.abs().sum() > 0


def test_policy_rejects_bad_keep_ratio():
    with pytest.raises(ValueError, match="keep_ratio"):
        BATR(-0.1)
