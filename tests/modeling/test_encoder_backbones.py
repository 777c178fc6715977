"""RoutedViT (MEMatte student) and ViTMatteEncoder (teacher / baseline): layout and behaviour."""

import math

import pytest
import torch
from released_layout import released_shapes
from tiny_models import tiny_student, tiny_teacher

from mematte_d2.modeling import (
    BATR,
    LTRM,
    ROUTING_POLICY_REGISTRY,
    FixedTopK,
    LocalGlobalRouter,
    LocalRouter,
    MLPRefiner,
    RoutedViT,
    RoutingPolicy,
    ViTMatteEncoder,
)
from mematte_d2.modeling.routing import RoutingBudget
from mematte_d2.modeling.vit import Block


@pytest.mark.parametrize("variant,dim,heads", [("s", 384, 6), ("b", 768, 12)])
def test_parameter_layout_matches_released_checkpoints(variant, dim, heads):
    with torch.device("meta"):
        student = RoutedViT(embed_dim=dim, num_heads=heads)
        teacher = ViTMatteEncoder(embed_dim=dim, num_heads=heads)
    for module, prefix in ((student, "backbone."), (teacher, "teacher_backbone.")):
        expected = released_shapes(variant, prefix)
        got = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        assert got == expected


def test_registry_names_select_components():
    model = tiny_student(router="LocalRouter", refiner="MLPRefiner", routing_policy="FixedTopK")
    assert all(isinstance(r, LocalRouter) for r in model.routers)
    assert isinstance(model.blocks[1].efficient_block, MLPRefiner)
    assert isinstance(model.routing_policy, FixedTopK)
    default = tiny_student()
    assert isinstance(default.routers[0], LocalGlobalRouter)
    assert isinstance(default.blocks[3].efficient_block, LTRM)
    assert isinstance(default.routing_policy, BATR)
    assert default.routed_block_indexes == (1, 3) and len(default.routers) == 2


@pytest.mark.parametrize(
    "kwarg,name", [("router", "Nope"), ("refiner", "Conv"), ("routing_policy", "Greedy")]
)
def test_unknown_component_name_lists_registered_choices(kwarg, name):
    with pytest.raises(KeyError) as info:
        tiny_student(**{kwarg: name})
    message = str(info.value)
    assert name in message
    expected = {
        "router": ["LocalGlobalRouter", "LocalRouter"],
        "refiner": ["LTRM", "MLPRefiner"],
        "routing_policy": ["BATR", "FixedTopK", "PerImageRatio"],
    }[kwarg]
    assert all(choice in message for choice in expected)


@pytest.mark.parametrize("hw", [(16, 16), (48, 80), (112, 32), (128, 128)])
@pytest.mark.parametrize("training", [True, False])
def test_output_contract_on_odd_sizes(hw, training):
    x = torch.randn(2, 4, *hw)
    h, w = hw[0] // 16, hw[1] // 16
    student = tiny_student().train(training)
    out = student(x)
    assert out["features"].shape == (2, 64, h, w)
    assert out["routing"].shape == (2, 2, h, w)
    assert out["routing"].dtype == (torch.float32 if training else torch.bool)
    assert out["keep_ratios"].shape == (2,)
    torch.testing.assert_close(out["keep_ratios"], out["routing"].float().mean(dim=(0, 2, 3)))
    assert out["routing_loss"].shape == () and torch.isfinite(out["routing_loss"])
    assert torch.isfinite(out["features"]).all()
    teacher = tiny_teacher().train(training)
    out = teacher(x)
    assert out["features"].shape == (2, 64, h, w)
    assert out["routing"].shape == (2, 0, h, w)
    assert out["keep_ratios"].shape == (0,)
    assert float(out["routing_loss"]) == 0.0


def test_bad_inputs_raise_clear_errors():
    student = tiny_student().eval()
    with pytest.raises(ValueError, match="4, H, W"):
        student(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="divisible by the patch size"):
        student(torch.randn(1, 4, 40, 32))
    with pytest.raises(ValueError, match="keep_ratio"):
        tiny_student(keep_ratio=1.5)


def test_batched_inference_equals_per_image_runs():
    student = tiny_student().eval()
    x = torch.randn(3, 4, 96, 112)
    x[1] *= 3.0  # images differ a lot, so routing differs per image
    with torch.no_grad():
        batched = student(x)
        singles = [student(x[i : i + 1]) for i in range(3)]
    routing = torch.cat([s["routing"] for s in singles])
    assert torch.equal(batched["routing"], routing)
    features = torch.cat([s["features"] for s in singles])
    torch.testing.assert_close(batched["features"], features, atol=1e-5, rtol=1e-5)
    # the kept counts really differ between images (otherwise the test would be weak)
    assert len({int(s["routing"].sum()) for s in singles}) > 1


def router_log_probs(model, x):
    """Log-probabilities each router produced during one forward."""
    seen = []
    hooks = [r.register_forward_hook(lambda m, i, o: seen.append(o)) for r in model.routers]
    with torch.no_grad():
        out = model(x)
    for hook in hooks:
        hook.remove()
    return out, seen


def test_token_cap_keeps_the_largest_margin_tokens():
    student = tiny_student().eval()
    x = torch.randn(2, 4, 128, 128)
    uncapped, _ = router_log_probs(student, x)
    counts = uncapped["routing"].flatten(2).sum(-1)
    cap = int(counts.max()) - 3
    assert cap > 0
    student.max_tokens = cap
    out, log_probs = router_log_probs(student, x)
    routing = out["routing"].flatten(2)
    for k, lp in enumerate(log_probs):
        margin = lp[..., 0] - lp[..., 1]
        for b in range(2):
            selected = (margin[b] > 0).sum().item()
            expected = torch.zeros(64, dtype=torch.bool)
            if selected > cap:
                expected[margin[b].topk(cap).indices] = True
            else:
                expected = margin[b] > 0
            assert torch.equal(routing[b, k], expected)
    assert int(routing.sum(-1).max()) == cap


class KeepEverything(RoutingPolicy):
    """A policy that forgets the cap: every token to global attention, ``max_tokens`` ignored."""

    def train_decisions(self, log_probs):
        return torch.ones_like(log_probs[..., 0])

    def eval_decisions(self, log_probs, keep_ratio=None, max_tokens=None):
        return torch.ones_like(log_probs[..., 0], dtype=torch.bool)

    def loss(self, decisions):
        return decisions.new_zeros(())


@pytest.fixture
def keep_everything_policy():
    ROUTING_POLICY_REGISTRY.register(KeepEverything)
    yield "KeepEverything"
    ROUTING_POLICY_REGISTRY._obj_map.pop("KeepEverything")


def test_encoder_enforces_the_cap_on_a_policy_that_ignores_it(keep_everything_policy):
    student = tiny_student(routing_policy=keep_everything_policy).eval()
    x = torch.randn(2, 4, 128, 128)
    uncapped, _ = router_log_probs(student, x)
    assert uncapped["routing"].all()
    student.max_tokens = 5
    out, log_probs = router_log_probs(student, x)
    routing = out["routing"].flatten(2)
    for k, lp in enumerate(log_probs):
        top = (lp[..., 0] - lp[..., 1]).topk(5, dim=-1).indices
        expected = torch.zeros(2, 64, dtype=torch.bool).scatter_(1, top, True)
        assert torch.equal(routing[:, k], expected)  # the 5 largest-margin tokens per image


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "7"])
def test_token_cap_bounds_are_checked_wherever_a_cap_is_set(bad):
    with pytest.raises(ValueError, match="max_tokens must be None or a positive int"):
        tiny_student(max_tokens=bad)
    with pytest.raises(ValueError, match="max_tokens must be None or a positive int"):
        RoutingBudget(max_tokens=bad)
    assert tiny_student(max_tokens=1).max_tokens == 1 and RoutingBudget(1).max_tokens == 1


def test_inference_keep_ratio_keeps_ceil_ratio_tokens_per_image():
    student = tiny_student().eval()
    student.inference_keep_ratio = 0.3
    out, log_probs = router_log_probs(student, torch.randn(2, 4, 80, 96))
    n = 5 * 6
    routing = out["routing"].flatten(2)
    assert (routing.sum(-1) == math.ceil(0.3 * n)).all()
    margin = log_probs[0][..., 0] - log_probs[0][..., 1]
    for b in range(2):
        chosen = margin[b][routing[b, 0]]
        assert chosen.min() >= margin[b][~routing[b, 0]].max()


