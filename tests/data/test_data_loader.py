"""Mappers and loaders: batches in the model's I/O contract, seeding, DDP shards, bad files."""

import itertools
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from data_samples import unique_name, write_composition_set, write_evaluation_set
from detectron2.data import DatasetCatalog
from detectron2.utils.env import seed_all_rng

from mematte_d2.data import (
    MattingTestMapper,
    MattingTrainMapper,
    build_matting_test_loader,
    build_matting_train_loader,
    register_matting_dataset,
)
from mematte_d2.utils.image_io import ImageReadError, write_png

CROP = 48


@pytest.fixture
def train_set(tmp_path):
    name = unique_name("train")
    register_matting_dataset(name, **write_composition_set(tmp_path, n_fg=4, n_bg=3), bg_per_fg=2)
    return name


def _batches(name, seed, n=2, num_workers=0, loader_seed=None):
    seed_all_rng(seed)
    loader = build_matting_train_loader(
        dataset=name, mapper=MattingTrainMapper(dataset_names=name, crop_size=CROP),
        total_batch_size=4, num_workers=num_workers, seed=loader_seed)
    return list(itertools.islice(iter(loader), n))


def test_train_batches_follow_the_model_contract(train_set):
    for batch in _batches(train_set, seed=0, n=3):
        assert isinstance(batch, list) and len(batch) == 4
        for d in batch:
            assert set(d) == {"image", "trimap", "alpha", "image_id"}
            assert d["image"].shape == (3, CROP, CROP) and d["image"].dtype == torch.float32
            assert d["trimap"].shape == d["alpha"].shape == (1, CROP, CROP)
            assert 0 <= d["image"].min() and d["image"].max() <= 255
            assert 0 <= d["alpha"].min() and d["alpha"].max() <= 1
            assert set(d["trimap"].unique().tolist()) <= {0.0, 128.0, 255.0}
            # As in the release, the trimap is drawn on a 640 x 640 copy of the alpha and
            # resized back: it follows the alpha closely, not pixel for pixel.
            assert (d["trimap"] == 128).any()
            fg, bg = d["trimap"] == 255, d["trimap"] == 0
            assert not fg.any() or d["alpha"][fg].mean() > 0.9
            assert not bg.any() or d["alpha"][bg].mean() < 0.1


def _same(a, b):
    return all(x["image_id"] == y["image_id"] and all(torch.equal(x[k], y[k]) for k in
               ("image", "trimap", "alpha")) for x, y in zip(a, b, strict=True))


def test_identical_seeds_give_identical_batches(train_set):
    first, again, other = (list(itertools.chain(*_batches(train_set, s))) for s in (5, 5, 6))
    assert _same(first, again)
    assert not _same(first, other)


def test_identical_seeds_with_workers(train_set):
    first = list(itertools.chain(*_batches(train_set, 1, num_workers=2, loader_seed=3)))
    again = list(itertools.chain(*_batches(train_set, 1, num_workers=2, loader_seed=3)))
    assert _same(first, again)


def test_ddp_ranks_see_different_samples(train_set, monkeypatch):
    from detectron2.data import build as d2_build
    from detectron2.utils import comm

    seen = {}
    for rank in (0, 1):
        monkeypatch.setattr(comm, "get_rank", lambda r=rank: r)
        monkeypatch.setattr(comm, "get_world_size", lambda: 2)
        monkeypatch.setattr(d2_build, "get_world_size", lambda: 2)
        loader = build_matting_train_loader(dataset=train_set, mapper=lambda d: d["image_id"],
                                            total_batch_size=4, seed=11)
        batches = list(itertools.islice(iter(loader), 2))
        assert all(len(b) == 2 for b in batches)  # 4 per step over 2 ranks
        seen[rank] = [i for b in batches for i in b]
    # One shared shuffle of the 8 samples, split between the ranks: together one epoch.
    assert set(seen[0]).isdisjoint(seen[1])
    assert sorted(seen[0] + seen[1]) == sorted(d["image_id"] for d in DatasetCatalog.get(train_set))
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        build_matting_train_loader(dataset=train_set, mapper=lambda d: d, total_batch_size=3)


