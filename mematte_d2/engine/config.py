"""Command-line ``key=value`` overrides that refuse keys the config does not have."""

import inspect
from collections.abc import Sequence

from omegaconf import DictConfig, OmegaConf

__all__ = ["ConfigKeyError", "apply_overrides"]


class ConfigKeyError(KeyError):
    """An override names a key that neither the config nor the called target knows."""

    def __str__(self) -> str:
        return str(self.args[0])


def _parse(overrides: Sequence[str]) -> list[tuple[str, object]]:
    """Split ``key=value`` strings; values follow hydra's grammar, and ``None`` means null."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = []
    for text in overrides:
        if "=" not in text:
            raise ConfigKeyError(f"override {text!r} is not of the form key=value")
        key, raw = text.split("=", 1)
        value = None if raw.strip() == "None" else OverridesParser.create().parse_override(
            text).value()
        parsed.append((key.strip(), value))
    return parsed


def _target_accepts(node: DictConfig, name: str) -> bool:
    """Whether the LazyCall target of `node` takes a keyword argument `name`."""
    target = node.get("_target_") if isinstance(node, DictConfig) else None
    if target is None:
        return False
    if isinstance(target, str):
        from detectron2.utils.registry import locate

        target = locate(target)
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _check_key(cfg: DictConfig, key: str) -> None:
    parts = key.split(".")
    node = cfg
    for depth, part in enumerate(parts):
        where = ".".join(parts[: depth + 1])
        if not isinstance(node, DictConfig):
            raise ConfigKeyError(
                f"config key {key!r}: {'.'.join(parts[:depth])!r} is a value, not a config node"
            )
        if part in node:
            node = node[part] if depth + 1 < len(parts) else None
            continue
        if depth + 1 == len(parts) and _target_accepts(node, part):
            return
        choices = ", ".join(sorted(str(k) for k in node.keys() if k != "_target_"))
        raise ConfigKeyError(f"config key {where!r} does not exist (known here: {choices})")


def apply_overrides(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """Apply ``key=value`` overrides in place; unknown keys raise ConfigKeyError.

    A key may be new only where it is an argument of the LazyCall target it sits in (e.g.
    ``model.backbone.max_tokens`` when the config left it at the default).
    """
    for key, value in _parse(overrides or []):
        _check_key(cfg, key)
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg
