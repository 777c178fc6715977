"""Every routing component, core and project, trains a step and infers inside a tiny MEMatte."""

import math

import example_router  # noqa: F401  (registers the how-to example, ContrastRouter)
import pytest
import routing_ablations  # noqa: F401  (registers the project's components)
import torch
from tiny_models import DIM, tiny_batch, tiny_encoder, tiny_model

from mematte_d2.modeling import ROUTER_REGISTRY, ROUTING_POLICY_REGISTRY, TOKEN_REFINER_REGISTRY

ROUTERS = ["LocalGlobalRouter", "LocalRouter", "GlobalRouter", "DynamicViTRouter", "ContrastRouter"]
REFINERS = ["LTRM", "MLPRefiner", "IdentityRefiner", "LTRMNoECA"]
POLICIES = ["BATR", "PerImageRatio", "FixedTopK", "PerBlockRatio", "RandomRouting"]
VARIANTS = (
    [dict(router=name) for name in ROUTERS]
    + [dict(refiner=name) for name in REFINERS[1:]]
    + [dict(policy=name) for name in POLICIES[1:]]
)


def test_every_ablation_component_is_registered():
    assert set(ROUTERS) <= {name for name, _ in ROUTER_REGISTRY}
    assert set(REFINERS) <= {name for name, _ in TOKEN_REFINER_REGISTRY}
    assert set(POLICIES) <= {name for name, _ in ROUTING_POLICY_REGISTRY}


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: next(iter(v.values())))
def test_variant_trains_a_step_and_infers(variant):
    model = tiny_model(**variant).train()
    batch = tiny_batch(size=64)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    losses = model(batch)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()

    routers = model.backbone.routers
    grads = [p.grad for p in routers.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    router_signal = sum(g.abs().sum().item() for g in grads)
    if variant.get("policy") == "RandomRouting":
        assert router_signal == 0.0  # decisions ignore the router
    else:
        assert router_signal > 0.0
    refiner = model.backbone.blocks[2].efficient_block
    assert type(refiner).__name__ == variant.get("refiner", "LTRM")
    refiner_grads = [p.grad for p in refiner.parameters()]
    if variant.get("refiner") == "IdentityRefiner":
        assert refiner_grads == []  # nothing to learn
    else:
        assert refiner_grads and all(g is not None and g.abs().sum() > 0 for g in refiner_grads)
    before = [p.detach().clone() for p in model.backbone.parameters()]
    optimizer.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, model.backbone.parameters()))

    model.eval()
    with torch.no_grad():
        outputs = model(tiny_batch(size=96, batch=2))
    for out in outputs:
        assert out["alpha"].shape == (1, 96, 96)
        assert torch.isfinite(out["alpha"]).all()
        assert out["routing"].shape == (model.backbone.num_routed_blocks, 6, 6)
        assert out["routing"].dtype == torch.bool


@pytest.mark.parametrize("ratio", [0.25, 0.4])
def test_fixed_topk_model_routes_exactly_k_tokens_per_image_and_block(ratio):
    model = tiny_model(policy="FixedTopK", keep_ratio=ratio)
    k = math.ceil(ratio * 36)
    with torch.no_grad():
        outputs = model.eval()(tiny_batch(size=96, batch=2))
        encoded = model.train().backbone(torch.randn(2, 4, 96, 96))
    for out in outputs:
        assert out["routing"].flatten(1).sum(-1).tolist() == [k, k]
    assert encoded["routing"].flatten(2).sum(-1).tolist() == [[k, k], [k, k]]
    assert encoded["routing_loss"].item() == 0.0


def test_random_routing_model_keeps_the_expected_share():
    encoder = tiny_encoder(policy="RandomRouting", keep_ratio=0.3).eval()
    with torch.no_grad():
        routing = encoder(torch.randn(2, 4, 512, 512))["routing"]  # 1024 tokens per image
    share = routing.float().mean().item()  # 4096 draws: std ~0.007
    assert abs(share - 0.3) < 0.03


def test_global_router_model_decisions_ignore_token_order():
    """A global-only router gives every token of an image the same score: the routed blocks'
    decisions stay the same when the tokens reach the routers in another order, and are
    all-or-nothing per image and block under argmax inference."""
    encoder = tiny_encoder(router="GlobalRouter").eval()
    images = torch.randn(3, 4, 64, 64)
    with torch.no_grad():
        routing = encoder(images)["routing"].flatten(2)
    order = torch.randperm(16, generator=torch.Generator().manual_seed(1))
    for router in encoder.routers:
        router.register_forward_pre_hook(lambda module, args: (args[0][:, order],))
    with torch.no_grad():
        shuffled = encoder(images)["routing"].flatten(2)
    assert torch.equal(shuffled, routing)
    assert ((routing.all(-1)) | (~routing.any(-1))).all()


def test_example_router_takes_its_kwargs_from_the_encoder():
    encoder = tiny_encoder(router="ContrastRouter", router_kwargs={"hidden": 8})
    assert encoder.routers[0].score[0].in_features == DIM
    assert encoder.routers[0].score[0].out_features == 8
