"""Released checkpoints this project loads, by name, and a download cache for them.

``resolve_weights("MEMatte-S-Composition-1K")`` returns the cached file, downloading it first
when its link is plain HTTP(S) (or ``file://``). Google Drive links need a browser (virus-scan
and quota pages stand between the link and the file), so for those the error says which link
to open and where to put the file. Every format listed loads through
:func:`mematte_d2.checkpoint.load_state_dict` (transformers' VitMatte layout is converted on load).

A download is cached only when complete: as many bytes as the server's Content-Length, and the
SHA-256 the entry records (where it records one). Hugging Face links name a commit, not the
mutable ``main`` branch, where the commit of the recorded file is known.
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from mematte_d2.checkpoint.errors import CheckpointError
from mematte_d2.utils.atomic import atomic_write

CACHE_ENV = "MEMATTE_CACHE"


@dataclass(frozen=True)
class ZooCheckpoint:
    """One released checkpoint.

    ``url``: where it is published; ``file_name``: its name in the cache; ``config``: the recipe
    it fits (for ``model_zoo.get_config``); ``fetch``: "http" if ``url`` serves the file itself,
    "manual" if a person must download it (Google Drive); ``source``: who released it;
    ``sha256``: the file's SHA-256 in hex, checked after each download (None where unknown).
    """

    name: str
    url: str
    file_name: str
    config: str
    fetch: str
    source: str
    sha256: str | None = None


_DRIVE = "https://drive.google.com/file/d/{}/view"
_HF = "https://huggingface.co/hustvl/{}/resolve/{}/{}"
# Commits of the hustvl repositories whose files have the SHA-256 recorded below; the
# distinctions-646 ones are not known here yet and still follow the mutable main branch.
_HF_SMALL_COM = "6a58ad7646403c1df626fbd746900aec7361ea1d"
_HF_BASE_COM = "bf486d01a7d9e3dbcc8400f7942835caf0eaf76e"
_HF_UNPINNED = "main"

CHECKPOINTS: dict[str, ZooCheckpoint] = {}


def register_checkpoint(entry: ZooCheckpoint) -> None:
    """Add ``entry`` to the table (a name may be registered once)."""
    if entry.fetch not in ("http", "manual"):
        raise ValueError(f"{entry.name}: fetch must be 'http' or 'manual', got {entry.fetch!r}")
    if entry.name in CHECKPOINTS:
        raise ValueError(f"checkpoint {entry.name!r} is already registered")
    CHECKPOINTS[entry.name] = entry


for _entry in (
    ZooCheckpoint("MEMatte-S-Composition-1K", _DRIVE.format("122p3sdhJVb7vg4IXELeC9C3HEG9Mlh5z"),
                  "MEMatte_ViTS_Com.pth", "Composition-1K/mematte_s_topk0.25.py", "manual",
                  "MEMatte authors (linyiheng123/MEMatte)"),
    ZooCheckpoint("MEMatte-B-Composition-1K", _DRIVE.format("1NOV64zMSFtoKPASqvEvxQKI_PRY9m5IA"),
                  "MEMatte_ViTB_Com.pth", "Composition-1K/mematte_b_topk0.25.py", "manual",
                  "MEMatte authors (linyiheng123/MEMatte)"),
    ZooCheckpoint("MEMatte-S-DIM-mixed", _DRIVE.format("1R5NbgIpOudKjvLz1V9M9SxXr1ovAmu3u"),
                  "MEMatte_ViTS_DIM.pth", "AIM-500/mematte_s_topk0.25_eval.py", "manual",
                  "MEMatte authors (linyiheng123/MEMatte), trained on mixed data for AIM-500"),
    ZooCheckpoint("ViTMatte-S-Composition-1K", _DRIVE.format("12VKhSwE_miF9lWQQCgK7mv83rJIls3Xe"),
                  "ViTMatte_S_Com.pth", "Composition-1K/vitmatte_s.py", "manual",
                  "ViTMatte authors (hustvl/ViTMatte)"),
    ZooCheckpoint("ViTMatte-B-Composition-1K", _DRIVE.format("1mOO5MMU4kwhNX96AlfpwjAoMM4V5w3k-"),
                  "ViTMatte_B_Com.pth", "Composition-1K/vitmatte_b.py", "manual",
                  "ViTMatte authors (hustvl/ViTMatte)"),
    ZooCheckpoint("hf-vitmatte-small-composition-1k",
                  _HF.format("vitmatte-small-composition-1k", _HF_SMALL_COM, "model.safetensors"),
                  "hf-vitmatte-small-composition-1k.safetensors", "Composition-1K/vitmatte_s.py",
                  "http", "transformers' VitMatte (hustvl on the Hugging Face hub)",
                  "bda9289db1bb6762d978b42d1c62ae3f34daf7497171a347a1d09657efd788cb"),
    ZooCheckpoint("hf-vitmatte-base-composition-1k",
                  _HF.format("vitmatte-base-composition-1k", _HF_BASE_COM, "pytorch_model.bin"),
                  "hf-vitmatte-base-composition-1k.bin", "Composition-1K/vitmatte_b.py",
                  "http", "transformers' VitMatte (hustvl on the Hugging Face hub)",
                  "b2521bcc4b719fb24611c39605b6642162fd7502e69b3cc846506ca921757b41"),
    ZooCheckpoint("hf-vitmatte-small-distinctions-646",
                  _HF.format("vitmatte-small-distinctions-646", _HF_UNPINNED, "model.safetensors"),
                  "hf-vitmatte-small-distinctions-646.safetensors", "Composition-1K/vitmatte_s.py",
                  "http", "transformers' VitMatte (hustvl on the Hugging Face hub)"),
    ZooCheckpoint("hf-vitmatte-base-distinctions-646",
                  _HF.format("vitmatte-base-distinctions-646", _HF_UNPINNED, "model.safetensors"),
                  "hf-vitmatte-base-distinctions-646.safetensors", "Composition-1K/vitmatte_b.py",
                  "http", "transformers' VitMatte (hustvl on the Hugging Face hub)"),
):
    register_checkpoint(_entry)


class ZooError(CheckpointError):
    """A zoo checkpoint is unknown, cannot be downloaded here, or its download failed (a
    CheckpointError, so every program reports it as a bad weights file)."""


def cache_dir() -> Path:
    """``$MEMATTE_CACHE``, else ``$XDG_CACHE_HOME/mematte_d2``, else ``~/.cache/mematte_d2``.

    Raises ZooError when the path exists and is not a folder.
    """
    if os.environ.get(CACHE_ENV):
        folder, origin = Path(os.environ[CACHE_ENV]).expanduser(), f"{CACHE_ENV}="
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        folder, origin = Path(base) / "mematte_d2", "the cache folder "
    if folder.exists() and not folder.is_dir():
        raise ZooError(f"{origin}{folder} is not a folder (set {CACHE_ENV} to a folder)")
    return folder


def get_checkpoint_url(name: str) -> str:
    """The public link of a zoo checkpoint."""
    return _entry_of(name).url


def _entry_of(name: str) -> ZooCheckpoint:
    if name not in CHECKPOINTS:
        raise ZooError(f"unknown zoo checkpoint {name!r}; known: {', '.join(CHECKPOINTS)}")
    return CHECKPOINTS[name]


def _download(url: str, target: Path, sha256: str | None = None) -> None:
    """Fetch `url` into `target` atomically; a short read or a wrong SHA-256 raises ZooError
    and leaves `target` as it was (no partial file)."""

    def write(out) -> None:
        digest, received = hashlib.sha256(), 0
        with urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=target.name) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if total is not None and received != total:
            raise ZooError(f"the server sent {received} of {total} bytes (connection closed "
                           "early); nothing was cached, try again")
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise ZooError(f"the file's SHA-256 is {digest.hexdigest()}, expected {sha256}: "
                           "not the published file; nothing was cached")

    atomic_write(target, write)


def resolve_weights(name_or_path: str | os.PathLike) -> str | os.PathLike:
    """A zoo name becomes its cached file (downloaded once if it can be); any other value (a
    path, a URL) is returned unchanged."""
    if str(name_or_path) not in CHECKPOINTS:
        return name_or_path
    entry = CHECKPOINTS[str(name_or_path)]
    folder = cache_dir()
    target = folder / entry.file_name
    if target.is_file():
        return target
    if entry.fetch == "manual":
        raise ZooError(
            f"{entry.name} is published on Google Drive, which cannot be fetched without a "
            f"browser: open {entry.url}, download the file and save it as {target}"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ZooError(f"{entry.name}: cannot create the cache folder {folder} ({e.strerror}); "
                       f"set {CACHE_ENV} to a writable folder") from e
    try:
        _download(entry.url, target, entry.sha256)
    except (OSError, ValueError) as e:
        raise ZooError(f"{entry.name}: download of {entry.url} to {target} failed: {e}") from e
    return target


def file_url_path(name_or_path: str | os.PathLike) -> str | os.PathLike:
    """The local path of a ``file://`` URL (``file:///a/b.pth`` -> ``/a/b.pth``, percent
    escapes decoded); any other value unchanged."""
    text = os.fspath(name_or_path)
    if not text.lower().startswith("file://"):
        return name_or_path
    parsed = urllib.parse.urlsplit(text)
    if parsed.netloc not in ("", "localhost"):
        raise ZooError(f"{text}: a file:// URL must name a local file (no host)")
    return urllib.request.url2pathname(parsed.path)


def describe_checkpoints() -> str:
    """The table of zoo checkpoints as Markdown (name, recipe, how it is fetched, link)."""
    lines = ["| Name | Recipe | Fetch | Link |", "|---|---|---|---|"]
    lines += [f"| {e.name} | {e.config} | {e.fetch} | {e.url} |" for e in CHECKPOINTS.values()]
    return "\n".join(lines)


__all__ = ["CHECKPOINTS", "ZooCheckpoint", "ZooError", "cache_dir", "describe_checkpoints",
           "file_url_path", "get_checkpoint_url", "register_checkpoint", "resolve_weights"]
