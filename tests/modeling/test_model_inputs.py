"""MattingInputs and crop_region: windows of the model input equal the whole input's, built from
8-bit images; the encoder and decoder read it only in windows."""

import pytest
import torch
from detectron2.config import instantiate

from mematte_d2.inference import MattingInference
from mematte_d2.modeling import vit
from mematte_d2.modeling.model_inputs import MattingInputs
from mematte_d2.modeling.regions import RegionSource, crop_region
from mematte_d2.modeling.routed_vit import RoutedViT
from mematte_d2.modeling.tiling import tiled_decode
from tests.tiny_models import FAST_MEMATTE_OPTS, tiny_cfg

MEAN = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)


def _item(h, w, seed=0, dtype=torch.uint8):
    gen = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (3, h, w), generator=gen, dtype=torch.uint8).to(dtype)
    trimap = torch.full((1, h, w), 128, dtype=torch.uint8)
    trimap[:, : h // 3] = 0
    trimap[:, -h // 3 :] = 255
    return {"image": image, "trimap": trimap}


def _expected_dense(items, padded):
    """The input written out: normalised RGB, 0 / 0.5 / 1 trimap, zero beyond each image."""
    out = torch.zeros(len(items), 4, *padded)
    for i, item in enumerate(items):
        h, w = item["image"].shape[-2:]
        out[i, :3, :h, :w] = (item["image"].float() - MEAN) / STD
        if "trimap_channel" in item:
            out[i, 3:, :h, :w] = item["trimap_channel"]
        else:
            codes = item["trimap"].float()
            out[i, 3:, :h, :w] = (codes >= 170).float() + 0.5 * ((codes >= 85) & (codes < 170))
    return out


def test_dense_input_is_the_normalised_zero_padded_batch():
    items = [_item(40, 70), _item(64, 50, seed=1, dtype=torch.float32)]
    items[1]["trimap_channel"] = torch.rand(1, 64, 50)
    inputs = MattingInputs(items, (64, 96), MEAN, STD)
    assert inputs.shape == (2, 4, 64, 96) and isinstance(inputs, RegionSource)
    assert torch.equal(inputs.dense(), _expected_dense(items, (64, 96)))


@pytest.mark.parametrize("window", [(0, 64, 0, 96), (8, 40, 16, 50), (30, 64, 60, 96),
                                    (32, 100, 64, 130)])
def test_any_window_equals_that_window_of_the_whole_input(window):
    items = [_item(40, 70), _item(64, 50, seed=1)]
    inputs = MattingInputs(items, (64, 96), MEAN, STD)
    y0, y1, x0, x1 = window
    dense = inputs.dense()
    expected = crop_region(dense, *window)
    assert torch.equal(inputs.crop(*window), expected)
    assert torch.equal(inputs.trimap_crop(*window), expected[:, 3:])
    assert torch.equal(inputs.trimap.crop(*window), expected[:, 3:])
    channel = expected[:, 3:]
    assert torch.equal(inputs.unknown.crop(*window), (channel != 0) & (channel != 1))


def test_a_window_reads_the_trimap_on_the_scale_of_the_whole():
    """A 0-255 trimap with value 1 (background) in a window of only 0s and 1s: read on its own
    that window would look like a 0-1 map with foreground."""
    item = _item(32, 32)
    item["trimap"][:, :8, :8] = 1
    inputs = MattingInputs([item], (32, 32), MEAN, STD)
    assert inputs.trimap_crop(0, 8, 0, 8).eq(0).all()
    assert torch.equal(inputs.trimap_crop(0, 8, 0, 8), inputs.dense()[:, 3:, :8, :8])


def test_crop_region_is_a_view_inside_and_zero_beyond_the_edges():
    t = torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).reshape(2, 3, 5, 6)
    inside = crop_region(t, 1, 4, 2, 6)
    assert inside.data_ptr() == t[..., 1:4, 2:6].data_ptr()
    beyond = crop_region(t, 3, 8, 4, 9)
    assert beyond.shape == (2, 3, 5, 5)
    assert torch.equal(beyond[..., :2, :2], t[..., 3:5, 4:6])
    assert beyond[..., 2:, :].abs().sum() == 0 and beyond[..., :, 2:].abs().sum() == 0


def test_patch_embedding_in_strips_equals_the_whole_input(monkeypatch):
    items = [_item(96, 160)]
    inputs = MattingInputs(items, (96, 160), MEAN, STD)
    embed = vit.PatchEmbed(16, 4, 24)
    with torch.no_grad():
        whole = embed(inputs.dense())
        monkeypatch.setattr(vit, "CHUNK_ELEMENTS", 4 * 160 * 32)  # strips of 2 patch rows
        strips = embed(inputs)
    assert torch.equal(strips, whole) and strips.is_contiguous()


class _WindowLog:
    """Records the size of every window read from a MattingInputs."""

    def __init__(self, monkeypatch):
        self.areas = []
        crop = MattingInputs.crop

        def logged(inputs, y0, y1, x0, x1):
            self.areas.append((y1 - y0) * (x1 - x0))
            return crop(inputs, y0, y1, x0, x1)

        monkeypatch.setattr(MattingInputs, "crop", logged)


@pytest.mark.parametrize("skip", [True, False])
def test_inference_reads_the_input_only_in_windows_with_the_same_result(monkeypatch, skip):
    cfg = tiny_cfg("mematte", [*FAST_MEMATTE_OPTS, "model.teacher_backbone=None",
                               f"model.skip_known_tiles={skip}"])
    torch.manual_seed(0)
    model = instantiate(cfg.model).eval()
    assert isinstance(model.backbone, RoutedViT)
    model.tile_context = 16
    item = _item(200, 230)
    with torch.no_grad():
        inputs, trimaps = model.preprocess([item])
        features = model.backbone(inputs)["features"]
        needed = fill = None
        if skip:
            needed, fill = (trimaps != 0) & (trimaps != 1), trimaps
        expected = tiled_decode(model.decoder, features, inputs, 64, 16, needed=needed, fill=fill)
        monkeypatch.setattr(vit, "CHUNK_ELEMENTS", 4 * 256 * 64)
        log = _WindowLog(monkeypatch)
        (out,) = MattingInference(model, tile_size=64)([item])
    assert torch.equal(out["alpha"], expected[0, :, :200, :230])
    padded_area = 224 * 256
    assert log.areas and max(log.areas) <= padded_area // 2
