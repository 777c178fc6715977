"""Data set registration: dict contents, metadata, idempotence, clashes and missing files."""

import os
from pathlib import Path

import pytest
from data_samples import unique_name, write_composition_set, write_evaluation_set
from detectron2.data import DatasetCatalog, MetadataCatalog

from mematte_d2.data import (
    get_matting_dataset_dicts,
    register_composition_dataset,
    register_evaluation_dataset,
    register_matting_dataset,
)
from mematte_d2.data.builtin import BUILTIN_DATASETS, builtin_dataset_args
from mematte_d2.utils.image_io import ImageReadError


def test_composition_dicts_pair_each_foreground_with_its_backgrounds(tmp_path):
    dirs = write_composition_set(tmp_path, n_fg=3, n_bg=2)
    name = unique_name("comp")
    register_matting_dataset(name, **dirs, bg_per_fg=3)
    dicts = DatasetCatalog.get(name)
    assert len(dicts) == 9
    assert all(set(d) == {"fg_file", "alpha_file", "bg_file", "image_id"} for d in dicts)
    assert len({d["image_id"] for d in dicts}) == 9
    bgs = sorted(str(p) for p in Path(dirs["bg_dir"]).iterdir())
    for i, stem in enumerate(["obj0", "obj1", "obj2"]):
        mine = [d for d in dicts if Path(d["fg_file"]).stem == stem]
        assert [Path(d["alpha_file"]).name for d in mine] == [f"{stem}.png"] * 3
        # Backgrounds are handed out in order, wrapping around.
        assert [d["bg_file"] for d in mine] == [bgs[(3 * i + j) % 2] for j in range(3)]
    meta = MetadataCatalog.get(name)
    assert (meta.evaluator_type, meta.kind, meta.eval_region) == ("matting", "composition",
                                                                  "unknown")
    assert (meta.fg_dir, meta.alpha_dir, meta.bg_dir, meta.bg_per_fg) == (
        dirs["fg_dir"], dirs["alpha_dir"], dirs["bg_dir"], 3)


def test_composition_dicts_by_default_pair_one_sample_per_background(tmp_path):
    """The release's pairing: an epoch is #backgrounds samples, sample i pairing background i
    with foreground i mod #foregrounds."""
    dirs = write_composition_set(tmp_path, n_fg=3, n_bg=7)
    name = unique_name("release_pairing")
    register_matting_dataset(name, **dirs)
    dicts = DatasetCatalog.get(name)
    bgs = sorted(str(p) for p in Path(dirs["bg_dir"]).iterdir())
    assert [d["bg_file"] for d in dicts] == bgs
    assert [Path(d["fg_file"]).stem for d in dicts] == [f"obj{i % 3}" for i in range(7)]
    assert all(Path(d["alpha_file"]).stem == Path(d["fg_file"]).stem for d in dicts)
    assert len({d["image_id"] for d in dicts}) == 7
    assert MetadataCatalog.get(name).bg_per_fg is None
    for builtin in ("comp1k_train", "d646_train", "uhr395_train"):
        assert "bg_per_fg" not in BUILTIN_DATASETS[builtin]
    with pytest.raises(ValueError, match="None or a positive int"):
        register_composition_dataset(unique_name("bad"), **dirs, bg_per_fg=0)


def test_evaluation_dicts_have_sizes_and_metadata(tmp_path):
    dirs = write_evaluation_set(tmp_path, n=2, size=(37, 53))
    name = unique_name("eval")
    register_matting_dataset(name, **dirs, eval_region="whole")
    dicts = DatasetCatalog.get(name)
    assert [d["image_id"] for d in dicts] == ["im0", "im1"]
    for d in dicts:
        assert (d["height"], d["width"]) == (37, 53)
        assert Path(d["trimap_file"]).parent == Path(dirs["trimap_dir"])
        assert "fg_file" not in d
    meta = MetadataCatalog.get(name)
    assert (meta.evaluator_type, meta.kind, meta.eval_region) == ("matting", "evaluation", "whole")
    assert meta.image_dir == dirs["image_dir"] and meta.fg_dir is None


