"""The configs shipped with mematte_d2, named by their path under the repository's ``configs/``,
and the released checkpoints they fit (``checkpoints.py``), named as in :data:`CHECKPOINTS`.

    from mematte_d2 import model_zoo
    cfg = model_zoo.get_config("Composition-1K/mematte_s_topk0.25.py", ["train.max_iter=100"])
    weights = model_zoo.resolve_weights("MEMatte-S-Composition-1K")  # the cached file

An installed wheel carries them inside the package as ``mematte_d2/model_zoo/configs`` (setup.py
maps ``configs/`` there without moving it); a source checkout, editable install included, reads
them from ``configs/`` itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from mematte_d2.config import load_config

from .checkpoints import (
    CHECKPOINTS,
    ZooCheckpoint,
    ZooError,
    cache_dir,
    describe_checkpoints,
    get_checkpoint_url,
    register_checkpoint,
    resolve_weights,
)

__all__ = ["CHECKPOINTS", "ZooCheckpoint", "ZooError", "cache_dir", "config_root",
           "describe_checkpoints", "get_checkpoint_url", "get_config", "get_config_file",
           "list_configs", "register_checkpoint", "resolve_config_file", "resolve_weights"]

_PACKAGED = Path(__file__).resolve().parent / "configs"
_SOURCE_CHECKOUT = Path(__file__).resolve().parents[2] / "configs"


def config_root() -> Path:
    """The folder holding the shipped configs: the packaged copy, else the checkout's."""
    for root in (_PACKAGED, _SOURCE_CHECKOUT):
        if root.is_dir():
            return root
    raise FileNotFoundError(
        f"no shipped configs: neither {_PACKAGED} nor {_SOURCE_CHECKOUT} exists "
        "(reinstall mematte_d2)"
    )


def list_configs() -> list[str]:
    """The recipes, as paths relative to the config root: every config outside ``common/``."""
    root = config_root()
    return sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*.py")
        if path.relative_to(root).parts[0] != "common"
    )


def get_config_file(config_path: str) -> str:
    """The file of a shipped config, e.g. ``"Composition-1K/mematte_s_topk0.25.py"``."""
    root = config_root()
    path = (root / config_path).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        raise FileNotFoundError(
            f"{config_path!r} is not a shipped config; the recipes are: "
            + ", ".join(list_configs())
        )
    return str(path)


def get_config(config_path: str, overrides: Sequence[str] = ()) -> DictConfig:
    """A shipped config with ``key=value`` overrides applied (``mematte_d2.config.load_config``)."""
    return load_config(get_config_file(config_path), overrides)


def resolve_config_file(config: str | None, weights: str | None = None) -> str:
    """The config file a program loads, as a user names it: an existing file; else a shipped
    config name (``"Composition-1K/mematte_s_topk0.25.py"``, as ``get_config`` takes it); with
    no config, the recipe of a model-zoo name given as ``weights``. Anything else raises a
    FileNotFoundError listing the shipped configs and zoo names, so an installed wheel (which
    has no ``configs/`` folder beside it) works by name."""
    if config:
        if Path(config).is_file():
            return config
        try:
            return get_config_file(config)
        except FileNotFoundError:
            pass
        raise FileNotFoundError(
            f"--config-file {config}: no such file, nor a shipped config; the shipped "
            f"configs are: {', '.join(list_configs())}"
        )
    if weights and weights in CHECKPOINTS:
        return get_config_file(CHECKPOINTS[weights].config)
    raise FileNotFoundError(
        "--config-file is required unless --weights names a model-zoo checkpoint (its recipe "
        f"is used); zoo names: {', '.join(CHECKPOINTS)}"
    )
