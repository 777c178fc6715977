"""The speed / memory changes of the model keep its outputs: chunked MLP and window attention,
routed-block gather / scatter, and tiled decoding that skips unreachable padding."""

import pytest
import torch
from decoder_samples import small_decoder
from torch.nn import functional as F

from mematte_d2.modeling import vit
from mematte_d2.modeling.decoder import DetailCapture
from mematte_d2.modeling.routed_vit import RoutedViT
from mematte_d2.modeling.tiling import tiled_decode
from mematte_d2.modeling.vitmatte_encoder import ViTMatteEncoder

TINY = dict(embed_dim=32, num_heads=2, depth=6, window_size=4,
            window_block_indexes=(0, 1, 3, 4), residual_block_indexes=(2, 5))


def test_decoder_outputs_farther_than_the_receptive_radius_ignore_a_crop_border():
    decoder = small_decoder(8, torch.float64)
    radius = decoder.receptive_radius
    features = torch.randn(1, 8, 16, 16, dtype=torch.float64)
    images = torch.randn(1, 4, 256, 256, dtype=torch.float64)
    with torch.no_grad():
        whole = decoder(features, images)
        cropped = decoder(features[..., :12, :12], images[..., :192, :192])
        torch.testing.assert_close(cropped[..., : 192 - radius, : 192 - radius],
                                   whole[..., : 192 - radius, : 192 - radius])
        # ... while the border itself does change: the bound is not vacuous.
        assert (cropped[..., 160:192, :] - whole[..., 160:192, :192]).abs().max() > 1e-6


class _Recorder(torch.nn.Module):
    def __init__(self, decoder):
        super().__init__()
        self.decoder, self.receptive_radius, self.crops = decoder, decoder.receptive_radius, []

    def forward(self, features, images):
        self.crops.append(tuple(images.shape[-2:]))
        return self.decoder(features, images)


@pytest.mark.parametrize("context", [64, 32])
def test_tiled_decode_equals_decoding_the_input_padded_to_whole_tiles(context):
    decoder = _Recorder(small_decoder(8, torch.float64))
    features = torch.randn(1, 8, 10, 9, dtype=torch.float64)
    images = torch.randn(1, 4, 160, 144, dtype=torch.float64)
    with torch.no_grad():
        tiled = tiled_decode(decoder, features, images, tile_size=128, context=context)
        padded_features = F.pad(features, (0, 7, 0, 6))
        padded_images = F.pad(images, (0, 112, 0, 96))
        reference = [
            decoder.decoder(padded_features[..., y // 16 : y1 // 16, x // 16 : x1 // 16],
                            padded_images[..., y:y1, x:x1])
            for y, y1 in ((0, 128 + context), (128 - context, 256))
            for x, x1 in ((0, 128 + context), (128 - context, 256))
        ]
    expected = torch.zeros(1, 1, 256, 256, dtype=torch.float64)
    expected[..., :128, :128] = reference[0][..., :128, :128]
    expected[..., :128, 128:] = reference[1][..., :128, context:]
    expected[..., 128:, :128] = reference[2][..., context:, :128]
    expected[..., 128:, 128:] = reference[3][..., context:, context:]
    torch.testing.assert_close(tiled, expected[..., :160, :144])
    last = decoder.crops[-1]
    if context >= decoder.receptive_radius:  # padding beyond image + context is skipped
        assert last == (160 + context - (128 - context), 144 + context - (128 - context))
    else:  # the decoder could see it: whole tiles as before
        assert last == (128 + context, 128 + context)


@pytest.mark.parametrize("encoder_cls", [RoutedViT, ViTMatteEncoder])
def test_chunked_mlp_and_window_attention_give_the_same_features(encoder_cls, monkeypatch):
    encoder = encoder_cls(**TINY).eval()
    x = torch.randn(1, 4, 160, 224)
    with torch.no_grad(), torch.autocast("cpu", enabled=False):
        if isinstance(encoder, RoutedViT):
            encoder.inference_keep_ratio = 0.25
        whole = encoder(x)["features"]
        monkeypatch.setattr(vit, "CHUNK_ELEMENTS", 1000)  # a few tokens / windows per slice
        chunked = encoder(x)["features"]
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-5)


def test_routed_block_eval_matches_attention_on_the_kept_tokens_scattered_over_the_refiner():
    encoder = RoutedViT(**TINY).eval()
    block = encoder.blocks[encoder.routed_block_indexes[0]]
    x = torch.randn(2, 6, 7, 32)
    keep = torch.rand(2, 42) < 0.3
    keep[1] = False  # an image without kept tokens
    with torch.no_grad():
        out = block.forward_eval(x, keep)
        mixed = block.efficient_block(x).reshape(2, 42, 32)
        normed = block.norm1(x).reshape(2, 42, 32)
        index = keep[0].nonzero().squeeze(1)
        mixed[0, index] = block.attn.forward_tokens(normed[0, index][None])[0]
        expected = block.finish(x + mixed.reshape(2, 6, 7, 32))
    torch.testing.assert_close(out, expected)


def _reference_decode(decoder: DetailCapture, features, images):
    """The decoder written out plainly: separate BatchNorms and concatenations."""
    def conv_bn_relu(block, x):
        return F.relu(block.bn(block.conv(x)))

    details = [images]
    for block in decoder.convstream.convs:
        details.append(conv_bn_relu(block, details[-1]))
    x = features
    for i, fuse in enumerate(decoder.fusion_blks):
        up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = conv_bn_relu(fuse.conv, torch.cat([details[-(i + 1)], up], dim=1))
    return torch.sigmoid(decoder.matting_head.matting_convs(x))


def test_eval_decoder_with_folded_batchnorm_and_split_concat_equals_the_plain_one():
    decoder = small_decoder(8, torch.float64)
    with torch.no_grad():
        for module in decoder.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
    features = torch.randn(2, 8, 5, 6, dtype=torch.float64)
    images = torch.randn(2, 4, 80, 96, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(decoder(features, images),
                                   _reference_decode(decoder, features, images))