def test_same_definition_twice_is_fine_a_different_one_raises(tmp_path):
    dirs = write_composition_set(tmp_path)
    name = unique_name("twice")
    register_composition_dataset(name, **dirs, bg_per_fg=2)
    register_matting_dataset(name, **dirs, bg_per_fg=2)
    assert len(DatasetCatalog.get(name)) == 6
    with pytest.raises(ValueError, match="different definition"):
        register_composition_dataset(name, **dirs, bg_per_fg=5)
    other = unique_name("foreign")
    DatasetCatalog.register(other, list)
    with pytest.raises(ValueError, match="already registered"):
        register_evaluation_dataset(other, tmp_path, tmp_path, tmp_path)


def test_bad_arguments_are_rejected_at_registration(tmp_path):
    with pytest.raises(TypeError, match="image_dir, alpha_dir, trimap_dir"):
        register_matting_dataset(unique_name("bad"), fg_dir=tmp_path, alpha_dir=tmp_path)
    with pytest.raises(ValueError, match="eval_region"):
        register_evaluation_dataset(unique_name("bad"), tmp_path, tmp_path, tmp_path,
                                    eval_region="border")
    with pytest.raises(ValueError, match="bg_per_fg"):
        register_composition_dataset(unique_name("bad"), tmp_path, tmp_path, tmp_path,
                                     bg_per_fg=0)


def test_missing_partner_files_are_named(tmp_path):
    dirs = write_evaluation_set(tmp_path, n=2)
    os.remove(Path(dirs["trimap_dir"]) / "im1.png")
    name = unique_name("notrimap")
    register_matting_dataset(name, **dirs)
    with pytest.raises(FileNotFoundError, match=r"im1\.png: no trimap file named im1\.\*"):
        DatasetCatalog.get(name)

    comp = write_composition_set(tmp_path / "c")
    os.rename(Path(comp["fg_dir"]) / "obj1.png", tmp_path / "obj1.png")
    name = unique_name("nofg")
    register_matting_dataset(name, **comp)
    with pytest.raises(FileNotFoundError, match=r"no partner .*obj1\.png"):
        DatasetCatalog.get(name)


def test_missing_folder_and_corrupt_image_are_named(tmp_path):
    name = unique_name("nodir")
    register_matting_dataset(name, image_dir=tmp_path / "nope", alpha_dir=tmp_path,
                             trimap_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"image_dir=.*nope.*datasets/README\.md"):
        DatasetCatalog.get(name)

    dirs = write_evaluation_set(tmp_path / "e", n=1)
    (Path(dirs["image_dir"]) / "im0.png").write_bytes(b"not a png")
    name = unique_name("corrupt")
    register_matting_dataset(name, **dirs)
    with pytest.raises(ImageReadError, match=r"im0\.png"):
        DatasetCatalog.get(name)


def test_builtins_are_registered_and_name_their_expected_folders(tmp_path, monkeypatch):
    for name in BUILTIN_DATASETS:
        assert name in DatasetCatalog
        assert MetadataCatalog.get(name).evaluator_type == "matting"
    assert {"comp1k_train", "comp1k_test", "d646_train", "d646_test", "aim500_test",
            "uhr395_train", "uhr395_test", "synthetic_train", "synthetic_test"} <= set(
        BUILTIN_DATASETS)

    # A builtin layout under an empty root: loading names every expected folder.
    name = unique_name("c1k")
    register_matting_dataset(name, **builtin_dataset_args("comp1k_test", tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        DatasetCatalog.get(name)
    for sub in ("merged", "alpha_copy", "trimaps"):
        assert str(tmp_path / "Composition-1k-testset" / sub) in str(err.value)
    assert "datasets/README.md" in str(err.value)

    # The registered builtin itself, from a working directory without data.
    if os.path.isabs(MetadataCatalog.get("aim500_test").image_dir):
        pytest.skip("$MEMATTE_DATASETS is absolute in this environment")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"AIM-500/original"):
        DatasetCatalog.get("aim500_test")


def test_dataset_specs_names_lists_and_dicts(tmp_path):
    a, b = unique_name("a"), unique_name("b")
    register_matting_dataset(a, **write_composition_set(tmp_path / "a", n_fg=2))
    register_matting_dataset(b, **write_composition_set(tmp_path / "b", n_fg=1))
    both = get_matting_dataset_dicts([a, b])
    assert len(both) == 4 and both[:2] == DatasetCatalog.get(a)  # one per background
    assert get_matting_dataset_dicts(both) == both
    with pytest.raises(TypeError):
        get_matting_dataset_dicts([a, {"fg_file": "x"}])
    with pytest.raises(KeyError):
        get_matting_dataset_dicts("never_registered_set")
