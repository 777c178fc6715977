"""The project's routers, refiners and policies (and the core alternatives) follow their rules."""

import math

import pytest
import torch
import torch.nn.functional as F
from routing_ablations import (
    DynamicViTRouter,
    GlobalRouter,
    IdentityRefiner,
    LTRMNoECA,
    PerBlockRatio,
    RandomRouting,
)
from tiny_models import tiny_encoder

from mematte_d2.modeling import (
    LTRM,
    ROUTER_REGISTRY,
    ROUTING_POLICY_REGISTRY,
    TOKEN_REFINER_REGISTRY,
    RoutedBlock,
    build_from_registry,
)
from mematte_d2.modeling.routing import (
    BATR,
    FixedTopK,
    LocalGlobalRouter,
    PerImageRatio,
    RoutingBudget,
    ratio_to_count,
)


def log_probs_from_margin(margin):
    """Log-probabilities whose margin ``log p0 - log p1`` is ``margin``."""
    return F.log_softmax(torch.stack([margin / 2, -margin / 2], dim=-1), dim=-1)


@pytest.mark.parametrize(
    "registry,name,cls,arg",
    [
        (ROUTER_REGISTRY, "GlobalRouter", GlobalRouter, 32),
        (ROUTER_REGISTRY, "DynamicViTRouter", DynamicViTRouter, 32),
        (TOKEN_REFINER_REGISTRY, "IdentityRefiner", IdentityRefiner, 32),
        (TOKEN_REFINER_REGISTRY, "LTRMNoECA", LTRMNoECA, 32),
        (ROUTING_POLICY_REGISTRY, "PerBlockRatio", PerBlockRatio, 0.3),
        (ROUTING_POLICY_REGISTRY, "RandomRouting", RandomRouting, 0.3),
    ],
)
def test_project_components_build_by_name(registry, name, cls, arg):
    assert isinstance(build_from_registry(registry, name, arg), cls)


# ----------------------------------------------------------------------------- routers
def test_global_router_is_token_order_independent():
    router = GlobalRouter(32)
    x = torch.randn(2, 30, 32)
    perm = torch.randperm(30)
    out, out_perm = router(x), router(x[:, perm])
    assert out.shape == (2, 30, 2)
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(2, 30))
    torch.testing.assert_close(out_perm, out)  # a permutation changes no score
    torch.testing.assert_close(out, out[:, :1].expand_as(out))  # one score pair per image
    assert not torch.allclose(out[0], out[1])  # but it depends on the image
    policy = BATR(0.25)
    assert torch.equal(policy.eval_decisions(out_perm), policy.eval_decisions(out))


def test_dynamicvit_router_reads_full_width_local_and_global_features():
    router = DynamicViTRouter(32)
    assert router.out_conv[0].in_features == 64  # C local + C pooled, unlike the C/2 + C/2 split
    assert LocalGlobalRouter(32).out_conv[0].in_features == 32
    x = torch.randn(1, 10, 32)
    changed = x.clone()
    changed[0, 9, :8] += 3.0  # changes the image average, hence every token's score
    out, out_changed = router(x), router(changed)
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(1, 10))
    assert not torch.allclose(out[0, :9], out_changed[0, :9])
    assert not torch.allclose(out[0, 0], out[0, 1])  # tokens keep their own scores


@pytest.mark.parametrize("cls", [GlobalRouter, DynamicViTRouter])
def test_routers_reject_bad_widths(cls):
    with pytest.raises(ValueError, match=r"\[B, N, 32\]"):
        cls(32)(torch.randn(1, 4, 16))
    with pytest.raises(ValueError, match="divisible by 4"):
        cls(30)


# ----------------------------------------------------------------------------- refiners
def test_identity_refiner_gives_unrouted_tokens_no_attention_update():
    refiner = IdentityRefiner(32)
    assert not list(refiner.parameters())
    x = torch.randn(2, 3, 4, 32)
    assert torch.equal(refiner(x), torch.zeros_like(x))
    block = RoutedBlock(32, 2, refiner).eval()
    keep = torch.rand(2, 12) < 0.5
    keep[0, 0], keep[1, 1] = True, False
    skipped_attention = x + block.mlp(block.norm2(x))  # the block with no attention sub-layer
    with torch.no_grad():
        out_eval = block.forward_eval(x, keep)
        out_train = block.forward_train(x, keep.float())
    unrouted = ~keep.reshape(2, 3, 4)
    for out in (out_eval, out_train):
        torch.testing.assert_close(out[unrouted], skipped_attention[unrouted])
        assert not torch.allclose(out[~unrouted], skipped_attention[~unrouted])
    with pytest.raises(ValueError, match="IdentityRefiner"):
        refiner(torch.randn(2, 12, 32))


