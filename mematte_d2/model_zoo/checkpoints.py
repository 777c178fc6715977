"""Released checkpoints this project loads, by name, and a download cache for them.

``resolve_weights("MEMatte-S-Composition-1K")`` returns the cached file, downloading it first
when its link is plain HTTP(S) (or ``file://``). Google Drive links need a browser (virus-scan
and quota pages stand between the link and the file), so for those the error says which link
to open and where to put the file. Every format listed loads through
:func:`mematte_d2.checkpoint.load_state_dict` (transformers' VitMatte layout is converted on load).
"""

from __future__ import annotations

import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from mematte_d2.utils.atomic import atomic_write

CACHE_ENV = "MEMATTE_CACHE"


@dataclass(frozen=True)
class ZooCheckpoint:
    """One released checkpoint.

    ``url``: where it is published; ``file_name``: its name in the cache; ``config``: the recipe
    it fits (for ``model_zoo.get_config``); ``fetch``: "http" if ``url`` serves the file itself,
    "manual" if a person must download it (Google Drive); ``source``: who released it.
    """

    name: str
    url: str
    file_name: str
    config: str
    fetch: str
    source: str


_DRIVE = "https://drive.google.com/file/d/{}/view"
_HF = "https://huggingface.co/hustvl/{}/resolve/main/{}"

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
                  _HF.format("vitmatte-small-composition-1k", "model.safetensors"),
                  "hf-vitmatte-small-composition-1k.safetensors", "Composition-1K/vitmatte_s.py",
                  "http", "transformers' VitMatte (hustvl on the Hugging Face hub)"),
    ZooCheckpoint("hf-vitmatte-base-composition-1k",
                  _HF.format("vitmatte-base-composition-1k", "pytorch_model.bin"),
                  "hf-vitmatte-base-composition-1k.bin", "Composition-1K/vitmatte_b.py",
                  "http", "transformers' VitMatte (hustvl on the Hugging Face hub)"),
    ZooCheckpoint("hf-vitmatte-small-distinctions-646",
                  _HF.format("vitmatte-small-distinctions-646", "model.safetensors"),
                  "hf-vitmatte-small-distinctions-646.safetensors", "Composition-1K/vitmatte_s.py",
                  "http", "transformers' VitMatte (hustvl on the Hugging Face hub)"),
    ZooCheckpoint("hf-vitmatte-base-distinctions-646",
                  _HF.format("vitmatte-base-distinctions-646", "model.safetensors"),
                  "hf-vitmatte-base-distinctions-646.safetensors", "Composition-1K/vitmatte_b.py",
                  "http", "transformers' VitMatte (hustvl on the Hugging Face hub)"),
):
    register_checkpoint(_entry)


class ZooError(ValueError):
    """A zoo checkpoint is unknown, cannot be downloaded here, or its download failed."""


def cache_dir() -> Path:
    """``$MEMATTE_CACHE``, else ``$XDG_CACHE_HOME/mematte_d2``, else ``~/.cache/mematte_d2``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mematte_d2"


def get_checkpoint_url(name: str) -> str:
    """The public link of a zoo checkpoint."""
    return _entry_of(name).url


def _entry_of(name: str) -> ZooCheckpoint:
    if name not in CHECKPOINTS:
        raise ZooError(f"unknown zoo checkpoint {name!r}; known: {', '.join(CHECKPOINTS)}")
    return CHECKPOINTS[name]


def _download(url: str, target: Path) -> None:
    def write(out) -> None:
        with urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=target.name) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))

    atomic_write(target, write)


def resolve_weights(name_or_path: str | os.PathLike) -> str | os.PathLike:
    """A zoo name becomes its cached file (downloaded once if it can be); any other value (a
    path, a URL) is returned unchanged."""
    if str(name_or_path) not in CHECKPOINTS:
        return name_or_path
    entry = CHECKPOINTS[str(name_or_path)]
    target = cache_dir() / entry.file_name
    if target.is_file():
        return target
    if entry.fetch == "manual":
        raise ZooError(
            f"{entry.name} is published on Google Drive, which cannot be fetched without a "
            f"browser: open {entry.url}, download the file and save it as {target}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        _download(entry.url, target)
    except (OSError, ValueError) as e:
        raise ZooError(f"{entry.name}: download of {entry.url} to {target} failed: {e}") from e
    return target


def describe_checkpoints() -> str:
    """The table of zoo checkpoints as Markdown (name, recipe, how it is fetched, link)."""
    lines = ["| Name | Recipe | Fetch | Link |", "|---|---|---|---|"]
    lines += [f"| {e.name} | {e.config} | {e.fetch} | {e.url} |" for e in CHECKPOINTS.values()]
    return "\n".join(lines)


__all__ = ["CHECKPOINTS", "ZooCheckpoint", "ZooError", "cache_dir", "describe_checkpoints",
           "get_checkpoint_url", "register_checkpoint", "resolve_weights"]
