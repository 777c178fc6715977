"""Tiled decoding: crop geometry of the authors' rule; equality with whole-image decoding."""

import pytest
import torch
from decoder_samples import small_decoder
from torch.nn import functional as F

from mematte_d2.modeling import tiling
from mematte_d2.modeling.decode_cover import plan_cover
from mematte_d2.modeling.tiling import (
    largest_window_side,
    tile_windows,
    tiled_decode,
    window_size_keeps_values,
)


class _RecordingDecoder:
    """Returns the input's pixel-row coordinate + 1000 * call number; records every crop."""

    def __init__(self):
        self.crops = []

    def __call__(self, features, images):
        # Features and image crops must stay aligned: token (i, j) covers pixels (16i.., 16j..).
        torch.testing.assert_close(features[:, 0], images[:, 0, ::16, ::16])
        torch.testing.assert_close(features[:, 1], images[:, 1, ::16, ::16])
        rows, cols = images[0, 0, :, 0], images[0, 1, 0, :]
        self.crops.append((int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1))
        return images[:, :1] + 1000 * (len(self.crops) - 1)


def _coordinate_inputs(height, width):
    ys = torch.arange(height, dtype=torch.float32).view(-1, 1).expand(height, width)
    xs = torch.arange(width, dtype=torch.float32).view(1, -1).expand(height, width)
    images = torch.stack([ys, xs])[None]
    return images[:, :, ::16, ::16].clone(), images


def test_tile_windows_follow_the_rule():
    assert tile_windows(1, 512, 64) == [(0, 512, 0, 512)]
    assert tile_windows(3, 512, 64) == [
        (0, 576, 0, 512),
        (448, 1088, 512, 1024),
        (960, 1536, 1024, 1536),
    ]


def test_tiled_decode_crops_and_writes_only_each_tiles_own_area():
    # 96 x 160 input, 64-pixel tiles and 16 pixels of context: padded to 128 x 192 (2 x 3 tiles).
    # Zero padding also zeroes the coordinates, so pad rows/cols are detected by their zero value.
    features, images = _coordinate_inputs(96, 160)
    decoder = _RecordingDecoder()
    out = tiled_decode(decoder, features, images, tile_size=64, context=16)
    assert out.shape == (1, 1, 96, 160)
    row_crops = [(0, 80), (48, 128)]
    col_crops = [(0, 80), (48, 144), (112, 192)]
    expected = [(r0, r1, c0, c1) for r0, r1 in row_crops for c0, c1 in col_crops]
    # The recorder reads the first/last coordinate of a crop; past the image they are padding (0).
    seen = [(r0, r1 if r1 <= 96 else 1, c0, c1 if c1 <= 160 else 1) for r0, r1, c0, c1 in expected]
    assert decoder.crops == seen
    # Every pixel is written by the tile that owns it, with its own (aligned) value.
    tile_of_row = torch.arange(96) // 64
    tile_of_col = torch.arange(160) // 64
    owner = tile_of_row.view(-1, 1) * 3 + tile_of_col.view(1, -1)
    torch.testing.assert_close(out[0, 0], images[0, 0] + 1000 * owner.float())


def test_tiled_decode_equals_whole_decode_of_tile_padded_input():
    """64 px of context exceed the decoder's receptive field: tiling changes nothing."""
    decoder = small_decoder()
    features, images = torch.randn(2, 8, 20, 14), torch.randn(2, 4, 320, 224)
    with torch.no_grad():
        tiled = tiled_decode(decoder, features, images, tile_size=128, context=64)
        whole = decoder(F.pad(features, (0, 2, 0, 4)), F.pad(images, (0, 32, 0, 64)))
    torch.testing.assert_close(tiled, whole[..., :320, :224], atol=1e-5, rtol=1e-5)


def test_context_matters_at_tile_borders():
    decoder = small_decoder()
    features, images = torch.randn(1, 8, 16, 16), torch.randn(1, 4, 256, 256)
    with torch.no_grad():
        whole = decoder(features, images)
        no_context = tiled_decode(decoder, features, images, tile_size=128, context=0)
    diff = (no_context - whole).abs()
    assert diff[..., 120:136, :].max() > 1e-3  # seam between tile rows
    torch.testing.assert_close(no_context[..., :64, :64], whole[..., :64, :64])  # far from seams


