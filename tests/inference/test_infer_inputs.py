"""Command-line input discovery: files, folders, globs and trimaps matched by stem."""

from pathlib import Path

import pytest

from mematte_d2.inference.inputs import list_images, pair_with_trimaps


def _touch(*paths: Path) -> None:
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


def test_file_directory_and_glob(tmp_path):
    _touch(tmp_path / "im" / "b.png", tmp_path / "im" / "a.jpg", tmp_path / "im" / "notes.txt")
    assert [p.name for p in list_images(str(tmp_path / "im"))] == ["a.jpg", "b.png"]
    assert [p.name for p in list_images(str(tmp_path / "im" / "*.png"))] == ["b.png"]
    assert list_images(str(tmp_path / "im" / "a.jpg")) == [tmp_path / "im" / "a.jpg"]
    with pytest.raises(FileNotFoundError, match="nothing"):
        list_images(str(tmp_path / "nothing"))


def test_trimaps_by_stem_with_missing_and_ambiguous(tmp_path):
    _touch(*(tmp_path / "im" / n for n in ("a.jpg", "b.png", "c.png")))
    _touch(*(tmp_path / "tri" / n for n in ("a.png", "b_trimap.png", "c.png", "c.jpg")))
    jobs = pair_with_trimaps(list_images(str(tmp_path / "im")), str(tmp_path / "tri"))
    assert jobs[0].trimap.name == "a.png" and jobs[0].error is None
    assert jobs[1].trimap.name == "b_trimap.png"
    assert jobs[2].trimap is None and "several trimaps match c.png" in jobs[2].error
    jobs = pair_with_trimaps([tmp_path / "im" / "zzz.png"], str(tmp_path / "tri"))
    assert "no trimap named zzz" in jobs[0].error


def test_single_trimap_file_needs_single_image(tmp_path):
    _touch(tmp_path / "a.png", tmp_path / "b.png", tmp_path / "t.png")
    with pytest.raises(ValueError, match="one file but --input names 2 images"):
        pair_with_trimaps([tmp_path / "a.png", tmp_path / "b.png"], str(tmp_path / "t.png"))