def test_train_mapper_names_bad_files(tmp_path):
    dirs = write_composition_set(tmp_path, n_fg=1, n_bg=1)
    alpha_file = Path(dirs["alpha_dir"]) / "obj0.png"
    write_png(alpha_file, np.zeros((41, 56), np.uint8))
    name = unique_name("mismatch")
    register_matting_dataset(name, **dirs)
    (record,) = DatasetCatalog.get(name)
    mapper = MattingTrainMapper(dataset_names=None, crop_size=CROP)
    with pytest.raises(ValueError, match=r"obj0\.png is 40x56.*obj0\.png is 41x56"):
        mapper(record)

    alpha_file.write_bytes(b"\x89PNG broken")
    with pytest.raises(ImageReadError, match=r"alpha/obj0\.png: not a readable image"):
        mapper(record)

    write_png(alpha_file, np.zeros((40, 56), np.uint8))
    assert mapper(record)["image"].shape == (3, CROP, CROP)
    os.remove(record["bg_file"])
    with pytest.raises(ImageReadError, match=r"bg0\.jpg: no such file"):
        mapper(record)


def test_test_mapper_full_resolution_and_trimap_codes(tmp_path):
    dirs = write_evaluation_set(tmp_path, n=2, size=(37, 53))
    # A 16-bit alpha reads as value / 65535.
    alpha16 = np.full((37, 53), 65535, np.uint16)
    alpha16[:, :10] = 32768
    write_png(Path(dirs["alpha_dir"]) / "im1.png", alpha16)
    name = unique_name("test")
    register_matting_dataset(name, **dirs)
    out = list(build_matting_test_loader(dataset=name))
    assert [b[0]["image_id"] for b in out] == ["im0", "im1"]
    for (d,) in out:
        assert d["image"].shape == (3, 37, 53) and (d["height"], d["width"]) == (37, 53)
        assert d["trimap"].shape == d["alpha"].shape == (1, 37, 53)
        assert set(d["trimap"].unique().tolist()) <= {0.0, 128.0, 255.0}
        assert d["trimap"][0, 0, 0] == 255  # stored as 200
        file_image = cv2.imread(d["file_name"])[:, :, ::-1]
        assert np.array_equal(d["image"].permute(1, 2, 0).numpy(), file_image.astype(np.float32))
    stored = cv2.imread(str(Path(dirs["trimap_dir"]) / "im0.png"), 0)
    assert torch.all(out[0][0]["trimap"][0][torch.from_numpy(stored == 100)] == 128)
    alpha0 = cv2.imread(str(Path(dirs["alpha_dir"]) / "im0.png"), 0) / 255.0
    np.testing.assert_allclose(out[0][0]["alpha"][0].numpy(), alpha0, atol=1e-6)
    np.testing.assert_allclose(out[1][0]["alpha"][0, 0, :10].numpy(), 32768 / 65535, atol=1e-6)


def test_test_mapper_rejects_size_mismatch(tmp_path):
    dirs = write_evaluation_set(tmp_path, n=1, size=(37, 53))
    write_png(Path(dirs["trimap_dir"]) / "im0.png", np.zeros((37, 52), np.uint8))
    name = unique_name("badtest")
    register_matting_dataset(name, **dirs)
    with pytest.raises(ValueError, match=r"trimap/im0\.png is 37x52"):
        MattingTestMapper()(DatasetCatalog.get(name)[0])


def test_custom_set_trains_and_evaluates_through_config_overrides(tmp_path):
    from detectron2.config import LazyCall as L
    from detectron2.config import LazyConfig, instantiate
    from omegaconf import OmegaConf

    train, test = unique_name("cfg_train"), unique_name("cfg_test")
    register_matting_dataset(train, **write_composition_set(tmp_path / "tr"), bg_per_fg=2)
    register_matting_dataset(test, **write_evaluation_set(tmp_path / "te"))
    dataloader = OmegaConf.create()
    dataloader.train = L(build_matting_train_loader)(
        dataset="synthetic_train",
        mapper=L(MattingTrainMapper)(dataset_names="synthetic_train", crop_size=512),
        total_batch_size=16, num_workers=4)
    dataloader.test = L(build_matting_test_loader)(dataset="synthetic_test", num_workers=4)
    cfg = OmegaConf.create({"dataloader": dataloader})
    cfg = LazyConfig.apply_overrides(cfg, [
        f"dataloader.train.dataset={train}", f"dataloader.train.mapper.dataset_names={train}",
        f"dataloader.train.mapper.crop_size={CROP}", "dataloader.train.total_batch_size=2",
        "dataloader.train.num_workers=0", f"dataloader.test.dataset={test}",
        "dataloader.test.num_workers=0"])
    (batch,) = itertools.islice(iter(instantiate(cfg.dataloader.train)), 1)
    assert len(batch) == 2 and batch[0]["image"].shape == (3, CROP, CROP)
    assert [b[0]["image_id"] for b in instantiate(cfg.dataloader.test)] == ["im0", "im1"]
