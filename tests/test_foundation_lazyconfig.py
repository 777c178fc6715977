"""Foundation acceptance: a tiny MEMatte built from the LazyConfig runs forward and backward."""

import torch
from detectron2.config import instantiate
from tiny_models import tiny_cfg


def test_tiny_mematte_from_lazyconfig_runs_forward_and_backward():
    model = instantiate(tiny_cfg().model).train()
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
