"""predict command line: folders with mixed inputs, a corrupt file, size mismatches, outputs."""

import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from detectron2.config import instantiate
from file_limits import file_size_limit, read_only_folder
from hostile_files import (
    leftovers,
    png_header_only,
    radiance_hdr_header,
    tiff_header_only,
)
from PIL import ExifTags, Image, ImageOps
from tiny_models import MEMATTE_CONFIG, MEMATTE_OPTS, tiny_cfg

from mematte_d2.cli.predict import main
from mematte_d2.inference import MattingPredictor
from mematte_d2.utils.image_io import read_image, to_uint8

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _trimap(h, w):
    tri = np.full((h, w), 128, np.uint8)
    tri[: h // 4], tri[-h // 4 :] = 0, 255
    return tri


def run_with_readonly_output(tmp_path: Path) -> subprocess.CompletedProcess:
    """tools/predict.py with a read-only --output folder, inputs from tmp_path/in."""
    locked = tmp_path / "locked"
    with read_only_folder(locked) as prefix:
        return subprocess.run(
            [*prefix, sys.executable, str(REPO / "tools" / "predict.py"), "--config-file",
             str(tmp_path / "no_config.py"), "--input", str(tmp_path / "in"), "--trimap",
             str(tmp_path / "in"), "--output", str(locked)],
            capture_output=True, text=True, check=False,
        )


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


def _write_exif_jpeg(path, stored_rgb, orientation):
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    Image.fromarray(stored_rgb).save(path, quality=100, exif=exif)


def test_mixed_batch_processes_every_good_file_and_names_each_bad_one(
    tmp_path, image_sensitive_weights, capsys
):
    """Hostile inputs of every kind in one folder: the good files all get their outputs."""
    weights = image_sensitive_weights
    rng = np.random.default_rng(1)
    src, tri, out = tmp_path / "in", tmp_path / "tri", tmp_path / "out"
    for d in (src, tri, out):
        d.mkdir()
    good = {}
    cv2.imwrite(str(src / "good.png"), rng.integers(0, 256, (40, 56, 3), dtype=np.uint8))
    cv2.imwrite(str(tri / "good.png"), _trimap(40, 56))
    good["good"] = (40, 56)
    # stored 40x56, shown turned 90 degrees: the trimap is drawn on the 56x40 picture
    blocks = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    _write_exif_jpeg(src / "turned.jpg", np.kron(blocks, np.ones((8, 8, 1), np.uint8)), 6)
    cv2.imwrite(str(tri / "turned.png"), _trimap(56, 40))
    good["turned"] = (56, 40)
    cv2.imwrite(str(src / "tiny.png"), np.full((1, 1, 3), 90, np.uint8))
    cv2.imwrite(str(tri / "tiny.png"), np.full((1, 1), 128, np.uint8))
    good["tiny"] = (1, 1)
    bad = {}
    (src / "bomb.png").write_bytes(png_header_only(50000, 50000))
    cv2.imwrite(str(tri / "bomb.png"), _trimap(8, 8))
    bad["bomb.png"] = "limit of max_pixels=268,435,456"
    (src / "hdr.png").write_bytes(radiance_hdr_header(32768, 32768))  # 12.9 GB if decoded
    cv2.imwrite(str(tri / "hdr.png"), _trimap(8, 8))
    bad["hdr.png"] = "not a readable image (its content is not PNG, JPEG, BMP, TIFF or WebP"
    (src / "ftiff.tif").write_bytes(tiff_header_only(30000, 30000))  # 10.8 GB if decoded
    cv2.imwrite(str(tri / "ftiff.png"), _trimap(8, 8))
    bad["ftiff.tif"] = "30000x30000 = 900,000,000 pixels"
    cv2.imwrite(str(src / "labels.png"), np.zeros((20, 20, 3), np.uint8))
    cv2.imwrite(str(tri / "labels.png"), (_trimap(20, 20) // 127).astype(np.uint8))
    bad["labels.png"] = "uint8 with values only in 0-2"
    cv2.imwrite(str(src / "soft.png"), np.zeros((20, 20, 3), np.uint8))
    soft = _trimap(20, 20)
    soft[10, 10] = 127  # snapped to unknown by default
    cv2.imwrite(str(tri / "soft.png"), soft)
    good["soft"] = (20, 20)
    with_nan = np.full((20, 20, 3), 0.5, np.float32)
    with_nan[3, 4, 1] = np.nan
    cv2.imwrite(str(src / "nan.tif"), with_nan)
    cv2.imwrite(str(tri / "nan.png"), _trimap(20, 20))
    bad["nan.tif"] = "1 non-finite"
    cv2.imwrite(str(src / "f255.tif"), np.full((20, 20, 3), 200.0, np.float32))
    cv2.imwrite(str(tri / "f255.png"), _trimap(20, 20))
    bad["f255.tif"] = "float values in [200, 200]"
    cv2.imwrite(str(src / "u16.png"), np.full((20, 20, 3), 200, np.uint16))
    cv2.imwrite(str(tri / "u16.png"), _trimap(20, 20))
    bad["u16.png"] = "16-bit file whose values are all <= 255"
    (src / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    cv2.imwrite(str(tri / "broken.png"), _trimap(8, 8))
    bad["broken.jpg"] = "not a readable image"
    cv2.imwrite(str(src / "orphan.png"), np.zeros((20, 20, 3), np.uint8))
    bad["orphan.png"] = "no trimap named orphan"
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    (out / "good_alpha.png").symlink_to(victim)
    cv2.imwrite(str(tmp_path / "bg.png"), np.full((10, 10, 3), 200, np.uint8))

    status = main(_common(weights) + [
        "--input", str(src), "--trimap", str(tri), "--output", str(out), "--cutout",
        "--background", str(tmp_path / "bg.png"), *MEMATTE_OPTS,
    ])
    out_text, err = capsys.readouterr()
    assert status == 1
    assert f"{len(good)} of {len(good) + len(bad)} images written" in out_text
    summary = err[err.index(f"{len(bad)} failed:"):]
    for name, reason in bad.items():
        line = next(line for line in summary.splitlines() if f"{name}:" in line)
        assert reason in line, line
    for stem, shape in good.items():
        for kind in ("alpha", "cutout", "composite"):
            written = cv2.imread(str(out / f"{stem}_{kind}.png"), cv2.IMREAD_UNCHANGED)
            assert written.shape[:2] == shape, (stem, kind)
    assert victim.read_text() == "keep me" and not (out / "good_alpha.png").is_symlink()
    assert leftovers(out) == []
    # the turned JPEG is matted as displayed: the predictor's alpha on the turned picture, not
    # on the picture turned the other way (the weights make alphas follow the picture)
    with Image.open(src / "turned.jpg") as im:
        shown = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    predictor = MattingPredictor(tiny_cfg(), weights, device="cpu")
    expected = predictor(shown, _trimap(56, 40))
    wrong_way = predictor(np.ascontiguousarray(shown[::-1, ::-1]), _trimap(56, 40))
    assert np.abs(wrong_way - expected).mean() > 0.1
    alpha = cv2.imread(str(out / "turned_alpha.png"), cv2.IMREAD_UNCHANGED) / 255.0
    assert np.abs(alpha - expected).mean() < 0.02


def test_non_finite_prediction_fails_the_image_and_writes_nothing(tmp_path, capsys):
    model = instantiate(tiny_cfg().model)
    with torch.no_grad():
        next(model.decoder.parameters()).fill_(float("nan"))
    torch.save({"model": model.state_dict()}, tmp_path / "diverged.pth")
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((24, 24, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "a_trimap.png"), _trimap(24, 24))
    status = main(_common(str(tmp_path / "diverged.pth")) + [
        "--input", str(tmp_path / "a.png"), "--trimap", str(tmp_path / "a_trimap.png"),
        "--output", str(tmp_path / "out"), *MEMATTE_OPTS])
    assert status == 1
    assert re.search(r"a.png: the model predicted \d+ non-finite", capsys.readouterr().err)
    assert list((tmp_path / "out").iterdir()) == []


def test_full_disk_keeps_the_earlier_output_and_names_path_and_cause(tmp_path, weights, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((48, 64, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "a_trimap.png"), _trimap(48, 64))
    args = _common(weights) + ["--input", str(tmp_path / "a.png"), "--trimap",
                               str(tmp_path / "a_trimap.png"), "--output", str(tmp_path / "out")]
    assert main(args + MEMATTE_OPTS) == 0
    earlier = (tmp_path / "out" / "a_alpha.png").read_bytes()
    with file_size_limit(64):  # smaller than any of these PNGs
        status = main(args + ["--alpha-16bit", *MEMATTE_OPTS])
    assert status == 1
    err = capsys.readouterr().err
    assert f"cannot write {tmp_path / 'out' / 'a_alpha.png'}: File too large" in err
    assert (tmp_path / "out" / "a_alpha.png").read_bytes() == earlier
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_alpha.png"]


def test_input_folder_that_is_also_trimap_and_output_folder(tmp_path, weights, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((24, 24, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "a_trimap.png"), _trimap(24, 24))
    args = _common(weights) + ["--input", str(tmp_path), "--trimap", str(tmp_path),
                               "--output", str(tmp_path), *MEMATTE_OPTS]
    assert main(args) == 0
    assert "1 of 1 images written" in capsys.readouterr().out
    assert main(args) == 0  # again, with a_alpha.png now in the folder
    out, err = capsys.readouterr()
    assert "1 of 1 images written" in out
    assert f"skipped {tmp_path / 'a_alpha.png'}: an output of this command" in err


@pytest.mark.parametrize(
    "option, message",
    [
        (["--max-tokens", "0"],
         "argument --max-tokens: max_tokens must be None or a positive int, got 0"),
        (["--max-tokens", "1.5"], "argument --max-tokens: expected int, got '1.5'"),
        (["--keep-ratio", "nan"], r"argument --keep-ratio: keep_ratio must be in (0, 1], got nan"),
        (["--tile-size", "-1"], "argument --tile-size: tile_size must be >= 0"),
        (["--max-pixels", "0"], "argument --max-pixels: max_pixels must be >= 1, got 0"),
        # accepted once, then every image failed (or OpenCV asked for 40 GB)
        (["--tile-size", "7"], "argument --tile-size: tile_size must be 0 (whole image) or a "
                               "multiple of 16 in [64, 16384], got 7"),
        (["--tile-size", str(10**12)], f"must be 0 (whole image) or a multiple of 16 in "
                                       f"[64, 16384], got {10**12}"),
        (["--tile-size", "48"], "multiple of 16 in [64, 16384], got 48"),
        (["--max-tokens", str(10**20)], f"argument --max-tokens: max_tokens must be at most "
                                        f"4194304 (the tokens of the largest readable image), "
                                        f"got {10**20}"),
        (["--max-memory", "1B"], "argument --max-memory: memory budget '1B' is below the "
                                 "minimum of 64 MB"),
        (["--max-memory", "lots"], "argument --max-memory: cannot read memory size 'lots'"),
        (["--mask-erode", "100000"], "argument --mask-erode: erode must be at most 1024 "
                                     "pixels, got 100000"),
        (["--mask-dilate", "1025"], "argument --mask-dilate: dilate must be at most 1024"),
        (["--num-gpus", "0"], "argument --num-gpus: must be >= 1, got 0"),
        (["--num-machines", "2", "--machine-rank", "2", "--dist-url", "tcp://h:1"],
         "--machine-rank 2 must be below --num-machines 2"),
        (["--num-machines", "2"], "--num-machines > 1 needs --dist-url tcp://HOST:PORT"),
    ],
)
def test_bad_options_exit_2_with_one_line_before_any_work(tmp_path, capsys, option, message):
    # the config file does not exist: any later check would complain about it instead
    args = ["--config-file", str(tmp_path / "no_config.py"), "--input", str(tmp_path),
            "--trimap", str(tmp_path), "--output", str(tmp_path / "out"), *option]
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "out").exists()


def test_output_that_is_a_file_or_unwritable_exits_2_before_any_work(tmp_path, capsys):
    src = tmp_path / "in"  # inputs are fine: the output is at fault
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(src / "a_trimap.png"), _trimap(8, 8))
    (tmp_path / "taken").write_text("a file")
    args = ["--config-file", str(tmp_path / "no_config.py"), "--input", str(src),
            "--trimap", str(src), "--output", str(tmp_path / "taken")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == f"error: --output {tmp_path / 'taken'}: exists and is not a directory\n"
    proc = run_with_readonly_output(tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert "--output" in proc.stderr and "cannot write there (Permission denied)" in proc.stderr


def test_budget_or_tile_that_fits_no_image_exits_2_before_any_image(tmp_path, weights, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((24, 24, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "a_trimap.png"), _trimap(24, 24))
    args = _common(weights) + ["--input", str(tmp_path / "a.png"), "--trimap",
                               str(tmp_path / "a_trimap.png"), "--output", str(tmp_path / "out")]
    assert main(args + ["--max-memory", "100MB", *MEMATTE_OPTS]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --max-memory 100 MB fits no image: a 16x16 image needs")
    # a tile smaller than the model's context (64 pixels in the configs; 128 here)
    assert main(args + ["--tile-size", "64", *MEMATTE_OPTS, "model.tile_context=128"]) == 2
    assert ("error: --tile-size 64 is smaller than the model's tile context of 128 pixels"
            in capsys.readouterr().err)
    assert list((tmp_path / "out").iterdir()) == []


def test_glob_over_the_output_folder_reruns_and_names_non_images(tmp_path, weights, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((24, 24, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "a_trimap.png"), _trimap(24, 24))
    (tmp_path / "notes.txt").write_text("not an image")
    args = _common(weights) + ["--input", str(tmp_path / "*"), "--trimap", str(tmp_path),
                               "--output", str(tmp_path), *MEMATTE_OPTS]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "1 of 1 images written" in out
    assert f"skipped {tmp_path / 'notes.txt'}: not an image file" in err
    assert "no trimap" not in err
    assert main(args) == 0  # again, with a_alpha.png matching the glob
    out, err = capsys.readouterr()
    assert "1 of 1 images written" in out
    assert f"skipped {tmp_path / 'a_alpha.png'}: an output of this command" in err


def test_missing_input_exits_2_without_creating_the_output_folder(tmp_path, capsys):
    args = ["--config-file", str(tmp_path / "no_config.py"), "--input",
            str(tmp_path / "nothing*.png"), "--trimap", str(tmp_path), "--output",
            str(tmp_path / "out")]
    assert main(args) == 2
    assert "no image files found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.integration
def test_undecodable_file_name_under_strict_utf8_output(tmp_path, weights):
    """Under PYTHONIOENCODING=utf-8 (strict) a name with invalid UTF-8 bytes is printed
    backslash-escaped and every image is processed, not just those before it."""
    image_png = cv2.imencode(".png", np.zeros((24, 24, 3), np.uint8))[1].tobytes()
    trimap_png = cv2.imencode(".png", _trimap(24, 24))[1].tobytes()
    for stem in (b"a", b"b\xff", b"c"):  # (OpenCV crashes on such a name: bytes via Python)
        (tmp_path / os.fsdecode(stem + b".png")).write_bytes(image_png)
        (tmp_path / os.fsdecode(stem + b"_trimap.png")).write_bytes(trimap_png)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "predict.py"), *_common(weights), "--input",
         str(tmp_path), "--trimap", str(tmp_path), "--output", str(tmp_path / "out"),
         *MEMATTE_OPTS],
        capture_output=True, env=env, check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    assert b"b\\udcff.png: " in proc.stdout and b"3 of 3 images written" in proc.stdout
    written = sorted(os.listdir(os.fsencode(tmp_path / "out")))
    assert written == [b"a_alpha.png", b"b\xff_alpha.png", b"c_alpha.png"]


def test_skip_existing_passes_over_images_with_every_output(tmp_path, weights, capsys):
    for stem in "ab":
        cv2.imwrite(str(tmp_path / f"{stem}.png"), np.zeros((24, 24, 3), np.uint8))
        cv2.imwrite(str(tmp_path / f"{stem}_trimap.png"), _trimap(24, 24))
    out = tmp_path / "out"
    args = _common(weights) + ["--input", str(tmp_path / "a.png"), "--trimap",
                               str(tmp_path / "a_trimap.png"), "--output", str(out), "--cutout",
                               *MEMATTE_OPTS]
    assert main(args) == 0
    capsys.readouterr()
    (out / "a_cutout.png").unlink()  # a's cutout is missing: a is computed again
    args[args.index(str(tmp_path / "a.png"))] = str(tmp_path)
    args[args.index(str(tmp_path / "a_trimap.png"))] = str(tmp_path)
    assert main([*args[:-len(MEMATTE_OPTS)], "--skip-existing", *MEMATTE_OPTS]) == 0
    assert "2 of 2 images written" in capsys.readouterr().out
    done = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert sorted(done) == ["a_alpha.png", "a_cutout.png", "b_alpha.png", "b_cutout.png"]
    assert main([*args[:-len(MEMATTE_OPTS)], "--skip-existing", *MEMATTE_OPTS]) == 0
    out_text = capsys.readouterr().out
    assert "0 of 2 images written" in out_text and "2 already complete" in out_text
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == done
