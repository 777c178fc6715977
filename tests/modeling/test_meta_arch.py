"""MEMatte meta-architecture on a tiny stand-in encoder: I/O contract, teacher, budget, errors.

The model's own eval forward is the plain path (whole input, whole image decoded); tiled
decoding belongs to ``MattingInference`` (tests/inference/test_engine.py)."""

import math

import pytest
import torch
from detectron2.utils.events import EventStorage
from torch import nn
from torch.nn import functional as F

from mematte_d2.inference import MattingInference
from mematte_d2.modeling.decoder import DetailCapture
from mematte_d2.modeling.meta_arch import MEMatte
from mematte_d2.modeling.routing import RoutingBudget
from mematte_d2.modeling.tiling import tiled_decode
from mematte_d2.utils.events import flush_device_scalars


class _StandInEncoder(nn.Module):
    """Test double following the encoder contract: patch conv + one per-token router.

    Routing is per image (argmax, optional cap / ratio of the call's budget at eval); a token's
    feature depends on its own patch, on its image's mean and on its routing decision only.
    """

    def __init__(self, dim=16, routed_blocks=2, keep_ratio=0.25):
        super().__init__()
        self.patch = nn.Conv2d(4, dim, 16, stride=16)
        self.router = nn.Linear(dim, 2 * routed_blocks)
        self.routed_blocks = routed_blocks
        self.keep_ratio = keep_ratio
        self.max_tokens = None
        self.inference_keep_ratio = None

    def _decide(self, logits, budget):  # logits [B, N, 2]
        margin = logits[..., 0] - logits[..., 1]
        if self.training:
            soft = logits.softmax(-1)[..., 0]
            return (margin > 0).float() + soft - soft.detach()
        keep = margin > 0
        n = margin.shape[1]
        cap = self.max_tokens if budget.max_tokens is None else budget.max_tokens
        ratio = self.inference_keep_ratio if budget.keep_ratio is None else budget.keep_ratio
        if ratio is not None:
            cap = math.ceil(ratio * n)
            keep = torch.ones_like(keep)
        if cap is not None:
            for b in range(margin.shape[0]):
                if keep[b].sum() > cap:
                    chosen = margin[b].masked_fill(~keep[b], -math.inf).topk(cap).indices
                    keep[b] = False
                    keep[b, chosen] = True
        return keep

    def forward(self, x, budget=None):
        budget = budget or RoutingBudget()
        tokens = self.patch(x)  # [B, C, h, w]
        b, c, h, w = tokens.shape
        flat = tokens.flatten(2).transpose(1, 2)  # [B, N, C]
        flat = flat + flat.mean(1, keepdim=True)
        logits = self.router(flat).view(b, h * w, self.routed_blocks, 2).log_softmax(-1)
        decisions = torch.stack(
            [self._decide(logits[:, :, r], budget) for r in range(self.routed_blocks)], 1
        )
        flat = flat * (1 + decisions.float().mean(1, keepdim=True).transpose(1, 2))
        keep_ratios = decisions.float().flatten(2).mean((0, 2))
        return {
            "features": flat.transpose(1, 2).reshape(b, c, h, w),
            "routing": decisions.view(b, self.routed_blocks, h, w),
            "keep_ratios": keep_ratios,
            "routing_loss": (keep_ratios.mean() - self.keep_ratio) ** 2,
        }


class _PlainEncoder(nn.Module):
    """Encoder without routing (ViTMatte-like): features only."""

    def __init__(self, dim=16):
        super().__init__()
        self.patch = nn.Conv2d(4, dim, 16, stride=16)

    def forward(self, x, budget=None):
        return {"features": self.patch(x)}


def _model(teacher=True, **kwargs):
    return MEMatte(
        backbone=_StandInEncoder(),
        teacher_backbone=_PlainEncoder() if teacher else None,
        decoder=DetailCapture(16, convstream_out=(8, 8, 8), fusion_out=(8, 8, 8, 8)),
        **kwargs,
    )


