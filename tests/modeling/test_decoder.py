"""DetailCapture: checkpoint names/shapes, equivalence with the HF ViTMatte port, fusion order."""

import pytest
import torch
from released_layout import released_shapes

from mematte_d2.modeling.decoder import DetailCapture


def _randomise(module: torch.nn.Module) -> None:
    """Random weights and BN statistics so an equivalence check is not trivially satisfied."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.dtype.is_floating_point:
                values = torch.rand(tensor.shape, generator=gen)
                tensor.copy_(values + 0.5 if "running_var" in name else values - 0.5)


@pytest.mark.parametrize("variant, in_chans", [("s", 384), ("b", 768)])
def test_decoder_state_dict_matches_release(variant, in_chans):
    ours = {k: tuple(v.shape) for k, v in DetailCapture(in_chans=in_chans).state_dict().items()}
    assert ours == released_shapes(variant, "decoder.")


def test_decoder_matches_hf_vitmatte_detail_capture():
    transformers = pytest.importorskip("transformers")
    from transformers.models.vitmatte.modeling_vitmatte import VitMatteDetailCaptureModule

    config = transformers.VitMatteConfig(
        backbone_config=transformers.VitDetConfig(num_channels=4),
        hidden_size=64,
        convstream_hidden_sizes=[48, 96, 192],
        fusion_hidden_sizes=[256, 128, 64, 32],
    )
    hf = VitMatteDetailCaptureModule(config).eval()
    ours = DetailCapture(in_chans=64).eval()
    _randomise(ours)
    renamed = {
        k.replace(".bn.", ".batch_norm.").replace("fusion_blks.", "fusion_blocks."): v
        for k, v in ours.state_dict().items()
    }
    hf.load_state_dict(renamed, strict=True)
    features, images = torch.randn(2, 64, 3, 5), torch.randn(2, 4, 48, 80)
    with torch.no_grad():
        expected = hf(features, images)
        got = ours(features, images)
    assert got.shape == (2, 1, 48, 80)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_fusion_concatenates_detail_before_upsampled_features():
    decoder = DetailCapture(in_chans=8).eval()
    fuse = decoder.fusion_blks[0]
    with torch.no_grad():
        fuse.conv.conv.weight[:, 192:] = 0  # only the first 192 (detail D3) channels remain
    detail = torch.randn(1, 192, 4, 4)
    a = fuse(torch.randn(1, 8, 2, 2), detail)
    b = fuse(torch.randn(1, 8, 2, 2), detail)
    torch.testing.assert_close(a, b)


def test_decoder_output_is_alpha_and_errors_name_the_problem():
    decoder = DetailCapture(in_chans=16).eval()
    alpha = decoder(torch.randn(1, 16, 2, 3), torch.randn(1, 4, 32, 48))
    assert alpha.shape == (1, 1, 32, 48) and 0 <= alpha.min() and alpha.max() <= 1
    with pytest.raises(ValueError, match="features"):
        decoder(torch.randn(1, 15, 2, 3), torch.randn(1, 4, 32, 48))
    with pytest.raises(ValueError, match="16 x the feature size"):
        decoder(torch.randn(1, 16, 2, 3), torch.randn(1, 4, 32, 32))
    with pytest.raises(ValueError, match="fusion_out"):
        DetailCapture(fusion_out=(32,))
