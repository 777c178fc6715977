"""Every project config loads with LazyConfig, registers once, and builds its variant."""

import sys
from pathlib import Path

import pytest
import torch
from detectron2.config import LazyConfig, instantiate
from tiny_models import tiny_batch

from mematte_d2.modeling import ROUTER_REGISTRY, ROUTING_POLICY_REGISTRY, TOKEN_REFINER_REGISTRY

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
VARIANTS = {
    "baseline": ("LocalGlobalRouter", "LTRM", "BATR"),
    "router_local": ("LocalRouter", "LTRM", "BATR"),
    "router_global": ("GlobalRouter", "LTRM", "BATR"),
    "router_dynamicvit": ("DynamicViTRouter", "LTRM", "BATR"),
    "refiner_identity": ("LocalGlobalRouter", "IdentityRefiner", "BATR"),
    "refiner_mlp": ("LocalGlobalRouter", "MLPRefiner", "BATR"),
    "refiner_ltrm_no_eca": ("LocalGlobalRouter", "LTRMNoECA", "BATR"),
    "policy_per_image": ("LocalGlobalRouter", "LTRM", "PerImageRatio"),
    "policy_per_block": ("LocalGlobalRouter", "LTRM", "PerBlockRatio"),
    "policy_fixed_topk": ("LocalGlobalRouter", "LTRM", "FixedTopK"),
    "policy_random": ("LocalGlobalRouter", "LTRM", "RandomRouting"),
    "example_router": ("ContrastRouter", "LTRM", "BATR"),
}


def test_every_config_is_a_known_variant():
    found = {path.stem for path in CONFIG_DIR.glob("*.py") if not path.stem.startswith("_")}
    assert found == set(VARIANTS)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_config_loads_and_builds_its_variant(variant):
    cfg = LazyConfig.load(str(CONFIG_DIR / f"{variant}.py"))
    assert {"dataloader", "lr_multiplier", "model", "optimizer", "train"} <= set(cfg)
    assert Path(cfg.train.output_dir).name == variant
    router, refiner, policy = VARIANTS[variant]
    backbone = cfg.model.backbone
    assert (backbone.router, backbone.refiner, backbone.routing_policy) == VARIANTS[variant]
    model = instantiate(cfg.model)
    assert all(isinstance(r, ROUTER_REGISTRY.get(router)) for r in model.backbone.routers)
    for index in model.backbone.routed_block_indexes:
        block = model.backbone.blocks[index]
        assert isinstance(block.efficient_block, TOKEN_REFINER_REGISTRY.get(refiner))
    assert isinstance(model.backbone.routing_policy, ROUTING_POLICY_REGISTRY.get(policy))


def test_loading_configs_repeatedly_registers_each_component_once():
    for _ in range(2):
        for variant in ("router_global", "example_router", "policy_random"):
            LazyConfig.load(str(CONFIG_DIR / f"{variant}.py"))
    package = sys.modules["routing_ablations"]
    LazyConfig.load(str(CONFIG_DIR / "refiner_identity.py"))
    assert sys.modules["routing_ablations"] is package
    assert ROUTER_REGISTRY.get("GlobalRouter") is package.GlobalRouter
    assert ROUTER_REGISTRY.get("ContrastRouter") is sys.modules["example_router"].ContrastRouter


def test_example_config_model_trains_a_step():
    model = instantiate(LazyConfig.load(str(CONFIG_DIR / "example_router.py")).model).train()
    losses = model(tiny_batch(size=64, batch=1))
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(p.grad is not None for p in model.backbone.routers.parameters())


def test_configs_load_outside_the_checkout(tmp_path):
    """The variants read the core's schedule from the mematte_d2 package, not by a relative path
    into the checkout's configs/, so a copy of this folder anywhere loads."""
    import shutil

    copy = shutil.copytree(CONFIG_DIR, tmp_path / "a" / "b" / "c" / "configs")
    cfg = LazyConfig.load(str(copy / "baseline.py"))
    assert cfg.model.backbone.embed_dim == 64  # the tiny synthetic schedule's width
    assert cfg.train.max_iter == 600
    assert all("....configs" not in p.read_text() for p in CONFIG_DIR.glob("*.py"))