def test_tile_size_zero_is_whole_image_and_bad_settings_are_named():
    decoder = small_decoder()
    features, images = torch.randn(1, 8, 3, 5), torch.randn(1, 4, 48, 80)
    with torch.no_grad():
        torch.testing.assert_close(
            tiled_decode(decoder, features, images, tile_size=0), decoder(features, images)
        )
    with pytest.raises(ValueError, match="tile_size"):
        tiled_decode(decoder, features, images, tile_size=100)
    with pytest.raises(ValueError, match="tile_context"):
        tiled_decode(decoder, features, images, tile_size=64, context=8)
    with pytest.raises(ValueError, match="feature size"):
        tiled_decode(decoder, features, images[..., :32, :], tile_size=64)


def test_tiles_without_needed_pixels_are_filled_not_decoded():
    # 96 x 160, 64-pixel tiles: 2 x 3 tiles. Needed pixels in tile (0, 1) only and on the
    # border pixel shared by tiles (1, 1) / (1, 2) -> (1, 2) owns column 128.
    features, images = _coordinate_inputs(96, 160)
    needed = torch.zeros(1, 1, 96, 160, dtype=torch.bool)
    needed[..., 10, 70] = True
    needed[..., 80, 128] = True
    fill = torch.full((1, 1, 96, 160), -7.0)
    decoder = _RecordingDecoder()
    out = tiled_decode(decoder, features, images, tile_size=64, context=16, needed=needed,
                       fill=fill)
    assert decoder.crops == [(0, 80, 48, 144), (48, 1, 112, 1)]  # tiles (0, 1) and (1, 2)
    decoded = torch.zeros(96, 160, dtype=torch.bool)
    decoded[:64, 64:128] = True
    decoded[64:, 128:] = True
    assert (out[0, 0][~decoded] == -7).all()
    # Decoded tiles hold their own aligned values (the recorder adds 1000 x its call number).
    torch.testing.assert_close(out[0, 0, :64, 64:128], images[0, 0, :64, 64:128])
    torch.testing.assert_close(out[0, 0, 64:, 128:], images[0, 0, 64:, 128:] + 1000)


def test_skipped_tiles_keep_decoded_values_bitwise():
    decoder = small_decoder()
    features, images = torch.randn(2, 8, 12, 10), torch.randn(2, 4, 192, 160)
    needed = torch.zeros(2, 1, 192, 160, dtype=torch.bool)
    needed[0, :, 100:110, 30:40] = True  # tile (1, 0) of image 0; image 1 needs nothing
    with torch.no_grad():
        every = tiled_decode(decoder, features, images, tile_size=64, context=16)
        sparse = tiled_decode(decoder, features, images, tile_size=64, context=16,
                              needed=needed, fill=torch.zeros(2, 1, 192, 160))
    # A tile is decoded for the whole batch when one image needs it.
    assert torch.equal(sparse[..., 64:128, :64], every[..., 64:128, :64])
    sparse[..., 64:128, :64] = 0
    assert not sparse.any()


def test_whole_image_decoding_is_skipped_only_without_needed_pixels():
    decoder = small_decoder()
    features, images = torch.randn(1, 8, 3, 5), torch.randn(1, 4, 48, 80)
    fill = torch.rand(1, 1, 48, 80)
    nothing = torch.zeros(1, 1, 48, 80, dtype=torch.bool)
    with torch.no_grad():
        assert torch.equal(tiled_decode(decoder, features, images, 0, needed=nothing, fill=fill),
                           fill)
        one = nothing.clone()
        one[..., 47, 79] = True
        torch.testing.assert_close(tiled_decode(decoder, features, images, 0, needed=one,
                                                fill=fill), decoder(features, images))


def test_bad_skip_inputs_are_named():
    decoder = small_decoder()
    features, images = torch.randn(1, 8, 4, 4), torch.randn(1, 4, 64, 64)
    mask = torch.ones(1, 1, 64, 64, dtype=torch.bool)
    with pytest.raises(ValueError, match="both needed and fill"):
        tiled_decode(decoder, features, images, 32, 16, needed=mask)
    with pytest.raises(ValueError, match="fill must have shape"):
        tiled_decode(decoder, features, images, 32, 16, needed=mask, fill=torch.zeros(64, 64))
    with pytest.raises(ValueError, match="bool mask"):
        tiled_decode(decoder, features, images, 32, 16, needed=mask.float(), fill=mask.float())