@pytest.mark.parametrize("training", [True, False])
def test_fixed_topk_policy_keeps_exactly_ceil_ratio_tokens(training):
    student = tiny_student(routing_policy="FixedTopK", keep_ratio=0.3).train(training)
    out = student(torch.randn(2, 4, 80, 112))
    counts = out["routing"].flatten(2).sum(-1)
    assert (counts == math.ceil(0.3 * 35)).all()


def test_router_parameters_get_gradients_through_straight_through_decisions():
    student = tiny_student().train()
    out = student(torch.randn(2, 4, 64, 96))
    out["features"].square().mean().backward()  # no routing loss: only via decisions
    for router in student.routers:
        grads = [p.grad for p in router.parameters()]
        assert all(g is not None for g in grads)
        assert sum(float(g.abs().sum()) for g in grads) > 0
    student.zero_grad()
    student(torch.randn(2, 4, 64, 96))["routing_loss"].backward()
    assert float(student.routers[0].out_conv[4].weight.grad.abs().sum()) > 0


def test_teacher_works_without_gradients():
    teacher = tiny_teacher().train()
    teacher.requires_grad_(False)
    x = torch.randn(1, 4, 64, 64, requires_grad=True)
    with torch.no_grad():
        out = teacher(x)
    assert not out["features"].requires_grad
    out = teacher(x)
    out["features"].sum().backward()
    assert all(p.grad is None for p in teacher.parameters())


def test_pos_embed_and_window_rel_pos_are_used():
    student = tiny_student().eval()
    x = torch.randn(1, 4, 64, 64)
    with torch.no_grad():
        before = student(x)["features"]
        student.blocks[0].attn.rel_pos_h.normal_()
        after_rel = student(x)["features"]
        student.pos_embed.normal_()
        after_pos = student(x)["features"]
    assert not torch.allclose(before, after_rel)
    assert not torch.allclose(after_rel, after_pos)


@pytest.mark.parametrize("training", [True, False])
def test_keeping_every_token_equals_plain_global_attention(training):
    student = tiny_student(routing_policy="FixedTopK", keep_ratio=1.0).train(training)
    x = torch.randn(2, 4, 64, 80)
    with torch.no_grad():
        out = student(x)["features"]
        tokens = student.embed(x)
        for block in student.blocks:
            tokens = Block.forward(block, tokens)  # routed blocks: full attention, no refiner
    assert out.dtype == torch.float32
    # training adds the eps floor of the policy softmax (relative ~1e-6)
    torch.testing.assert_close(out, tokens.permute(0, 3, 1, 2), atol=1e-4, rtol=1e-4)


def test_window_rel_pos_receives_gradients_in_training():
    student = tiny_student().train()
    student(torch.randn(1, 4, 64, 64))["features"].sum().backward()
    assert float(student.blocks[0].attn.rel_pos_h.grad.abs().sum()) > 0
    assert float(student.blocks[1].efficient_block.fc1.weight.grad.abs().sum()) > 0


def test_dense_attention_encoder_equals_fused_and_loads_the_same_weights():
    fused = tiny_teacher().eval()
    dense = tiny_teacher(attention_impl="dense").eval()
    dense.load_state_dict(fused.state_dict())
    x = torch.randn(1, 4, 96, 160)
    with torch.no_grad():
        torch.testing.assert_close(dense(x)["features"], fused(x)["features"],
                                   atol=1e-5, rtol=1e-5)


def test_bad_layouts_raise_clear_errors():
    with pytest.raises(ValueError, match="window_size > 0"):
        tiny_student(window_size=0)
    with pytest.raises(ValueError, match="out of range for depth 4"):
        tiny_teacher(residual_block_indexes=(3, 7))
    with pytest.raises(ValueError, match="divisible by num_heads"):
        tiny_teacher(num_heads=5)


@pytest.mark.parametrize("training", [True, False])
def test_forward_hooks_see_every_block_and_router(training):
    encoder = tiny_student().train(training)
    seen = []
    for name, module in encoder.named_modules():
        if name.startswith(("blocks.", "routers.")) and name.count(".") == 1:
            module.register_forward_hook(lambda m, args, out, name=name: seen.append(name))
    encoder(torch.randn(1, 4, 64, 64))
    # Blocks 1 and 3 are routed (TINY_ENCODER's window blocks are 0 and 2): each follows its router.
    assert seen == ["blocks.0", "routers.0", "blocks.1", "blocks.2", "routers.1", "blocks.3"]
