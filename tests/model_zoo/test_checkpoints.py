"""Zoo checkpoints: names resolve to cached files, downloads are atomic, Drive links explain."""

import numpy as np
import pytest
import torch
from detectron2.config import instantiate
from tiny_models import tiny_cfg

from mematte_d2 import model_zoo
from mematte_d2.inference import MattingPredictor
from mematte_d2.model_zoo import checkpoints as zoo


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(zoo.CACHE_ENV, str(folder))
    return folder


def _entry(monkeypatch, name: str, url: str, fetch: str = "http") -> zoo.ZooCheckpoint:
    entry = zoo.ZooCheckpoint(name, url, f"{name}.pth", "Composition-1K/vitmatte_s.py", fetch,
                              "a test")
    monkeypatch.setitem(zoo.CHECKPOINTS, name, entry)
    return entry


def test_a_name_is_downloaded_once_into_the_cache(tmp_path, cache, monkeypatch):
    source = tmp_path / "published.pth"
    source.write_bytes(b"weights" * 1000)
    _entry(monkeypatch, "test-http", source.as_uri())
    path = zoo.resolve_weights("test-http")
    assert path == cache / "test-http.pth" and path.read_bytes() == source.read_bytes()
    source.unlink()  # a second call reads the cache and does not download again
    assert zoo.resolve_weights("test-http") == path
    assert sorted(p.name for p in cache.iterdir()) == ["test-http.pth"]


def test_a_failed_download_leaves_nothing_in_the_cache(tmp_path, cache, monkeypatch):
    _entry(monkeypatch, "test-missing", (tmp_path / "absent.pth").as_uri())
    with pytest.raises(zoo.ZooError, match="test-missing: download of .*absent.pth"):
        zoo.resolve_weights("test-missing")
    assert not cache.exists() or not any(cache.iterdir())


def test_a_drive_link_names_the_link_and_the_file_to_save(cache, monkeypatch):
    entry = _entry(monkeypatch, "test-drive", "https://drive.google.com/file/d/x/view", "manual")
    with pytest.raises(zoo.ZooError) as info:
        zoo.resolve_weights("test-drive")
    assert entry.url in str(info.value) and str(cache / entry.file_name) in str(info.value)
    cache.mkdir()
    (cache / entry.file_name).write_bytes(b"saved by hand")
    assert zoo.resolve_weights("test-drive") == cache / entry.file_name


def test_paths_pass_through_and_unknown_names_are_listed(tmp_path):
    assert zoo.resolve_weights(tmp_path / "w.pth") == tmp_path / "w.pth"
    assert zoo.resolve_weights("file:///a//b.pth") == "file:///a//b.pth"
    with pytest.raises(zoo.ZooError, match="MEMatte-S-Composition-1K"):
        zoo.get_checkpoint_url("MEMatte-S-Nope")


def test_cache_location_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(zoo.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert zoo.cache_dir() == tmp_path / "mematte_d2"
    monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path / "mine"))
    assert zoo.cache_dir() == tmp_path / "mine"


def test_every_released_checkpoint_names_a_shipped_recipe_and_a_unique_file():
    entries = list(zoo.CHECKPOINTS.values())
    assert {e.name for e in entries} >= {"MEMatte-S-Composition-1K", "MEMatte-B-Composition-1K",
                                         "ViTMatte-S-Composition-1K", "ViTMatte-B-Composition-1K"}
    for e in entries:
        assert model_zoo.get_config(e.config).model is not None, e
        assert e.url.startswith("https://")
        assert (e.fetch == "manual") == ("drive.google.com" in e.url), e
    assert len({e.file_name for e in entries}) == len(entries)
    with pytest.raises(ValueError, match="already registered"):
        zoo.register_checkpoint(entries[0])


def test_the_predictor_loads_weights_by_zoo_name(tmp_path, cache, monkeypatch):
    torch.manual_seed(3)
    published = tmp_path / "tiny.pth"
    torch.save({"model": instantiate(tiny_cfg().model).state_dict()}, published)
    _entry(monkeypatch, "test-tiny", published.as_uri())
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    trimap = np.full((40, 48), 128, np.uint8)
    by_name = MattingPredictor(tiny_cfg(), "test-tiny", device="cpu")(image, trimap)
    by_path = MattingPredictor(tiny_cfg(), str(published), device="cpu")(image, trimap)
    np.testing.assert_array_equal(by_name, by_path)
    assert (cache / "test-tiny.pth").is_file()
