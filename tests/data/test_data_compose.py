"""datasets/compose_*.py on tiny folders, including unreadable files."""

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
from data_samples import soft_alpha

from mematte_d2.inference.io import write_png

DATASETS = Path(__file__).resolve().parents[2] / "datasets"


def _script(name):
    spec = importlib.util.spec_from_file_location(f"_script_{name}", DATASETS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


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
    fg, alpha = _read(adobe["fg"] / "a.png"), _read(adobe["alpha"] / "a.png")
    for j in (0, 1):
        merged, bg = _read(out / "merged" / f"a_{j}.png"), _read(out / "bg" / f"a_{j}.png")
        assert merged.shape == bg.shape == (40, 50, 3)
        a = alpha[..., None] / 255.0
        assert np.abs(merged - (fg * a + bg * (1 - a))).max() <= 0.51
        assert (out / "alpha_copy" / f"a_{j}.png").read_bytes() == (
            adobe["alpha"] / "a.png").read_bytes()
        assert (out / "trimaps" / f"a_{j}.png").read_bytes() == (
            adobe["trimaps"] / "a.png").read_bytes()
    # The small background was enlarged to cover the foreground; the large one only cropped.
    assert np.all(_read(out / "bg" / "a_0.png")[..., ::-1] == (10, 200, 30))
    assert np.array_equal(_read(out / "bg" / "a_1.png"), _read(adobe["bg"] / "bg1.png")[:40, :50])


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
        a = read["alpha"][..., None] / 255.0
        assert np.abs(read["image"] - (read["fg"] * a + read["bg"] * (1 - a))).max() <= 0.51
        frac = (read["alpha"] > 0) & (read["alpha"] < 255)
        assert frac.any() and np.all(read["trimap"][frac] == 128)
