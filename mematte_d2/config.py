"""Loading a LazyConfig file with command-line ``key=value`` overrides, strictly.

Every program of this package (training, demo, prediction, checkpoint conversion, benchmark,
memory probe) loads its config through :func:`load_config`, so all of them accept the same
override dialect and refuse the same mistakes before any model is built:

- a key the config does not have (unless it is a keyword argument of the LazyCall target it
  sits in), named with the keys known at that level;
- a value of the wrong type for the value it replaces (``train.max_iter=abc``), or None
  (``None`` and ``null`` both spell it) where neither the config nor the target allows it;
- a run setting out of its range (``train.checkpointer.period=0``), see :data:`TRAIN_LIMITS`;
- anything but data: a ``_target_`` in the key or anywhere in the value (it would be called
  when the model is built), an interpolation ``${...}`` (``${oc.env:VAR}`` would read the
  environment), a sweep such as ``choice(1,2)``. Components are swapped by registry name
  (``model.backbone.router=LocalRouter``), so overrides carry numbers, strings, booleans and
  lists only. Config files are Python and trusted; overrides are not.

Values follow hydra's override grammar: ``1``, ``0.5``, ``true``, ``'text'``, ``[1,2]``.
"""

from __future__ import annotations

import inspect
import os
import types
import typing
from collections.abc import Sequence

from omegaconf import DictConfig, ListConfig, OmegaConf

__all__ = ["ConfigError", "ConfigKeyError", "TRAIN_LIMITS", "apply_overrides", "load_config"]


class Limit(typing.NamedTuple):
    """The range of one numeric run setting."""

    minimum: float
    exclusive: bool = False  # the minimum itself is not allowed
    none_ok: bool = False


# Run settings (configs/common/train.py) whose type alone does not make them valid.
TRAIN_LIMITS: dict[str, Limit] = {
    "train.max_iter": Limit(1),
    "train.eval_period": Limit(0),
    "train.log_period": Limit(1),
    "train.vis_period": Limit(0),
    "train.vis_images": Limit(1),
    "train.checkpointer.period": Limit(1),
    "train.checkpointer.max_to_keep": Limit(1, none_ok=True),
    "train.clip_grad.max_norm": Limit(0, exclusive=True),
    "train.reference_world_size": Limit(0, none_ok=True),
}

_MISSING = object()


class ConfigError(ValueError):
    """A config file or override that the programs refuse."""


class ConfigKeyError(ConfigError, KeyError):
    """An override names a key that neither the config nor the called target knows."""

    def __str__(self) -> str:
        return str(self.args[0])


def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> DictConfig:
    """``LazyConfig.load(path)`` with ``overrides`` applied by :func:`apply_overrides`."""
    from detectron2.config import LazyConfig

    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {os.fspath(path)!r} does not exist")
    return apply_overrides(LazyConfig.load(os.fspath(path)), overrides)


