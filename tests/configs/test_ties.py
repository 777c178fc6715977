"""Derived config values follow the value they derive from: one override changes them all."""

from pathlib import Path

import pytest
from detectron2.config import LazyConfig, instantiate

REPO = Path(__file__).resolve().parents[2]
LAYOUT = {"embed_dim": 64, "num_heads": 2, "depth": 4, "window_size": 4,
          "window_block_indexes": [0, 2], "residual_block_indexes": [1, 3]}


def _load(path: str, overrides: list[str]):
    return LazyConfig.apply_overrides(LazyConfig.load(str(REPO / path)), overrides)


@pytest.mark.parametrize("recipe", ["configs/Composition-1K/mematte_s_topk0.25.py",
                                    "configs/Composition-1K/mematte_b_topk0.25.py"])
def test_student_layout_sets_the_teacher_and_the_decoder(recipe):
    cfg = _load(recipe, [f"model.backbone.{k}={v}".replace(" ", "") for k, v in LAYOUT.items()])
    for key, value in LAYOUT.items():
        assert cfg.model.teacher_backbone[key] == value, key
    assert cfg.model.decoder.in_chans == 64
    model = instantiate(cfg.model)
    assert len(model.teacher_backbone.blocks) == 4
    assert model.teacher_backbone.patch_embed.proj.out_channels == 64
    assert model.decoder.fusion_blks[0].conv.conv.in_channels == 64 + 192


@pytest.mark.parametrize("recipe, width", [("configs/Composition-1K/vitmatte_s.py", 384),
                                           ("configs/Composition-1K/vitmatte_b.py", 768),
                                           ("configs/Composition-1K/mematte_b_topk0.25.py", 768)])
def test_released_widths_reach_the_decoder(recipe, width):
    cfg = LazyConfig.load(str(REPO / recipe))
    assert cfg.model.decoder.in_chans == width
    if cfg.model.teacher_backbone is not None:
        assert cfg.model.teacher_backbone.embed_dim == width


def test_a_teacher_override_still_wins():
    cfg = _load("configs/Composition-1K/mematte_s_topk0.25.py", ["model.teacher_backbone.depth=6"])
    assert cfg.model.teacher_backbone.depth == 6 and cfg.model.backbone.depth == 12


def test_layer_decay_spans_the_student_depth():
    cfg = LazyConfig.load(str(REPO / "configs/quick_schedules/mematte_tiny_synthetic.py"))
    assert cfg.optimizer.params.lr_factor_func.num_layers == cfg.model.backbone.depth == 4
    cfg = _load("configs/Composition-1K/mematte_s_topk0.25.py", ["model.backbone.depth=6"])
    assert cfg.optimizer.params.lr_factor_func.num_layers == 6
