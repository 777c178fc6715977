"""Scalars computed on the GPU, logged without a host sync of their own.

detectron2's ``EventStorage.put_scalar`` converts its value to a Python float at once, which
waits for the GPU. A model that logs a tensor every training step (MEMatte's keep ratios)
records it here instead; the training step reads these tensors together with its losses, in
the one device-to-host copy it makes per step anyway, and puts them into the storage then.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping

import torch
from detectron2.utils.events import EventStorage, get_event_storage

__all__ = ["flush_device_scalars", "pop_device_scalars", "put_device_scalars"]

_PENDING: weakref.WeakKeyDictionary[EventStorage, dict[str, torch.Tensor]] = (
    weakref.WeakKeyDictionary()
)


def put_device_scalars(values: Mapping[str, torch.Tensor]) -> None:
    """Record 0-d tensors under their names for the active EventStorage (no-op without one),
    without reading them; a name recorded again replaces its value."""
    try:
        storage = get_event_storage()
    except AssertionError:  # no EventStorage active (e.g. plain forward calls)
        return
    pending = _PENDING.setdefault(storage, {})
    pending.update({name: value.detach().reshape(()) for name, value in values.items()})


def pop_device_scalars(storage: EventStorage) -> dict[str, torch.Tensor]:
    """The tensors recorded for `storage` since the last pop, removed from it."""
    return _PENDING.pop(storage, {})


def flush_device_scalars(storage: EventStorage | None = None) -> None:
    """Put the recorded tensors into `storage` (default: the active one) as floats, with one
    device-to-host copy; for callers outside the training step."""
    storage = storage or get_event_storage()
    pending = pop_device_scalars(storage)
    if not pending:
        return
    values = torch.stack([v.float() for v in pending.values()]).cpu().tolist()
    for name, value in zip(pending, values):
        storage.put_scalar(name, value)