def apply_overrides(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """Apply ``key=value`` overrides in place, then check the settings of :data:`TRAIN_LIMITS`.

    A key may be new only where it is a keyword argument of the LazyCall target it sits in
    (e.g. ``model.backbone.inference_keep_ratio`` when the config left it at the default).
    Raises ConfigKeyError for an unknown key, ConfigError for a value of the wrong type.
    """
    for text in overrides or ():
        key, raw, value = _parse(text)
        _check_data_only(key, raw, value)
        parent, name = _parent_node(cfg, key)
        value = _checked_value(key, raw, value, _reference(parent, name))
        OmegaConf.update(cfg, key, value, merge=False)
    _check_train_limits(cfg)
    return cfg


def _parse(text: str) -> tuple[str, str, object]:
    """``(key, raw value text, value)`` of one ``key=value``; ``None`` and ``null`` mean None."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    if "=" not in text:
        raise ConfigKeyError(f"override {text!r} is not of the form key=value")
    key, raw = (part.strip() for part in text.split("=", 1))
    if raw == "None":
        return key, raw, None
    try:
        value = OverridesParser.create().parse_override(f"{key}={raw}").value()
    except HydraException as e:
        raise ConfigError(f"override {text!r}: cannot read the value ({e})") from None
    return key, raw, value


def _check_data_only(key: str, raw: str, value: object) -> None:
    """Refuse an override that could run code or read the environment (see the module doc)."""
    if "_target_" in key.split("."):
        raise ConfigError(f"{key}={raw}: overrides cannot set _target_ (config files choose "
                          "what is built; swap components by their registry name)")

    def check(item: object) -> None:
        if isinstance(item, dict):
            for name, sub in item.items():
                if name == "_target_":
                    raise ConfigError(f"{key}={raw}: a _target_ in an override value is refused "
                                      "(overrides carry data only)")
                check(name)
                check(sub)
        elif isinstance(item, list):
            for sub in item:
                check(sub)
        elif isinstance(item, str):
            if "${" in item:
                raise ConfigError(f"{key}={raw}: interpolations (${{...}}) are refused in "
                                  "override values (overrides carry data only)")
        elif item is not None and not isinstance(item, bool | int | float):
            raise ConfigError(f"{key}={raw}: expected a plain value, got {type(item).__name__} "
                              "(sweeps and functions are not supported)")

    check(value)


def _parent_node(cfg: DictConfig, key: str) -> tuple[DictConfig, str]:
    """The config node holding ``key``'s last part; unknown keys raise ConfigKeyError."""
    parts = key.split(".")
    node = cfg
    for depth, part in enumerate(parts):
        if not isinstance(node, DictConfig):
            raise ConfigKeyError(
                f"config key {key!r}: {'.'.join(parts[:depth])!r} is a value, not a config node"
            )
        last = depth + 1 == len(parts)
        if last and (part in node or _target_parameter(node, part) is not None):
            return node, part
        if not last and part in node:
            node = node[part]
            continue
        choices = ", ".join(sorted(_known_keys(node)))
        where = ".".join(parts[: depth + 1])
        raise ConfigKeyError(f"config key {where!r} does not exist (known here: {choices})")
    raise ConfigKeyError(f"config key {key!r} is empty")


def _known_keys(node: DictConfig) -> set[str]:
    """The keys of ``node`` and the keyword arguments of its LazyCall target."""
    known = {str(k) for k in node.keys() if k != "_target_"}
    for name, param in _target_parameters(node).items():
        if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            known.add(name)
    return known


def _target_parameters(node: DictConfig) -> typing.Mapping[str, inspect.Parameter]:
    """The parameters of the LazyCall target of ``node`` (none for a plain node).

    Annotations are evaluated where the target's module allows (``eval_str``).
    """
    target = node.get("_target_")
    if target is None:
        return {}
    if isinstance(target, str):
        from detectron2.utils.registry import locate

        target = locate(target)
    try:
        try:
            return inspect.signature(target, eval_str=True).parameters
        except Exception:  # an annotation naming something the module does not define
            return inspect.signature(target).parameters
    except (TypeError, ValueError):
        return {}


def _target_parameter(node: DictConfig, name: str) -> inspect.Parameter | None:
    """The keyword parameter ``name`` of the LazyCall target of ``node`` (None if it has none)."""
    params = _target_parameters(node)
    if name in params:
        return params[name]
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY)
    return None


class _Reference(typing.NamedTuple):
    """What an override replaces: the current value and what the LazyCall target declares."""

    current: object
    default: object
    annotation: object


def _reference(parent: DictConfig, name: str) -> _Reference:
    current = parent[name] if name in parent else _MISSING
    param = _target_parameter(parent, name)
    if param is None:
        return _Reference(current, _MISSING, _MISSING)
    empty = inspect.Parameter.empty
    return _Reference(
        current,
        _MISSING if param.default is empty else param.default,
        _MISSING if param.annotation is empty or isinstance(param.annotation, str)
        else param.annotation,
    )


