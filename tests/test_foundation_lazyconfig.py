"""Foundation acceptance: a tiny MEMatte built from the LazyConfig runs forward and backward."""

from pathlib import Path

import torch
from detectron2.config import LazyConfig, instantiate

CONFIG = Path(__file__).resolve().parents[1] / "configs/common/models/mematte_s.py"
TINY = [
    f"model.{encoder}.{key}={value}"
    for encoder in ("backbone", "teacher_backbone")
    for key, value in [
        ("embed_dim", 32),
        ("num_heads", 2),
        ("depth", 3),
        ("window_size", 4),
        ("window_block_indexes", "[0,1]"),
        ("residual_block_indexes", "[2]"),
    ]
] + ["model.decoder.in_chans=32"]


def test_tiny_mematte_from_lazyconfig_runs_forward_and_backward():
    cfg = LazyConfig.apply_overrides(LazyConfig.load(str(CONFIG)), TINY)
    model = instantiate(cfg.model).train()
    trimap = torch.zeros(1, 48, 40)
    trimap[:, 20:] = 255
    trimap[:, 18:22] = 128
    batch = [{"image": torch.rand(3, 48, 40) * 255, "trimap": trimap, "alpha": trimap / 255}]
    losses = model(batch)
    total = sum(losses.values())
    total.backward()
    assert torch.isfinite(total)
    assert model.backbone.patch_embed.proj.weight.grad is not None
    model.eval()
    with torch.no_grad():
        (out,) = model(batch)
    assert out["alpha"].shape == (1, 48, 40)
