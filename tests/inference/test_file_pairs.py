"""Command-line input discovery: files, folders, globs and trimaps matched by stem."""

from pathlib import Path

import pytest

from mematte_d2.inference.file_pairs import list_images, pair_with_trimaps


def _touch(*paths: Path) -> None:
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


def test_file_directory_and_glob(tmp_path):
    _touch(tmp_path / "im" / "b.png", tmp_path / "im" / "a.jpg", tmp_path / "im" / "notes.txt")
    images, skipped = list_images(str(tmp_path / "im"))
    assert [p.name for p in images] == ["a.jpg", "b.png"]
    assert [(p.name, "not an image file" in why) for p, why in skipped] == [("notes.txt", True)]
    assert [p.name for p in list_images(str(tmp_path / "im" / "*.png"))[0]] == ["b.png"]
    assert list_images(str(tmp_path / "im" / "a.jpg")) == ([tmp_path / "im" / "a.jpg"], [])
    with pytest.raises(FileNotFoundError, match="nothing"):
        list_images(str(tmp_path / "nothing"))


def test_trimaps_by_stem_with_missing_and_ambiguous(tmp_path):
    _touch(*(tmp_path / "im" / n for n in ("a.jpg", "b.png", "c.png")))
    _touch(*(tmp_path / "tri" / n for n in ("a.png", "b_trimap.png", "c.png", "c.jpg")))
    jobs = pair_with_trimaps(list_images(str(tmp_path / "im"))[0], str(tmp_path / "tri"))
    assert jobs[0].trimap.name == "a.png" and jobs[0].error is None
    assert jobs[1].trimap.name == "b_trimap.png"
    assert jobs[2].trimap is None and "several trimaps match c.png" in jobs[2].error
    jobs = pair_with_trimaps([tmp_path / "im" / "zzz.png"], str(tmp_path / "tri"))
    assert "no trimap named zzz" in jobs[0].error


def test_single_trimap_file_needs_single_image(tmp_path):
    _touch(tmp_path / "a.png", tmp_path / "b.png", tmp_path / "t.png")
    with pytest.raises(ValueError, match="one file but --input names 2 images"):
        pair_with_trimaps([tmp_path / "a.png", tmp_path / "b.png"], str(tmp_path / "t.png"))


def test_folder_that_is_input_trimap_and_output_folder(tmp_path):
    """x_trimap.png is x.jpg's trimap, not an input; outputs there are skipped and reported."""
    _touch(*(tmp_path / n for n in ("x.jpg", "x_trimap.png", "x.png", "y.png", "y_alpha.png")))
    images, skipped = list_images(str(tmp_path), skip_outputs_in=tmp_path)
    assert [(p.name, "an output of this command" in why) for p, why in skipped] == [
        ("y_alpha.png", True)
    ]
    jobs = pair_with_trimaps(images, str(tmp_path))
    # x.png is not taken as x.jpg's trimap (nor x.jpg as x.png's) in the images' own folder
    assert [(j.image.name, j.trimap and j.trimap.name) for j in jobs] == [
        ("x.jpg", "x_trimap.png"), ("x.png", "x_trimap.png"), ("y.png", None)
    ]
    assert "no trimap named y_trimap.* in" in jobs[2].error


def test_glob_passes_over_non_images_and_outputs_in_the_output_folder(tmp_path):
    """A glob is sorted out as a folder is: `out/*` with `--output out` does not take the
    earlier outputs as inputs, and a text file is "not an image", not an image without trimap."""
    _touch(*(tmp_path / n for n in ("a.png", "a_alpha.png", "notes.txt")))
    _touch(tmp_path / "elsewhere" / "b_alpha.png")
    images, skipped = list_images(str(tmp_path / "*"), skip_outputs_in=tmp_path)
    assert [p.name for p in images] == ["a.png"]
    assert [(p.name, why.split(" (")[0]) for p, why in skipped] == [
        ("a_alpha.png", "an output of this command in the --output folder"),
        ("notes.txt", "not an image file"),
    ]
    # outside the output folder a name ending in _alpha is an input like any other
    images, _ = list_images(str(tmp_path / "elsewhere" / "*.png"), skip_outputs_in=tmp_path)
    assert [p.name for p in images] == ["b_alpha.png"]