def _checked_value(key: str, raw: str, value: object, ref: _Reference) -> object:
    """``value`` if its type can replace the current (or default) value, else ConfigError.

    A string setting takes the override's text as written (``train.output_dir=2024`` is the
    folder "2024", not the number).
    """
    reference = ref.current if ref.current is not _MISSING else ref.default
    if isinstance(value, list) and isinstance(reference, str) and _admits_sequence(ref.annotation):
        return value  # a list where the target takes one name or several (data sets)
    if value is None:
        if (reference is None or ref.default is None or _admits_none(ref.annotation)
                or (key in TRAIN_LIMITS and TRAIN_LIMITS[key].none_ok)):
            return None
        if isinstance(reference, DictConfig):
            raise ConfigError(f"{key}=None: {key} is a required part of the config")
        raise ConfigError(f"{key}=None: {key} cannot be None ({_expected(reference)})")
    if reference is _MISSING or reference is None:
        declared = _declared_scalar_type(ref.annotation)
        if declared is not None and not _fits(value, declared()):
            raise ConfigError(f"{key}={raw}: expected {_kind(declared())} (the argument is "
                              f"declared {_type_name(ref.annotation)}), got {_kind(value)}")
        return value
    if isinstance(reference, DictConfig):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}={raw}: {key} is a config node; override its keys instead "
                              f"({key}.KEY=VALUE)")
        return value
    if isinstance(reference, ListConfig | list | tuple):
        if not isinstance(value, list):
            raise ConfigError(f"{key}={raw}: expected a list such as {list(reference)}")
        kinds = {type(item) for item in reference}
        if len(kinds) == 1 and _is_scalar(reference[0]):
            for item in value:
                if not _fits(item, reference[0]):
                    raise ConfigError(f"{key}={raw}: item {item!r} is not {_kind(reference[0])}")
        return value
    if not _is_scalar(reference):
        return value
    if not _fits(value, reference):
        raise ConfigError(f"{key}={raw}: {_expected(reference)}, got {_kind(value)}")
    return raw if isinstance(reference, str) and not isinstance(value, str) else value


def _is_scalar(value: object) -> bool:
    return isinstance(value, bool | int | float | str)


def _fits(value: object, reference: object) -> bool:
    """Whether ``value`` may replace the scalar ``reference`` (an int may replace a float)."""
    if isinstance(reference, bool):
        return isinstance(value, bool)
    if isinstance(reference, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(reference, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return _is_scalar(value)  # a string setting takes any scalar's text


def _kind(value: object) -> str:
    kinds = {bool: "a bool (true/false)", int: "an integer", float: "a number", str: "a string"}
    return kinds.get(type(value), type(value).__name__)


def _expected(reference: object) -> str:
    return f"expected {_kind(reference)} (the config has {reference!r})"


def _type_name(annotation: object) -> str:
    names = ("None" if m is type(None) else getattr(m, "__name__", str(m))
             for m in _union_members(annotation))
    return " | ".join(names)


def _union_members(annotation: object) -> tuple:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _admits_none(annotation: object) -> bool:
    return annotation is not _MISSING and type(None) in _union_members(annotation)


def _admits_sequence(annotation: object) -> bool:
    """Whether the target declares a list or sequence among the types it takes."""
    from collections import abc

    return annotation is not _MISSING and any(
        typing.get_origin(m) in (list, tuple, abc.Sequence) or m in (list, tuple)
        for m in _union_members(annotation)
    )


def _declared_scalar_type(annotation: object) -> type | None:
    """``int`` for ``int | None`` and the like; None when the annotation is not one scalar."""
    members = [m for m in _union_members(annotation) if m is not type(None)]
    if len(members) == 1 and members[0] in (bool, int, float, str):
        return members[0]
    return None


def _check_train_limits(cfg: DictConfig) -> None:
    for key, limit in TRAIN_LIMITS.items():
        value = OmegaConf.select(cfg, key, default=_MISSING)
        if value is _MISSING or (value is None and limit.none_ok):
            continue
        bound = f"> {limit.minimum}" if limit.exclusive else f">= {limit.minimum}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key} must be a number {bound}, got {value!r}")
        if value < limit.minimum or (limit.exclusive and value == limit.minimum):
            raise ConfigError(f"{key} must be {bound}, got {value!r}")
