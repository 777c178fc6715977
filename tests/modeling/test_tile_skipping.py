"""The inference engine decodes only around unknown trimap pixels: same saved predictions.

With 16 pixels of context (less than the decoder's receptive radius) whole tiles holding only
known pixels are skipped; with 64 a sparse cover of the unknown pixels is decoded."""

import numpy as np
import pytest
import torch
from decoder_samples import small_decoder
from torch import nn

from mematte_d2.config import load_config
from mematte_d2.evaluation.protocols import native_prediction_png, release_prediction_png
from mematte_d2.inference import MattingInference
from mematte_d2.modeling.meta_arch import MEMatte

HEIGHT, WIDTH, TILE = 192, 256, 64  # 3 x 4 tiles of 64 pixels


class _PatchEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(4, 8, 16, stride=16)

    def forward(self, x, budget=None):
        return {"features": self.patch(x)}


def _model(skip: bool, context: int = 16) -> MEMatte:
    torch.manual_seed(0)
    return MEMatte(backbone=_PatchEncoder(), decoder=small_decoder(), tile_size=TILE,
                   tile_context=context, skip_known_tiles=skip).eval()


def _trimap(unknown_boxes, fg_rows=slice(HEIGHT // 2, None)) -> torch.Tensor:
    codes = torch.zeros(1, HEIGHT, WIDTH)
    codes[:, fg_rows] = 255
    for rows, cols in unknown_boxes:
        codes[:, rows, cols] = 128
    return codes


# (unknown boxes, tiles decoded): a band crossing the border between tile rows 0 and 1 over
# the whole width; a square inside tile (1, 2) away from its borders; one pixel at the corner
# of four tiles (owned by tile (2, 2)); nothing unknown.
CASES = [
    ([(slice(60, 68), slice(None))], 8),
    ([(slice(70, 120), slice(140, 180))], 1),
    ([(slice(128, 129), slice(128, 129))], 1),
    ([], 0),
]


def _run(model: MEMatte, item: dict, pixels: list | None = None) -> tuple[dict, int]:
    calls = []
    hook = model.decoder.register_forward_hook(lambda _, args, out: calls.append(out.numel()))
    (out,) = MattingInference(model)([item])
    hook.remove()
    if pixels is not None:
        pixels.append(sum(calls))
    return out, len(calls)


@pytest.mark.parametrize("context", [16, 64])
@pytest.mark.parametrize("boxes, decoded", CASES)
def test_saved_predictions_equal_decoding_every_tile(boxes, decoded, context):
    image = torch.rand(3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(1)) * 255
    trimap = _trimap(boxes)
    item = {"image": image, "trimap": trimap}
    pixels = []
    skipped, calls = _run(_model(True, context), item, pixels)
    every, all_calls = _run(_model(False, context), item, pixels)
    assert all_calls == 12
    if context == 16:
        assert calls == decoded
    else:  # a cover of the unknown pixels: less than every tile, nothing without any
        assert (calls == 0) == (decoded == 0) and pixels[0] < pixels[1]
    pred, ref = skipped["alpha"][0], every["alpha"][0]
    np.testing.assert_array_equal(native_prediction_png(pred, trimap[0]),
                                  native_prediction_png(ref, trimap[0]))
    unknown = trimap[0] == 128
    assert torch.equal(pred[unknown], ref[unknown])
    # Elsewhere the raw output is the decoder's (decoded windows) or the trimap's 0 / 1.
    differs = pred != ref
    assert torch.equal(pred[differs], trimap[0][differs] / 255)
    if decoded < 12:
        assert differs.any()  # skipped areas really hold the trimap, not decoder output


def test_release_protocol_trimap_channel_decides_what_is_known():
    """Codes between 0 and 255 are clamped natively but kept by the release's rule, which only
    sets codes 0 and 255: fed as "trimap_channel", such a tile is decoded."""
    image = torch.rand(3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(2)) * 255
    codes = _trimap([(slice(70, 120), slice(140, 180))])
    codes[:, 10:20, 10:20] = 30  # tile (0, 0): background natively, soft for the release
    item = {"image": image, "trimap": codes, "trimap_channel": codes / 255, "protocol": "release"}
    skipped, calls = _run(_model(True), item)
    every, _ = _run(_model(False), item)
    assert calls == 2
    np.testing.assert_array_equal(release_prediction_png(skipped["alpha"][0], codes[0]),
                                  release_prediction_png(every["alpha"][0], codes[0]))
    native_item = {"image": image, "trimap": codes}
    native, native_calls = _run(_model(True), native_item)
    native_every, _ = _run(_model(False), native_item)
    assert native_calls == 1
    np.testing.assert_array_equal(native_prediction_png(native["alpha"][0], codes[0]),
                                  native_prediction_png(native_every["alpha"][0], codes[0]))


def test_skipping_is_on_by_default_and_a_config_key():
    assert MEMatte(backbone=_PatchEncoder(), decoder=small_decoder()).skip_known_tiles
    assert load_config("configs/common/models/mematte_s.py").model.skip_known_tiles is True
    off = load_config("configs/common/models/mematte_s.py", ["model.skip_known_tiles=False"])
    assert off.model.skip_known_tiles is False


def test_training_decodes_everything():
    model = _model(True).train()
    item = {"image": torch.rand(3, HEIGHT, WIDTH) * 255, "trimap": _trimap([]),
            "alpha": torch.rand(1, HEIGHT, WIDTH)}
    calls = []
    model.decoder.register_forward_hook(lambda *args: calls.append(args[1][1].shape[-2:]))
    model([item])
    assert calls == [torch.Size([HEIGHT, WIDTH])]
