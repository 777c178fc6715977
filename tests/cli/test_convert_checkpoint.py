"""Checkpoint conversion: Hugging Face VitMatte numerically equal after conversion; ViTMatte ->
MEMatte initialisation loads strictly; the convert/check command line."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from detectron2.config import instantiate
from tiny_models import MEMATTE_CONFIG, MEMATTE_OPTS, VITMATTE_CONFIG, VITMATTE_OPTS, tiny_cfg

from mematte_d2.checkpoint import (
    fill_missing_from,
    hf_vitmatte_to_d2,
    load_state_dict,
    vitmatte_to_mematte,
)
from mematte_d2.cli.convert_checkpoint import main as convert_main
from mematte_d2.inference import MattingPredictor
from mematte_d2.modeling.meta_arch import IMAGENET_MEAN, IMAGENET_STD

transformers = pytest.importorskip("transformers")


def _tiny_hf_vitmatte():
    """Random transformers VitMatte with the tiny layout of tiny_models (global blocks 2 and 5)."""
    backbone = transformers.VitDetConfig(
        hidden_size=32, num_hidden_layers=6, num_attention_heads=2, num_channels=4,
        image_size=512, pretrain_image_size=224, window_size=4,
        window_block_indices=[0, 1, 3, 4], residual_block_indices=[2, 5],
        use_relative_position_embeddings=True, out_features=["stage6"],
    )
    config = transformers.VitMatteConfig(
        backbone_config=backbone, hidden_size=32,
        convstream_hidden_sizes=[48, 96, 192], fusion_hidden_sizes=[256, 128, 64, 32],
    )
    torch.manual_seed(0)
    model = transformers.VitMatteForImageMatting(config).eval()
    with torch.no_grad():  # non-trivial values everywhere (the default init zeroes many)
        for name, p in model.named_parameters():
            if name.endswith(("norm1.weight", "norm2.weight", "norm3.weight", "batch_norm.weight",
                              "matting_convs.1.weight")):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif p.dim() >= 2 and "rel_pos" not in name and "position" not in name:
                p.copy_(torch.randn_like(p) / p[0].numel() ** 0.5)  # unit-gain for its fan-in
            else:
                p.copy_(0.2 * torch.randn_like(p))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn_like(b))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand_like(b))
    return model


def _input(h=40, w=72):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    trimap = rng.choice(np.array([0, 128, 255], np.uint8), size=(h, w))
    return image, trimap


def _hf_alpha(model, image, trimap):
    """Feed transformers the 4-channel tensor this project builds (ImageNet norm, 0/0.5/1)."""
    rgb = torch.from_numpy(image).permute(2, 0, 1).float()
    rgb = (rgb - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None,
                                                                                         None]
    tri = torch.full(trimap.shape, 0.5)
    tri[torch.from_numpy(trimap) < 85] = 0.0
    tri[torch.from_numpy(trimap) >= 170] = 1.0
    x = torch.cat([rgb, tri[None]], dim=0)[None]
    h, w = trimap.shape
    x = F.pad(x, (0, -w % 32, 0, -h % 32))
    with torch.no_grad():
        return model(pixel_values=x).alphas[0, 0, :h, :w].numpy()


def test_hf_conversion_gives_the_same_alpha(tmp_path):
    hf = _tiny_hf_vitmatte()
    image, trimap = _input()
    expected = _hf_alpha(hf, image, trimap)
    assert expected.std() > 0.01  # a model that actually depends on its input

    torch.save(hf.state_dict(), tmp_path / "pytorch_model.bin")
    assert convert_main(["hf", str(tmp_path), str(tmp_path / "d2.pth")]) == 0
    predictor = MattingPredictor(tiny_cfg("vitmatte"), str(tmp_path / "d2.pth"),
                                 device="cpu", max_memory=None)
    with torch.no_grad():
        inputs = {"image": torch.from_numpy(image).permute(2, 0, 1).float(),
                  "trimap": torch.from_numpy(trimap)[None].float()}
        raw = predictor.model([inputs])[0]["alpha"][0].numpy()  # the plain, whole-image path
    np.testing.assert_allclose(raw, expected, atol=1e-4)
    # the predictor's output is the same matte with known regions clamped
    alpha = predictor(image, trimap, tile_size=0)
    unknown = trimap == 128
    np.testing.assert_allclose(alpha[unknown], expected[unknown], atol=1e-4)


def test_vitmatte_to_mematte_loads_strict():
    torch.manual_seed(0)
    vitmatte = instantiate(tiny_cfg("vitmatte").model).state_dict()
    state, dropped = vitmatte_to_mematte(vitmatte)
    assert dropped == [f"backbone.blocks.{i}.attn.rel_pos_{a}" for i in (2, 5) for a in "hw"]
    mematte = instantiate(tiny_cfg().model)
    added = fill_missing_from(state, mematte.state_dict())
    assert added and all(".routers." in k or ".efficient_block." in k for k in added)
    mematte.load_state_dict(state, strict=True)
    assert torch.equal(mematte.teacher_backbone.blocks[2].attn.rel_pos_h,
                       vitmatte["backbone.blocks.2.attn.rel_pos_h"])
    assert torch.equal(mematte.backbone.blocks[2].attn.qkv.weight,
                       vitmatte["backbone.blocks.2.attn.qkv.weight"])
    # the same through HF: HF -> ViTMatte layout -> MEMatte
    hf_state, _ = vitmatte_to_mematte(hf_vitmatte_to_d2(_tiny_hf_vitmatte().state_dict()))
    fill_missing_from(hf_state, mematte.state_dict())
    mematte.load_state_dict(hf_state, strict=True)


@pytest.mark.integration
def test_convert_and_check_command_line(tmp_path, capsys):
    torch.manual_seed(0)
    torch.save({"model": instantiate(tiny_cfg("vitmatte").model).state_dict()},
               tmp_path / "vitmatte.pth")
    out = tmp_path / "mematte_init.pth"
    args = ["vitmatte2mematte", str(tmp_path / "vitmatte.pth"), str(out),
            "--config-file", MEMATTE_CONFIG, *MEMATTE_OPTS]
    assert convert_main(args) == 0
    assert any(k.startswith("teacher_backbone.") for k in load_state_dict(out))
    assert convert_main(["check", str(out), "--config-file", MEMATTE_CONFIG, *MEMATTE_OPTS]) == 0
    capsys.readouterr()
    status = convert_main(["check", str(tmp_path / "vitmatte.pth"),
                           "--config-file", MEMATTE_CONFIG, *MEMATTE_OPTS])
    report = capsys.readouterr().out
    assert status == 1
    assert "ViTMatte checkpoint" in report and "backbone.routers.0.in_conv.1.weight" in report
    assert "teacher_backbone.blocks.0.attn.qkv.weight" in report  # missing teacher listed
    assert convert_main(["check", str(out), "--config-file", VITMATTE_CONFIG,
                         *VITMATTE_OPTS]) == 1
    (tmp_path / "junk.pth").write_text("hello")
    assert convert_main(["hf", str(tmp_path / "junk.pth"), str(tmp_path / "x.pth")]) == 2
    assert "not a PyTorch checkpoint" in capsys.readouterr().err


def test_convert_output_is_written_atomically_and_never_through_a_symlink(tmp_path, capsys):
    torch.manual_seed(0)
    source = tmp_path / "vitmatte.pth"
    torch.save({"model": instantiate(tiny_cfg("vitmatte").model).state_dict()}, source)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out" / "init.pth"
    out.parent.mkdir()
    out.symlink_to(victim)
    assert convert_main(["vitmatte2mematte", str(source), str(out)]) == 0
    assert victim.read_text() == "precious" and not out.is_symlink()
    assert any(k.startswith("teacher_backbone.") for k in load_state_dict(out))
    assert sorted(p.name for p in out.parent.iterdir()) == ["init.pth"]  # no temporary left
    capsys.readouterr()
    assert convert_main(["vitmatte2mematte", str(source), str(out.parent)]) == 2
    assert f"output {out.parent} is a folder" in capsys.readouterr().err
    assert convert_main(["vitmatte2mematte", str(source), str(source)]) == 2
    assert "is the input file" in capsys.readouterr().err