class _SeesSixteenPixels(_RecordingDecoder):
    receptive_radius = 16


def test_needed_pixels_are_decoded_in_a_sparse_cover_and_the_rest_filled():
    # A decoder that sees 16 pixels, 16 pixels of context: windows of the needed cells only.
    features, images = _coordinate_inputs(96, 160)
    needed = torch.zeros(1, 1, 96, 160, dtype=torch.bool)
    needed[..., 10, 70] = True
    needed[..., 80:83, 100:150] = True
    fill = torch.full((1, 1, 96, 160), -7.0)
    decoder = _SeesSixteenPixels()
    out = tiled_decode(decoder, features, images, tile_size=64, context=16, needed=needed,
                       fill=fill)
    cells = needed[0, 0].reshape(6, 16, 10, 16).any(3).any(1).numpy()
    # Crops reach 16 pixels past the image, and no farther than the largest tile crop.
    windows = plan_cover(cells, 16, 4, 16, (112, 176), (80, 96))
    decoded_area = sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in (w.crop for w in windows))
    # Less than the three tiles holding needed pixels, (0, 1), (1, 1) and (1, 2), with context.
    assert decoded_area < 80 * 96 + 64 * 96 + 64 * 64
    assert decoder.crops == [(y0, y1 if y1 <= 96 else 1, x0, x1 if x1 <= 160 else 1)
                             for y0, y1, x0, x1 in (w.crop for w in windows)]
    # No window is larger than the memory estimate's: the largest tile crop of each axis.
    for y0, y1, x0, x1 in (w.crop for w in windows):
        assert y1 - y0 <= largest_window_side(96, 64, 16) == 64 + 16  # two tile rows
        assert x1 - x0 <= largest_window_side(160, 64, 16) == 64 + 32
    expected = fill[0, 0].clone()
    for k, window in enumerate(windows):
        y0, y1, x0, x1 = window.own
        expected[y0:y1, x0:x1] = images[0, 0, y0:y1, x0:x1] + 1000 * k
    assert torch.equal(out[0, 0], expected)
    assert (out[needed] != -7).all()


def test_sparse_cover_keeps_the_values_of_decoding_every_tile():
    """The decoder's radius (60) fits in 64 pixels of context: windows of any size give the
    needed pixels the values of the whole tiles, bit for bit."""
    decoder = small_decoder()
    features, images = torch.randn(2, 8, 14, 12), torch.randn(2, 4, 224, 192)
    needed = torch.zeros(2, 1, 224, 192, dtype=torch.bool)
    needed[0, :, 60:70, :] = True  # crosses the tile border at column 64 and 128
    needed[1, :, 150:160, 20:30] = True  # inside one tile
    with torch.no_grad():
        every = tiled_decode(decoder, features, images, tile_size=64, context=64)
        sparse = tiled_decode(decoder, features, images, tile_size=64, context=64,
                              needed=needed, fill=torch.full((2, 1, 224, 192), 0.5))
    either = needed.any(0, keepdim=True).expand_as(needed)
    assert torch.equal(sparse[either], every[either])
    assert (sparse == 0.5).float().mean() > 0.5  # most of the image was not decoded


def test_devices_whose_rounding_may_follow_the_window_size_skip_whole_tiles(monkeypatch):
    assert window_size_keeps_values(torch.device("cpu"))
    assert not window_size_keeps_values(torch.device("cuda", 0))
    monkeypatch.setattr(tiling, "window_size_keeps_values", lambda device: False)
    features, images = _coordinate_inputs(96, 160)
    needed = torch.zeros(1, 1, 96, 160, dtype=torch.bool)
    needed[..., 10, 70] = True
    decoder = _SeesSixteenPixels()
    tiled_decode(decoder, features, images, tile_size=64, context=16, needed=needed,
                 fill=torch.zeros(1, 1, 96, 160))
    assert decoder.crops == [(0, 80, 48, 144)]  # tile (0, 1) with its context, as the rule says
