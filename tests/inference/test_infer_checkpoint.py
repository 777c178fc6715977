"""Checkpoint files: clear errors for non-checkpoints; key reports; layout detection; weights
that would run code refused by the predictor and the predict / convert commands."""

import cv2
import numpy as np
import pytest
import torch
from detectron2.config import instantiate
from hostile_weights import code_running_pickle, code_running_torch_file, detectron2_pkl
from tiny_models import MEMATTE_CONFIG, MEMATTE_OPTS, tiny_cfg

from mematte_d2.checkpoint import (
    CheckpointError,
    ConversionError,
    UnsafeCheckpointError,
    compare_state_dicts,
    describe_layout,
    hf_vitmatte_to_d2,
    load_state_dict,
    vitmatte_to_mematte,
)
from mematte_d2.cli.convert_checkpoint import main as convert_main
from mematte_d2.cli.predict import main as predict_main
from mematte_d2.inference import MattingPredictor


def test_not_a_checkpoint_says_so(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_text("this is a text file")
    with pytest.raises(CheckpointError, match="weights.pth: not a PyTorch checkpoint"):
        load_state_dict(path)
    with pytest.raises(CheckpointError, match="no such weights file"):
        load_state_dict(tmp_path / "missing.pth")
    torch.save({"model": {"a": "not a tensor"}}, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match="'a' is a str, not a tensor"):
        load_state_dict(tmp_path / "odd.pth")


def test_nested_and_ddp_state_dicts(tmp_path):
    w = torch.ones(2)
    torch.save({"model": {"module.x": w}, "iteration": 3}, tmp_path / "d2.pth")
    assert list(load_state_dict(tmp_path / "d2.pth")) == ["x"]
    torch.save({"state_dict": {"y": w}}, tmp_path / "sd.pth")
    assert list(load_state_dict(tmp_path / "sd.pth")) == ["y"]


def test_compare_lists_missing_unexpected_and_shapes():
    model = {"a": torch.zeros(2), "b": torch.zeros(3), "c": torch.zeros(1)}
    ckpt = {"a": torch.zeros(2), "b": torch.zeros(4), "d": torch.zeros(1)}
    report = compare_state_dicts(ckpt, model)
    assert not report.ok
    assert report.missing == ["c"] and report.unexpected == ["d"]
    assert report.mismatched == [("b", (4,), (3,))]
    text = report.format()
    assert "b: (4,) vs (3,)" in text and "    c" in text and "    d" in text


def test_describe_layout_names_the_source():
    assert "Hugging Face" in describe_layout({"backbone.encoder.layer.0.norm1.weight": 0})
    assert "MEMatte" in describe_layout({"backbone.routers.0.x": 0, "decoder.y": 0})
    vit = {"backbone.blocks.0.attn.qkv.weight": 0, "decoder.y": 0}
    assert "ViTMatte" in describe_layout(vit)
    assert "unknown" in describe_layout({"fc.weight": 0})


def _vitmatte_state(depth=6, global_blocks=(2, 5), dim=8):
    state = {"backbone.pos_embed": torch.zeros(1, 197, dim), "decoder.x.weight": torch.ones(1)}
    for i in range(depth):
        size = 7 if i in global_blocks else 5
        state[f"backbone.blocks.{i}.attn.rel_pos_h"] = torch.randn(size, 4)
        state[f"backbone.blocks.{i}.attn.rel_pos_w"] = torch.randn(size, 4)
        state[f"backbone.blocks.{i}.attn.qkv.weight"] = torch.randn(3 * dim, dim)
        if i in global_blocks:
            state[f"backbone.blocks.{i}.residual.conv1.weight"] = torch.randn(dim // 2, dim, 1, 1)
    return state


def test_vitmatte_to_mematte_student_teacher_split():
    src = _vitmatte_state()
    out, dropped = vitmatte_to_mematte(src)
    assert dropped == [f"backbone.blocks.{i}.attn.rel_pos_{a}" for i in (2, 5) for a in "hw"]
    for key, value in src.items():
        if key.startswith("backbone."):
            assert torch.equal(out["teacher_" + key], value)
            assert (key in out) == (key not in dropped)
        else:
            assert torch.equal(out[key], value)
    with pytest.raises(ConversionError, match="already a MEMatte"):
        vitmatte_to_mematte(out)


def test_hf_keys_are_renamed_and_unknown_keys_refused():
    hf = {
        "backbone.embeddings.position_embeddings": torch.zeros(1, 197, 8),
        "backbone.embeddings.projection.weight": torch.zeros(8, 4, 16, 16),
        "backbone.encoder.layer.3.attention.qkv.weight": torch.zeros(24, 8),
        "backbone.encoder.layer.3.residual.norm3.bias": torch.zeros(8),
        "decoder.fusion_blocks.1.conv.batch_norm.running_var": torch.ones(4),
        "decoder.convstream.convs.0.batch_norm.num_batches_tracked": torch.tensor(0),
    }
    out = hf_vitmatte_to_d2(hf)
    assert sorted(out) == sorted([
        "backbone.pos_embed",
        "backbone.patch_embed.proj.weight",
        "backbone.blocks.3.attn.qkv.weight",
        "backbone.blocks.3.residual.norm3.bias",
        "decoder.fusion_blks.1.conv.bn.running_var",
        "decoder.convstream.convs.0.bn.num_batches_tracked",
    ])
    with pytest.raises(ConversionError, match="backbone.encoder.layer.0.weird"):
        hf_vitmatte_to_d2({**hf, "backbone.encoder.layer.0.weird": torch.zeros(1)})


@pytest.mark.parametrize("kind", ["pkl", "pth"])
def test_code_running_weights_are_refused_by_predictor_and_commands(tmp_path, capsys, kind):
    marker = tmp_path / "pwned"
    evil = (code_running_pickle(tmp_path / "evil.pkl", marker) if kind == "pkl"
            else code_running_torch_file(tmp_path / "evil.pth", marker))
    refusal = f"{evil}: refused to load: "
    with pytest.raises(UnsafeCheckpointError, match=refusal):
        MattingPredictor(tiny_cfg(), str(evil), device="cpu")

    image = tmp_path / "x.png"
    cv2.imwrite(str(image), np.zeros((16, 16, 3), np.uint8))
    assert predict_main(["--config-file", MEMATTE_CONFIG, "--input", str(image), "--trimap",
                         str(image), "--output", str(tmp_path / "out"), "--weights", str(evil),
                         *MEMATTE_OPTS]) == 2
    assert refusal in capsys.readouterr().err
    assert convert_main(["check", str(evil), "--config-file", MEMATTE_CONFIG, *MEMATTE_OPTS]) == 2
    assert refusal in capsys.readouterr().err
    assert convert_main(["vitmatte2mematte", str(evil), str(tmp_path / "init.pth")]) == 2
    assert refusal in capsys.readouterr().err
    assert not marker.exists()
    # predict made its (checked) output folder before loading the weights, and wrote nothing
    assert not any((tmp_path / "out").iterdir()) and not (tmp_path / "init.pth").exists()


def test_detectron2_pkl_weights_load_in_the_predictor_and_check(tmp_path, capsys):
    torch.manual_seed(0)
    state = instantiate(tiny_cfg().model).state_dict()
    pkl = detectron2_pkl(tmp_path / "tiny.pkl", state)
    loaded = MattingPredictor(tiny_cfg(), str(pkl), device="cpu").model.state_dict()
    assert all(torch.equal(state[k], loaded[k]) for k in loaded)
    assert convert_main(["check", str(pkl), "--config-file", MEMATTE_CONFIG, *MEMATTE_OPTS]) == 0
    assert "a MEMatte checkpoint" in capsys.readouterr().out