def _sample(h, w, training=False, seed=0):
    gen = torch.Generator().manual_seed(seed)
    trimap = torch.zeros(1, h, w)
    trimap[:, h // 3 :, :] = 255
    trimap[:, h // 3 - 2 : h // 3 + 2, :] = 128
    item = {"image": torch.rand(3, h, w, generator=gen) * 255, "trimap": trimap, "image_id": 7}
    if training:
        item["alpha"] = torch.rand(1, h, w, generator=gen)
    return item


def test_preprocess_normalises_then_zero_pads_to_multiple_of_32():
    model = _model()
    item = _sample(40, 70)
    inputs, trimaps = model.preprocess([item])
    assert inputs.shape == (1, 4, 64, 96)
    mean = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)
    torch.testing.assert_close(inputs[0, :3, :40, :70], (item["image"] - mean) / std)
    assert set(inputs[0, 3, :40, :70].unique().tolist()) == {0.0, 0.5, 1.0}
    assert inputs[0, :, 40:].abs().sum() == 0 and inputs[0, :, :, 70:].abs().sum() == 0
    torch.testing.assert_close(trimaps, inputs[:, 3:])


@pytest.mark.parametrize("size", [(20, 20), (64, 70), (50, 64), (45, 77)])
def test_eval_outputs_follow_the_contract(size):
    model = _model().eval()
    h, w = size
    with torch.no_grad():
        (out,) = model([_sample(h, w)])
    assert out["alpha"].shape == (1, h, w)
    assert 0 <= out["alpha"].min() and out["alpha"].max() <= 1
    assert out["routing"].dtype == torch.bool
    assert out["routing"].shape == (2, math.ceil(h / 32) * 2, math.ceil(w / 32) * 2)
    torch.testing.assert_close(out["keep_ratio"], out["routing"].flatten(1).float().mean(1))


def test_eval_alpha_is_the_raw_whole_image_decoder_output_and_the_engine_tiles():
    model = _model(tile_size=32, tile_context=16, skip_known_tiles=False).eval()
    item = _sample(64, 96)
    with torch.no_grad():
        (out,) = model([item])
        inputs, _ = model.preprocess([item])
        features = model.backbone(inputs)["features"]
        tiled = tiled_decode(model.decoder, features, inputs, tile_size=32, context=16)
        whole = model.decoder(features, inputs)
    (engine_out,) = MattingInference(model)([item])  # the model's settings are its defaults
    torch.testing.assert_close(out["alpha"], whole[0])
    torch.testing.assert_close(engine_out["alpha"], tiled[0])
    assert not torch.allclose(tiled, whole)  # the tile settings are really used
    assert out["alpha"][item["trimap"] == 0].max() > 0  # known regions are not clamped


def test_batched_inference_equals_per_image():
    model = _model().eval()
    items = [_sample(64, 64, seed=1), _sample(40, 70, seed=2), _sample(64, 64, seed=3)]
    with torch.no_grad():
        batched = model(items)
        single = [model([item])[0] for item in items]
    for got, ref in zip(batched, single):
        for key in ("alpha", "routing", "keep_ratio"):
            torch.testing.assert_close(got[key], ref[key], atol=1e-6, rtol=1e-5)


def test_training_losses_distillation_and_frozen_teacher():
    model = _model().train()
    assert not model.teacher_backbone.training
    with EventStorage() as storage:
        losses = model([_sample(64, 64, True), _sample(64, 64, True, seed=1)])
    assert set(losses) == {
        "loss_unknown_l1",
        "loss_known_l1",
        "loss_laplacian",
        "loss_grad",
        "loss_distill",
        "loss_keep_ratio",
    }
    sum(losses.values()).backward()
    assert all(p.grad is None for p in model.teacher_backbone.parameters())
    assert not any(p.requires_grad for p in model.teacher_backbone.parameters())
    assert model.backbone.router.weight.grad.abs().sum() > 0
    assert model.backbone.patch.weight.grad.abs().sum() > 0
    flush_device_scalars(storage)  # the training step does this with its losses
    scalars = storage.latest()
    assert {"keep_ratio/router0", "keep_ratio/router1", "keep_ratio/mean"} <= set(scalars)
    model.eval().train()
    assert model.backbone.training and not model.teacher_backbone.training


def test_training_without_teacher_and_with_mixed_sizes():
    model = _model(teacher=False).train()
    losses = model([_sample(45, 77, True), _sample(64, 64, True, seed=1)])
    assert "loss_distill" not in losses and "loss_keep_ratio" in losses
    assert all(torch.isfinite(v) for v in losses.values())
    single = model([_sample(45, 77, True)])
    assert torch.isfinite(single["loss_unknown_l1"])


def test_degenerate_trimaps_give_finite_losses():
    model = _model().train()
    for value in (0.0, 128.0, 255.0):
        item = _sample(32, 32, True)
        item["trimap"] = torch.full((1, 32, 32), value)
        losses = model([item])
        assert all(torch.isfinite(v) for v in losses.values()), value
    band = _sample(33, 50, True)
    band["trimap"] = torch.zeros(1, 33, 50)
    band["trimap"][:, 16] = 128
    assert all(torch.isfinite(v) for v in model([band]).values())


def test_routing_budget_is_an_argument_of_the_call():
    model = _model().eval()
    model.backbone.max_tokens = 5  # the configured cap
    with torch.no_grad():
        (capped,) = model([_sample(64, 96)], RoutingBudget(max_tokens=2))
        (half,) = model([_sample(64, 96)], RoutingBudget(keep_ratio=0.5))
        (configured,) = model([_sample(64, 96)])
    assert (capped["routing"].flatten(1).sum(1) <= 2).all()
    assert half["routing"].flatten(1).sum(1).tolist() == [12, 12]  # ceil(0.5 * 24 tokens)
    routed = configured["routing"].flatten(1).sum(1).tolist()
    assert max(routed) == 5 and min(routed) >= 1  # the configured cap bites where argmax keeps more
    assert model.backbone.max_tokens == 5 and model.backbone.inference_keep_ratio is None
    with pytest.raises(ValueError, match="keep_ratio"):
        RoutingBudget(keep_ratio=1.5)
    with pytest.raises(ValueError, match="max_tokens"):
        RoutingBudget(max_tokens=0)


def test_routing_budget_is_a_noop_without_routing_and_plain_outputs():
    model = MEMatte(
        backbone=_PlainEncoder(),
        decoder=DetailCapture(16, convstream_out=(8, 8, 8), fusion_out=(8, 8, 8, 8)),
    ).eval()
    with torch.no_grad():
        (out,) = model([_sample(40, 40)], RoutingBudget(max_tokens=10, keep_ratio=0.5))
    assert out["routing"].shape == (0, 4, 4) and out["keep_ratio"].shape == (0,)


def test_bad_inputs_name_the_problem():
    model = _model().eval()
    item = _sample(32, 32)
    with pytest.raises(ValueError, match=r"\['image'\] must be 3xHxW"):
        model([{**item, "image": torch.rand(4, 32, 32)}])
    with pytest.raises(ValueError, match="trimap size"):
        model([{**item, "trimap": torch.zeros(1, 32, 30)}])
    with pytest.raises(ValueError, match=r"\['trimap'\] must be 1xHxW"):
        model([{**item, "trimap": torch.zeros(2, 32, 32)}])
    with pytest.raises(KeyError, match="trimap"):
        model([{"image": item["image"]}])
    with pytest.raises(ValueError, match=r"\['alpha'\] must be a float tensor in \[0, 1\]"):
        model.train()([{**item, "alpha": torch.full((1, 32, 32), 255.0)}])
    with pytest.raises(KeyError, match="alpha"):
        model.train()([item])
    with pytest.raises(TypeError, match="list of dicts"):
        model([])


def test_pixel_statistics_are_not_checkpoint_keys():
    keys = _model().state_dict().keys()
    assert not any(k.startswith(("pixel_mean", "pixel_std")) for k in keys)
    assert next(iter(keys)).startswith("teacher_backbone.")


def test_alpha_padding_crop_uses_only_the_image_area():
    """The bottom/right padding is zero and outputs are cropped back, not resized."""
    model = _model().eval()
    item = _sample(40, 70)
    with torch.no_grad():
        (out,) = model([item])
        inputs, _ = model.preprocess([item])
        full = model.decoder(model.backbone(inputs)["features"], inputs)
    torch.testing.assert_close(out["alpha"], full[0, :, :40, :70])
    assert F.pad(item["image"], (0, 26, 0, 24)).shape[-2:] == inputs.shape[-2:]


def test_width_mismatch_is_reported_at_construction():
    backbone = _StandInEncoder()
    backbone.embed_dim = 16
    decoder = DetailCapture(32, convstream_out=(8, 8, 8), fusion_out=(8, 8, 8, 8))
    with pytest.raises(ValueError, match="decoder.in_chans=32"):
        MEMatte(backbone=backbone, decoder=decoder)
    teacher = _PlainEncoder(dim=8)
    teacher.embed_dim = 8
    with pytest.raises(ValueError, match="teacher_backbone.embed_dim=8"):
        MEMatte(backbone=backbone, teacher_backbone=teacher, decoder=DetailCapture(16))
