"""The synthetic set: deterministic files, realistic mattes, a consistent test split, safe setup."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from data_samples import unique_name
from detectron2.data import DatasetCatalog

from mematte_d2.data import register_matting_dataset
from mematte_d2.data import synthetic as syn
from mematte_d2.data.builtin import builtin_dataset_args

SMALL = dict(num_train=6, num_bg=3, num_test=3, size=160, test_size=128)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    return syn.generate_synthetic_dataset(tmp_path_factory.mktemp("syn") / "a", **SMALL, seed=0)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _alphas(root: Path, split="train") -> list[np.ndarray]:
    sub = "train/alpha" if split == "train" else "test/alpha"
    return [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted((root / sub).iterdir())]


def test_same_seed_same_bytes_other_seed_other_files(small_set, tmp_path):
    again = syn.generate_synthetic_dataset(tmp_path / "b", **SMALL, seed=0)
    other = syn.generate_synthetic_dataset(tmp_path / "c", **SMALL, seed=1)
    files = _files(small_set)
    assert len(files) == 6 * 2 + 3 + 3 * 5 + 1
    assert files == _files(again)
    other_files = _files(other)
    assert files.keys() == other_files.keys()
    assert all(files[k] != other_files[k] for k in files if k.endswith(".png"))
    assert not list(tmp_path.glob(".*partial*"))  # the temporary folders are gone


def test_mattes_have_soft_regions_thin_strands_and_holes(small_set):
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    with_holes = with_strands = 0
    alphas = _alphas(small_set) + _alphas(small_set, "test")
    for alpha in alphas:
        frac = (alpha > 0) & (alpha < 255)
        assert frac.mean() > 0.02, "too little semi-transparency"
        # Strands: fractional pixels of structures an opening with a 5 px disc removes (< 5 px);
        # motion blur may widen them in some mattes.
        support = (alpha > 0).astype(np.uint8)
        thin = (support > 0) & (cv2.morphologyEx(support, cv2.MORPH_OPEN, disc) == 0)
        with_strands += (thin & frac).sum() > 50
        # Holes: transparent-ish regions enclosed by the opaque body (not by hair loops).
        n, labels, stats, _ = cv2.connectedComponentsWithStats((alpha < 128).astype(np.uint8), 4)
        for k in range(1, n):
            x, y, w, h, area = stats[k]
            inside = x > 0 and y > 0 and x + w < alpha.shape[1] and y + h < alpha.shape[0]
            if not inside or area < 20:
                continue
            ring = cv2.dilate((labels == k).astype(np.uint8), disc) > 0
            ring &= labels != k
            if np.mean(alpha[ring] > 200) > 0.8:
                with_holes += 1
                break
    assert with_strands >= 0.6 * len(alphas) and with_holes >= 0.5 * len(alphas)


def test_test_split_is_a_consistent_composite(small_set):
    names = sorted(p.name for p in (small_set / "test" / "image").iterdir())
    assert len(names) == 3
    for name in names:
        read = {sub: cv2.imread(str(small_set / "test" / sub / name), cv2.IMREAD_UNCHANGED)
                for sub in ("image", "alpha", "trimap", "fg", "bg")}
        assert read["image"].shape == (128, 128, 3)
        a = read["alpha"][..., None] / 255.0
        expected = read["fg"] * a + read["bg"] * (1 - a)
        assert np.abs(read["image"] - expected).max() <= 0.51
        trimap, alpha = read["trimap"], read["alpha"]
        assert set(np.unique(trimap)) == {0, 128, 255}
        assert np.all(trimap[(alpha > 0) & (alpha < 255)] == 128)
        assert np.all(alpha[trimap == 255] == 255) and np.all(alpha[trimap == 0] == 0)


def test_manifest_and_registration_as_the_builtins(small_set):
    manifest = json.loads((small_set / syn.MANIFEST).read_text())
    assert manifest["params"] == {**SMALL, "seed": 0}
    assert len(manifest["train"]["fg"]) == 6 and len(manifest["test"]) == 3
    root = small_set.parent
    small_set.rename(root / "synthetic")
    try:
        train, test = unique_name("syn_train"), unique_name("syn_test")
        register_matting_dataset(train, **builtin_dataset_args("synthetic_train", root))
        register_matting_dataset(test, **builtin_dataset_args("synthetic_test", root))
        assert len(DatasetCatalog.get(train)) == 6 * builtin_dataset_args(
            "synthetic_train")["bg_per_fg"]
        assert len(DatasetCatalog.get(test)) == 3
    finally:
        (root / "synthetic").rename(small_set)


def test_ensure_generates_once_and_refuses_foreign_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(syn, "DEFAULTS", {**SMALL, "num_train": 2, "num_test": 1, "seed": 0})
    (tmp_path / ".synthetic.partial-stale").mkdir()  # left over by an interrupted run
    root = syn.ensure_synthetic_dataset(tmp_path / "synthetic")
    manifest = root / syn.MANIFEST
    stamp = manifest.stat().st_mtime_ns
    assert syn.ensure_synthetic_dataset(root) == root and manifest.stat().st_mtime_ns == stamp
    assert len(list((root / "train" / "fg").iterdir())) == 2

    (tmp_path / "empty").mkdir()
    assert (syn.ensure_synthetic_dataset(tmp_path / "empty") / syn.MANIFEST).is_file()
    half = tmp_path / "half"
    (half / "train").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="no manifest.json"):
        syn.ensure_synthetic_dataset(half)


def test_cli_refuses_an_existing_folder(small_set, capsys):
    assert syn.main(["--out", str(small_set)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert syn.main(["--out", str(small_set.parent / "x"), "--size", "8"]) == 2
