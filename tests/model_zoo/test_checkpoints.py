"""Zoo checkpoints: names resolve to cached files, downloads are atomic, Drive links explain."""

import dataclasses

import numpy as np
import pytest
import torch
from detectron2.config import instantiate
from tiny_models import MEMATTE_CONFIG, tiny_cfg

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


# ---------------------------------------------------------------- integrity of downloads
class _Server:
    """A local HTTP server on 127.0.0.1 serving `body`, announcing `length` bytes."""

    def __init__(self, body: bytes, length: int):
        import http.server
        import threading

        body_, length_ = body, length

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(length_))
                self.end_headers()
                self.wfile.write(body_)  # then the connection closes, maybe early

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/weights.pth"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(body: bytes, length: int | None = None) -> str:
        servers.append(_Server(body, len(body) if length is None else length))
        return servers[-1].url

    yield start
    for server in servers:
        server.close()


def test_a_download_cut_short_is_not_cached(cache, monkeypatch, serve):
    body = b"weights" * 5000
    _entry(monkeypatch, "test-short", serve(body[:1000], length=len(body)))
    with pytest.raises(zoo.ZooError, match=f"sent 1000 of {len(body)} bytes"):
        zoo.resolve_weights("test-short")
    assert not any(cache.iterdir())  # no partial file, no temporary file


def test_the_sha256_of_a_download_is_checked(cache, monkeypatch, serve):
    import hashlib

    body = b"weights" * 5000
    url = serve(body)
    name = "test-sha"
    entry = zoo.ZooCheckpoint(name, url, f"{name}.pth", "Composition-1K/vitmatte_s.py", "http",
                              "a test", sha256=hashlib.sha256(b"other").hexdigest())
    monkeypatch.setitem(zoo.CHECKPOINTS, name, entry)
    with pytest.raises(zoo.ZooError, match="not the published file"):
        zoo.resolve_weights(name)
    assert not any(cache.iterdir())
    monkeypatch.setitem(zoo.CHECKPOINTS, name,
                        dataclasses.replace(entry, sha256=hashlib.sha256(body).hexdigest()))
    assert zoo.resolve_weights(name).read_bytes() == body


def test_hugging_face_links_name_a_commit_where_the_hash_is_known():
    for entry in zoo.CHECKPOINTS.values():
        if "huggingface.co" in entry.url and entry.sha256:
            assert "/resolve/main/" not in entry.url, entry.name


def test_a_cache_path_that_is_a_file_is_named(tmp_path, monkeypatch, capsys):
    from mematte_d2.cli.convert_checkpoint import main as convert_main

    blocker = tmp_path / "cache_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(zoo.CACHE_ENV, str(blocker))
    _entry(monkeypatch, "test-cache", (tmp_path / "w.pth").as_uri())
    with pytest.raises(zoo.ZooError, match=f"MEMATTE_CACHE={blocker} is not a folder"):
        zoo.resolve_weights("test-cache")
    assert convert_main(["check", "test-cache", "--config-file", MEMATTE_CONFIG]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: MEMATTE_CACHE={blocker} is not a folder")
    assert err.count("\n") == 1


def test_file_urls_are_read_like_local_paths(tmp_path):
    from mematte_d2.checkpoint import load_state_dict

    path = tmp_path / "a folder" / "w 1.pth"
    path.parent.mkdir()
    torch.save({"model": {"w": torch.arange(3.0)}}, path)
    assert zoo.file_url_path(path.as_uri()) == str(path)  # "%20" decoded
    assert load_state_dict(path.as_uri())["w"].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(zoo.ZooError, match="must name a local file"):
        zoo.file_url_path("file://server/share/w.pth")