def test_ltrm_without_eca_is_the_ltrm_minus_its_channel_gate():
    ltrm = LTRM(32)
    with torch.no_grad():
        ltrm.eca.conv.weight.normal_()
    ablated = LTRMNoECA(32)
    result = ablated.load_state_dict(ltrm.state_dict(), strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == ["eca.conv.weight"]
    x = torch.randn(2, 5, 6, 32)
    y = ablated(x)
    gated = ltrm.eca(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    torch.testing.assert_close(ltrm(x), y + gated)
    assert not torch.allclose(ltrm(x), y)
    with pytest.raises(ValueError, match="odd kernel_size"):
        LTRMNoECA(32, kernel_size=4)


# ----------------------------------------------------------------------------- policies
@pytest.mark.parametrize("ratio", [0.1, 0.25, 0.5, 1 / 3])
@pytest.mark.parametrize("num_tokens", [7, 16, 37])
def test_fixed_topk_keeps_exactly_ceil_ratio_tokens_per_image(ratio, num_tokens):
    k = math.ceil(ratio * num_tokens - 1e-9)
    assert ratio_to_count(ratio, num_tokens) == k
    lp = log_probs_from_margin(torch.randn(3, num_tokens))
    policy = FixedTopK(ratio)
    assert policy.train_decisions(lp).sum(-1).tolist() == [k] * 3
    assert policy.eval_decisions(lp).sum(-1).tolist() == [k] * 3


def test_per_image_ratio_loss_is_zero_only_when_every_image_hits_its_ratio():
    decisions = torch.zeros(2, 3, 8)  # [B, K, N], rho = 0.25 -> 2 of 8 tokens
    for b, k in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]:
        decisions[b, k, torch.randperm(8)[:2]] = 1.0
    assert PerImageRatio(0.25).loss(decisions).item() == 0.0
    decisions[:, 1] = 0.0
    decisions[0, 1, :4] = 1.0  # block 1: image 0 routes 4 tokens, image 1 none
    assert BATR(0.25).loss(decisions).item() == 0.0  # the batch share is unchanged
    expected = ((0.5 - 0.25) ** 2 + (0.0 - 0.25) ** 2) / 6  # two of six (image, block) pairs
    assert PerImageRatio(0.25).loss(decisions).item() == pytest.approx(expected)


def test_per_block_ratio_loss_is_zero_only_when_every_block_hits_its_ratio():
    decisions = torch.zeros(2, 2, 4)  # [B, K, N], rho = 0.5
    decisions[0, 0] = 1.0  # block 0: image 0 routes all, image 1 none -> block share 0.5
    decisions[:, 1, :2] = 1.0  # block 1: both images route half
    assert PerBlockRatio(0.5).loss(decisions).item() == 0.0
    assert PerImageRatio(0.5).loss(decisions).item() > 0  # images differ in block 0

    unbalanced = torch.zeros(2, 2, 4)
    unbalanced[:, 0] = 1.0  # block 0 routes all, block 1 none: the batch share is still 0.5
    assert BATR(0.5).loss(unbalanced).item() == 0.0
    expected = 2.0 * ((1.0 - 0.5) ** 2 + (0.0 - 0.5) ** 2) / 2
    assert PerBlockRatio(0.5, loss_weight=2.0).loss(unbalanced).item() == pytest.approx(expected)
    assert PerBlockRatio(0.5).loss(torch.zeros(2, 0, 4)).item() == 0.0


def test_per_block_ratio_decides_like_the_core_gumbel_policies():
    lp = log_probs_from_margin(torch.randn(3, 40))
    policy, core = PerBlockRatio(0.25), BATR(0.25)
    for options in ({}, {"keep_ratio": 0.3}, {"keep_ratio": 0.5}):
        assert torch.equal(policy.eval_decisions(lp, **options), core.eval_decisions(lp, **options))
    logits = torch.randn(3, 40, requires_grad=True)
    keep = policy.train_decisions(log_probs_from_margin(logits))
    assert set(keep.detach().unique().tolist()) <= {0.0, 1.0}
    (keep * torch.randn(3, 40)).sum().backward()
    assert logits.grad.abs().sum() > 0


def test_random_routing_keeps_the_expected_share_regardless_of_scores():
    rho, n = 0.25, 20000
    margin = torch.cat([torch.full((4, n // 2), 10.0), torch.full((4, n // 2), -10.0)], dim=1)
    logits = margin.clone().requires_grad_(True)
    policy = RandomRouting(rho)
    train = policy.train_decisions(log_probs_from_margin(logits))
    evaluated = policy.eval_decisions(log_probs_from_margin(margin))
    assert evaluated.dtype == torch.bool
    for keep in (train.detach(), evaluated.float()):
        assert set(keep.unique().tolist()) <= {0.0, 1.0}
        # std of a share over 40000 draws is ~0.002; both halves ignore the opposite margins
        assert abs(keep[:, : n // 2].mean().item() - rho) < 0.01
        assert abs(keep[:, n // 2 :].mean().item() - rho) < 0.01
    train.sum().backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))  # in the graph, zero gradient
    assert policy.loss(train[:, None]).item() == 0.0


def test_random_routing_inference_ratio_and_the_encoder_s_cap():
    lp = log_probs_from_margin(torch.randn(3, 50))
    policy = RandomRouting(0.25)
    assert policy.eval_decisions(lp, keep_ratio=0.3).sum(-1).tolist() == [15] * 3
    first, second = policy.eval_decisions(lp, keep_ratio=0.5), policy.eval_decisions(lp, 0.5)
    assert not torch.equal(first, second)  # fresh draws, not the router's ranking
    encoder = tiny_encoder(policy="RandomRouting").eval()
    with torch.no_grad():
        out = encoder(torch.randn(2, 4, 96, 96), RoutingBudget(keep_ratio=0.5, max_tokens=6))
    assert out["routing"].flatten(2).sum(-1).tolist() == [[6, 6], [6, 6]]  # capped by the encoder


@pytest.mark.parametrize("cls", [PerBlockRatio, RandomRouting])
def test_policies_reject_bad_ratios(cls):
    with pytest.raises(ValueError, match="keep_ratio"):
        cls(1.5)
    with pytest.raises(ValueError, match="keep ratio"):
        cls(0.25).eval_decisions(log_probs_from_margin(torch.randn(1, 8)), keep_ratio=-0.1)
