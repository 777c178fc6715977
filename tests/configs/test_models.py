"""LazyConfig model files: released checkpoint layout, command-line overrides, tiny train/infer."""

import math
from pathlib import Path

import pytest
import torch
from detectron2.config import instantiate
from released_layout import released_shapes
from tiny_models import MEMATTE_OPTS

from mematte_d2.config import load_config
from mematte_d2.modeling import (
    BATR,
    LTRM,
    DetailCapture,
    FixedTopK,
    LocalGlobalRouter,
    LocalRouter,
    MEMatte,
    MLPRefiner,
    RoutedViT,
    ViTMatteEncoder,
)
from mematte_d2.modeling.routing import RoutingBudget

ROOT = Path(__file__).resolve().parents[2]


COMP1K_S = "configs/Composition-1K/mematte_s_topk0.25.py"


def _load(rel_path: str, overrides=()):
    return load_config(ROOT / rel_path, list(overrides))


def _build_on_meta(cfg) -> MEMatte:
    with torch.device("meta"):  # layout only: no memory, no initialisation cost
        return instantiate(cfg.model)


def _shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("size", ["s", "b"])
def test_composition1k_configs_match_released_state_dict(size):
    model = _build_on_meta(_load(f"configs/Composition-1K/mematte_{size}_topk0.25.py"))
    assert _shapes(model) == released_shapes(size)
    assert type(model.backbone) is RoutedViT and type(model.teacher_backbone) is ViTMatteEncoder
    assert type(model.decoder) is DetailCapture


@pytest.mark.parametrize("size", ["s", "b"])
def test_vitmatte_configs_match_the_teacher_layout(size):
    """ViTMatte checkpoints = MEMatte's teacher encoder (as ``backbone.*``) + the decoder."""
    model = _build_on_meta(_load(f"configs/common/models/vitmatte_{size}.py"))
    expected = {
        k.replace("teacher_backbone.", "backbone.", 1): v
        for k, v in released_shapes(size).items()
        if k.startswith(("teacher_backbone.", "decoder."))
    }
    assert _shapes(model) == expected
    assert model.teacher_backbone is None


def test_one_line_overrides_change_the_instantiated_model():
    cfg = _load(COMP1K_S, MEMATTE_OPTS)
    default = _build_on_meta(cfg)
    assert type(default.backbone.routers[0]) is LocalGlobalRouter
    assert type(default.backbone.blocks[2].efficient_block) is LTRM
    assert isinstance(default.backbone.routing_policy, BATR)
    overridden = _build_on_meta(
        _load(
            COMP1K_S,
            MEMATTE_OPTS
            + [
                "model.backbone.router=LocalRouter",
                "model.backbone.refiner=MLPRefiner",
                "model.backbone.routing_policy=FixedTopK",
                "model.backbone.keep_ratio=0.5",
                "model.backbone.max_tokens=7",
                "model.teacher_backbone=None",
            ],
        )
    )
    assert type(overridden.backbone.routers[0]) is LocalRouter
    assert type(overridden.backbone.blocks[2].efficient_block) is MLPRefiner
    assert isinstance(overridden.backbone.routing_policy, FixedTopK)
    assert overridden.backbone.routing_policy.keep_ratio == 0.5
    assert overridden.backbone.max_tokens == 7
    assert overridden.teacher_backbone is None
    assert not any(k.startswith("teacher_backbone.") for k in overridden.state_dict())
    assert overridden.backbone.embed_dim == 32 and overridden.decoder.in_chans == 32


@pytest.mark.parametrize("spelling", ["None", "null"])
def test_command_line_teacher_none_removes_the_teacher(spelling):
    cfg = _load(COMP1K_S, [f"model.teacher_backbone={spelling}"])
    assert _build_on_meta(cfg).teacher_backbone is None


