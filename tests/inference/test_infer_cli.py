"""predict command line: folders with mixed inputs, a corrupt file, size mismatches, outputs."""

import cv2
import numpy as np
import pytest
import torch
from detectron2.config import instantiate
from tiny_models import MEMATTE_CONFIG, MEMATTE_OPTS, tiny_cfg

from mematte_d2.cli.predict import main
from mematte_d2.inference import MattingPredictor
from mematte_d2.inference.io import read_image, to_uint8


def _trimap(h, w):
    tri = np.full((h, w), 128, np.uint8)
    tri[: h // 4], tri[-h // 4 :] = 0, 255
    return tri


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "tiny.pth"
    torch.save({"model": instantiate(tiny_cfg().model).state_dict()}, path)
    return str(path)


def _common(weights):
    return ["--config-file", MEMATTE_CONFIG, "--weights", weights, "--device", "cpu"]


def test_folder_with_corrupt_file_and_size_mismatch(tmp_path, weights, capsys):
    rng = np.random.default_rng(0)
    src, tri, out = tmp_path / "in", tmp_path / "tri", tmp_path / "out"
    src.mkdir(), tri.mkdir()
    rgba16 = rng.integers(0, 65536, (40, 56, 4), dtype=np.uint16)
    cv2.imwrite(str(src / "a.png"), rgba16)
    gray = rng.integers(0, 256, (36, 50), dtype=np.uint8)
    cv2.imwrite(str(src / "b.png"), gray)
    (src / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    cv2.imwrite(str(src / "c.png"), rng.integers(0, 256, (30, 30, 3), dtype=np.uint8))
    for name, (h, w) in {"a": (40, 56), "b": (36, 50), "broken": (8, 8), "c": (31, 30)}.items():
        cv2.imwrite(str(tri / f"{name}.png"), _trimap(h, w))
    cv2.imwrite(str(tmp_path / "bg.png"), np.full((10, 10, 3), 200, np.uint8))

    status = main(_common(weights) + [
        "--input", str(src), "--trimap", str(tri), "--output", str(out), "--cutout",
        "--background", str(tmp_path / "bg.png"), "--routing-overlay", "--alpha-16bit",
        *MEMATTE_OPTS,
    ])
    captured = capsys.readouterr()
    err = captured.err
    assert status == 1
    assert "a.png: " in err + captured.out and "tokens routed per block" in err + captured.out
    assert "broken.jpg" in err and "not a readable image" in err
    assert "c.png" in err and "31x30" in err
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(f"{s}_{k}.png" for s in "ab"
                             for k in ("alpha", "cutout", "composite", "routing"))
    alpha = cv2.imread(str(out / "a_alpha.png"), cv2.IMREAD_UNCHANGED)
    cutout = cv2.imread(str(out / "a_cutout.png"), cv2.IMREAD_UNCHANGED)
    assert alpha.dtype == np.uint16 and alpha.shape == (40, 56)
    assert cutout.dtype == np.uint16 and cutout.shape == (40, 56, 4)
    np.testing.assert_array_equal(cutout[:, :, 3], alpha)
    # the written matte is the predictor's on the 8-bit version of the 16-bit RGBA input
    predictor = MattingPredictor(tiny_cfg(), weights, device="cpu")
    expected = predictor(to_uint8(read_image(src / "a.png")), _trimap(40, 56))
    np.testing.assert_allclose(alpha / 65535.0, expected, atol=1 / 65535)
    b_alpha = cv2.imread(str(out / "b_alpha.png"), cv2.IMREAD_UNCHANGED)
    assert b_alpha.dtype == np.uint16 and b_alpha.shape == (36, 50)


def test_never_overwrites_inputs(tmp_path, weights, capsys):
    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((20, 20, 3), np.uint8))
    (tmp_path / "out").mkdir()
    trimap_path = tmp_path / "out" / "x_alpha.png"
    cv2.imwrite(str(trimap_path), _trimap(20, 20))
    before = trimap_path.read_bytes()
    status = main(_common(weights) + ["--input", str(tmp_path / "x.png"), "--trimap",
                                      str(trimap_path), "--output", str(tmp_path / "out"),
                                      *MEMATTE_OPTS])
    assert status == 1
    assert "would overwrite an input file" in capsys.readouterr().err
    assert trimap_path.read_bytes() == before


def test_bad_weights_and_missing_input_exit_2(tmp_path, capsys):
    (tmp_path / "w.pth").write_text("text")
    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((20, 20, 3), np.uint8))
    args = ["--config-file", MEMATTE_CONFIG, "--input", str(tmp_path / "x.png"),
            "--trimap", str(tmp_path / "x.png"), "--output", str(tmp_path / "o"),
            "--weights", str(tmp_path / "w.pth"), *MEMATTE_OPTS]
    assert main(args) == 2
    assert "w.pth: not a PyTorch checkpoint" in capsys.readouterr().err
    args[3] = str(tmp_path / "nothing*.png")
    assert main(args) == 2
    assert "no image files found" in capsys.readouterr().err


def test_precision_flag_bf16_writes_alpha_and_fp16_on_cpu_exits_2(tmp_path, weights, capsys):
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), image)
    cv2.imwrite(str(tmp_path / "a_trimap.png"), _trimap(48, 64))
    args = [*_common(weights), "--input", str(tmp_path / "a.png"),
            "--trimap", str(tmp_path / "a_trimap.png"), "--output", str(tmp_path / "out"),
            "--precision", "bf16", *MEMATTE_OPTS]
    assert main(args) == 0
    alpha = cv2.imread(str(tmp_path / "out/a_alpha.png"), cv2.IMREAD_UNCHANGED)
    assert alpha.shape == (48, 64) and alpha[:12].max() == 0 and alpha[-12:].min() == 255
    args[args.index("bf16")] = "fp16"
    assert main(args) == 2
    assert "autocast on CPU supports bfloat16" in capsys.readouterr().err
