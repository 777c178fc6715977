"""datasets/compose_*.py on tiny folders, including unreadable files, and the official Adobe
composition rule against a straightforward per-pixel implementation of it."""

import importlib.util
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from data_samples import soft_alpha
from PIL import Image

from mematte_d2.data.compose import adobe_background, adobe_composite
from mematte_d2.utils.image_io import write_png

DATASETS = Path(__file__).resolve().parents[2] / "datasets"


def _script(name):
    spec = importlib.util.spec_from_file_location(f"_script_{name}", DATASETS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def official_composite(fg: Image.Image, alpha: Image.Image, bg: Image.Image) -> np.ndarray:
    """The rule of the Deep Image Matting Composition_code.py, pixel by pixel on PIL images."""
    w, h = fg.size
    if fg.mode not in ("RGB", "RGBA"):
        fg = fg.convert("RGB")
    if bg.mode != "RGB":
        bg = bg.convert("RGB")
    bw, bh = bg.size
    wratio, hratio = w / bw, h / bh
    ratio = wratio if wratio > hratio else hratio
    if ratio > 1:
        bg = bg.resize((math.ceil(bw * ratio), math.ceil(bh * ratio)), Image.BICUBIC)
    out = bg.crop((0, 0, w, h))
    fg_px, a_px, out_px = fg.load(), alpha.load(), out.load()
    for y in range(h):
        for x in range(w):
            a = a_px[x, y] / 255
            if a >= 1:
                out_px[x, y] = tuple(fg_px[x, y][:3])
            elif a > 0:
                out_px[x, y] = tuple(int(a * fg_px[x, y][c] + (1 - a) * out_px[x, y][c])
                                     for c in range(3))
    return np.asarray(out)


def _soft_alpha_with_every_level(h, w, rng):
    """soft_alpha plus a row holding 0, 1, ..., 255 so every blend weight occurs."""
    alpha = soft_alpha(h, w, rng)
    alpha[h // 2, : min(w, 256)] = np.arange(min(w, 256))
    return alpha


@pytest.mark.parametrize(("fg_mode", "bg_size", "bg_mode"), [
    ("RGB", (23, 17), "RGB"),     # smaller than the foreground: enlarged (bicubic) and cropped
    ("RGBA", (90, 70), "L"),      # larger: cropped only; a grayscale background made RGB
    ("RGB", (61, 30), "RGB"),     # wider but shorter: enlarged by the height ratio
])
def test_adobe_rule_is_the_official_per_pixel_composition(fg_mode, bg_size, bg_mode):
    rng = np.random.default_rng(3)
    h, w = 41, 57
    channels = 4 if fg_mode == "RGBA" else 3
    fg = Image.fromarray(rng.integers(0, 256, (h, w, channels), np.uint8), fg_mode)
    alpha = Image.fromarray(_soft_alpha_with_every_level(h, w, rng), "L")
    shape = (bg_size[1], bg_size[0]) + ((3,) if bg_mode == "RGB" else ())
    bg = Image.fromarray(rng.integers(0, 256, shape, np.uint8), bg_mode)
    expected = official_composite(fg, alpha, bg)
    ours = adobe_composite(np.asarray(fg.convert("RGB")), np.asarray(alpha),
                           adobe_background(bg, h, w))
    assert ours.dtype == np.uint8 and ours.shape == (h, w, 3)
    np.testing.assert_array_equal(ours, expected)
    a = np.asarray(alpha)
    assert (a == 0).any() and (a == 255).any() and ((a > 0) & (a < 255)).any()


def test_adobe_composite_rejects_float_alpha_and_small_background():
    fg = np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(TypeError, match="uint8"):
        adobe_composite(fg, np.zeros((4, 5), np.float32), fg)
    with pytest.raises(ValueError, match="bg must cover"):
        adobe_composite(fg, np.zeros((4, 5), np.uint8), fg[:3])


@pytest.fixture
def adobe(tmp_path):
    """Foregrounds a (40x50), b (30x30), c (corrupt); 6 backgrounds, bg2 corrupt."""
    rng = np.random.default_rng(0)
    src = {k: tmp_path / k for k in ("fg", "alpha", "trimaps", "bg")}
    for d in src.values():
        d.mkdir()
    for stem, (h, w) in (("a", (40, 50)), ("b", (30, 30)), ("c", (30, 30))):
        write_png(src["fg"] / f"{stem}.png", rng.integers(0, 256, (h, w, 3), np.uint8))
        alpha = soft_alpha(h, w, rng)
        write_png(src["alpha"] / f"{stem}.png", alpha)
        write_png(src["trimaps"] / f"{stem}.png", np.where(alpha == 255, 255, 128).astype(np.uint8))
    (src["fg"] / "c.png").write_bytes(b"garbage")
    write_png(src["bg"] / "bg0.png", np.full((20, 25, 3), (10, 200, 30), np.uint8))  # too small
    for i in range(1, 6):
        write_png(src["bg"] / f"bg{i}.png", rng.integers(0, 256, (80, 90, 3), np.uint8))
    (src["bg"] / "bg2.png").write_bytes(b"garbage")
    return src


@pytest.mark.integration
def test_comp1k_recipe_with_unreadable_files(adobe, tmp_path, capsys):
    out = tmp_path / "out"
    status = _script("compose_comp1k_test").main([
        "--fg-dir", str(adobe["fg"]), "--alpha-dir", str(adobe["alpha"]),
        "--trimap-dir", str(adobe["trimaps"]), "--bg-dir", str(adobe["bg"]),
        "--out", str(out), "--bg-per-fg", "2"])
    err = capsys.readouterr().err
    assert status == 1
    assert "c.png" in err and "bg2.png" in err
    # a gets bg0, bg1; b gets bg2 (unreadable, skipped) and bg3; c is unreadable.
    for sub in ("merged", "alpha_copy", "trimaps", "fg", "bg"):
        assert sorted(p.stem for p in (out / sub).iterdir()) == ["a_0", "a_1", "b_1"]
    fg, alpha = Image.open(adobe["fg"] / "a.png"), Image.open(adobe["alpha"] / "a.png")
    for j in (0, 1):
        merged, bg = _read(out / "merged" / f"a_{j}.png"), _read(out / "bg" / f"a_{j}.png")
        assert merged.shape == bg.shape == (40, 50, 3)
        official = official_composite(fg, alpha, Image.open(adobe["bg"] / f"bg{j}.png"))
        np.testing.assert_array_equal(merged[..., ::-1], official)
        assert (out / "alpha_copy" / f"a_{j}.png").read_bytes() == (
            adobe["alpha"] / "a.png").read_bytes()
        assert (out / "trimaps" / f"a_{j}.png").read_bytes() == (
            adobe["trimaps"] / "a.png").read_bytes()
    # The small background was enlarged to cover the foreground; the large one only cropped.
    assert np.all(_read(out / "bg" / "a_0.png")[..., ::-1] == (10, 200, 30))
    assert np.array_equal(_read(out / "bg" / "a_1.png"), _read(adobe["bg"] / "bg1.png")[:40, :50])


@pytest.mark.integration
def test_comp1k_without_trimaps_makes_them_and_checks_background_count(adobe, tmp_path, capsys):
    script = _script("compose_comp1k_test")
    (adobe["fg"] / "c.png").unlink()
    out = tmp_path / "out"
    args = ["--fg-dir", str(adobe["fg"]), "--alpha-dir", str(adobe["alpha"]),
            "--bg-dir", str(adobe["bg"]), "--out", str(out), "--trimap-kernel", "5"]
    assert script.main(args + ["--bg-per-fg", "4"]) == 2  # 2 x 4 > 6 backgrounds
    assert "need 8 backgrounds" in capsys.readouterr().err
    assert script.main(args + ["--bg-per-fg", "1"]) == 0
    alpha, trimap = _read(out / "alpha_copy" / "a_0.png"), _read(out / "trimaps" / "a_0.png")
    assert {0, 128} <= set(np.unique(trimap)) <= {0, 128, 255}
    assert np.all(trimap[(alpha > 0) & (alpha < 255)] == 128)


@pytest.mark.integration
def test_uhr_composes_at_the_target_size(tmp_path, capsys):
    rng = np.random.default_rng(1)
    src = {k: tmp_path / k for k in ("fg", "alpha", "bg")}
    for d in src.values():
        d.mkdir()
    for stem, (h, w) in (("x", (40, 60)), ("y", (60, 40)), ("z", (30, 30))):
        write_png(src["fg"] / f"{stem}.png", rng.integers(0, 256, (h, w, 3), np.uint8))
        write_png(src["alpha"] / f"{stem}.png", soft_alpha(h, w, rng))
    (src["alpha"] / "z.png").write_bytes(b"garbage")
    for i in range(2):
        write_png(src["bg"] / f"bg{i}.png", rng.integers(0, 256, (50, 70, 3), np.uint8))
    out = tmp_path / "out"
    status = _script("compose_uhr").main([
        "--fg-dir", str(src["fg"]), "--alpha-dir", str(src["alpha"]), "--bg-dir", str(src["bg"]),
        "--out", str(out), "--bg-per-fg", "2", "--long-side", "90"])
    assert status == 1 and "z.png" in capsys.readouterr().err
    for sub in ("image", "alpha", "trimap", "fg", "bg"):
        assert sorted(p.stem for p in (out / sub).iterdir()) == ["x_0", "x_1", "y_0", "y_1"]
    for stem, shape in (("x_0", (60, 90)), ("y_1", (90, 60))):
        read = {sub: _read(out / sub / f"{stem}.png") for sub in ("image", "alpha", "trimap",
                                                                  "fg", "bg")}
        assert read["image"].shape[:2] == read["alpha"].shape == shape
        official = official_composite(*(Image.fromarray(read[k][..., ::-1] if k != "alpha"
                                                        else read[k]) for k in ("fg", "alpha",
                                                                                "bg")))
        np.testing.assert_array_equal(read["image"][..., ::-1], official)
        frac = (read["alpha"] > 0) & (read["alpha"] < 255)
        assert frac.any() and np.all(read["trimap"][frac] == 128)