def test_bad_overrides_fail_clearly():
    with pytest.raises(KeyError, match="LocalGlobalRouter"):
        _build_on_meta(_load(COMP1K_S, MEMATTE_OPTS + ["model.backbone.router=NoSuchRouter"]))
    with pytest.raises(ValueError, match="decoder.in_chans"):
        _build_on_meta(_load(COMP1K_S, MEMATTE_OPTS + ["model.decoder.in_chans=64"]))


def _sample(h, w, seed):
    gen = torch.Generator().manual_seed(seed)
    trimap = torch.zeros(1, h, w)
    trimap[:, h // 2 :] = 255
    trimap[:, h // 2 - 3 : h // 2 + 3] = 128
    return {
        "image": torch.rand(3, h, w, generator=gen) * 255,
        "trimap": trimap,
        "alpha": torch.rand(1, h, w, generator=gen),
    }


def test_tiny_config_trains_one_step_and_infers():
    model = instantiate(_load(COMP1K_S, MEMATTE_OPTS).model)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = model([_sample(64, 64, 0), _sample(64, 64, 1)])
    assert {"loss_distill", "loss_keep_ratio", "loss_unknown_l1"} <= set(losses)
    sum(losses.values()).backward()
    router_grads = [p.grad for p in model.backbone.routers.parameters()]
    assert all(g is not None for g in router_grads)
    assert sum(g.abs().sum() for g in router_grads) > 0
    assert all(p.grad is None for p in model.teacher_backbone.parameters())
    teacher_before = [p.clone() for p in model.teacher_backbone.parameters()]
    optimizer.step()
    assert all(
        torch.equal(a, b) for a, b in zip(teacher_before, model.teacher_backbone.parameters())
    )
    assert not model.teacher_backbone.training

    model.eval()
    with torch.no_grad():
        outputs = model([_sample(45, 77, 2), _sample(64, 64, 3)])
    assert [tuple(o["alpha"].shape) for o in outputs] == [(1, 45, 77), (1, 64, 64)]
    assert outputs[0]["routing"].shape == (2, 4, 6) and outputs[0]["routing"].dtype == torch.bool
    assert outputs[0]["keep_ratio"].shape == (2,)


def test_real_encoder_batched_inference_equals_per_image_and_budget_caps():
    model = instantiate(_load(COMP1K_S, MEMATTE_OPTS).model).eval()
    items = [_sample(64, 96, 4), _sample(64, 96, 5), _sample(20, 20, 6)]
    with torch.no_grad():
        batched = model(items)
        single = [model([item])[0] for item in items]
        capped = model(items, RoutingBudget(max_tokens=3))
        half = model(items[:1], RoutingBudget(keep_ratio=0.5))
    for got, ref in zip(batched, single):
        torch.testing.assert_close(got["alpha"], ref["alpha"], atol=1e-5, rtol=1e-5)
        assert torch.equal(got["routing"], ref["routing"])
    for out in capped:
        assert (out["routing"].flatten(1).sum(1) <= 3).all()
    assert half[0]["routing"].flatten(1).sum(1).tolist() == [math.ceil(0.5 * 24)] * 2
    assert model.backbone.max_tokens is None and model.backbone.inference_keep_ratio is None


@pytest.mark.parametrize("case", ["all_unknown", "all_foreground", "one_pixel_band"])
def test_real_model_losses_are_finite_on_degenerate_small_inputs(case):
    """20 x 33: smaller than one window and not a multiple of 32 on either side."""
    model = instantiate(_load(COMP1K_S, MEMATTE_OPTS).model).train()
    item = _sample(20, 33, 7)
    if case == "all_unknown":
        item["trimap"] = torch.full((1, 20, 33), 128.0)
    elif case == "all_foreground":
        item["trimap"] = torch.full((1, 20, 33), 255.0)
    else:
        item["trimap"] = torch.zeros(1, 20, 33)
        item["trimap"][:, :, 16] = 128
    losses = model([item])
    total = sum(losses.values())
    total.backward()
    assert torch.isfinite(total)
    grads = [p.grad for p in model.backbone.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
