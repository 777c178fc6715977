"""Derived config values follow the value they derive from: one override changes them all."""

from pathlib import Path

import pytest
from detectron2.config import LazyConfig, instantiate

from mematte_d2.config import load_config

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


@pytest.mark.parametrize("recipe", ["configs/Composition-1K/mematte_s_topk0.25.py",
                                    "configs/quick_schedules/mematte_tiny_synthetic.py"])
def test_one_override_selects_a_data_set_for_all_its_users(recipe):
    cfg = load_config(REPO / recipe, ["dataloader.train.dataset=mine_train",
                                      "dataloader.test.dataset=mine_test"])
    train = cfg.dataloader.train
    assert train.mapper.dataset_names == train.mapper.transforms.sources == "mine_train"
    assert cfg.dataloader.evaluator.dataset_name == "mine_test"
    cfg = load_config(REPO / recipe, ["dataloader.train.dataset=[a_train,b_train]"])
    assert list(cfg.dataloader.train.mapper.dataset_names) == ["a_train", "b_train"]


def test_aim500_evaluates_on_the_set_it_names():
    cfg = load_config(REPO / "configs/AIM-500/mematte_s_topk0.25_eval.py")
    assert cfg.dataloader.evaluator.dataset_name == cfg.dataloader.test.dataset == "aim500_test"


def test_the_vit_s_layout_is_written_once():
    """ViTMatte-S reads its encoder layout from MEMatte-S's config; no second copy to drift."""
    models = REPO / "configs/common/models"
    assert [p.name for p in sorted(models.glob("*.py"))
            if "window_block_indexes=[" in p.read_text()] == ["mematte_s.py"]
    mematte = LazyConfig.load(str(models / "mematte_s.py")).model
    vitmatte = LazyConfig.load(str(models / "vitmatte_s.py")).model
    for key in ("embed_dim", "num_heads", "depth", "window_size", "window_block_indexes",
                "residual_block_indexes"):
        assert vitmatte.backbone[key] == mematte.backbone[key] == mematte.teacher_backbone[key]
    assert vitmatte.decoder.in_chans == 384
