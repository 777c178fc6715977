"""How much memory a weights file may make the loader allocate, checked before allocating.

A small file can describe huge tensors without holding their bytes: a stride-0 (expanded)
tensor, many entries viewing one buffer, one array under thousands of keys, or a compressed
zip member. Every later step that copies per entry (conversion, ``.clone()``, numpy to torch)
would then allocate gigabytes. The rules, all measured against the file's own size:

* no tensor may overlap itself (a stride 0 or strides that revisit elements);
* the entries of a state dict together, each counted with its full size even when it shares
  memory with another, take at most ``ENTRY_FACTOR`` times the file's size (plus
  ``SLACK_BYTES``): ties of a few weights fit, thousands of views of one buffer do not;
* a zip checkpoint's members declare at most that much once uncompressed, and every member's
  CRC matches its bytes (a flipped byte inside a tensor is found before it is trained on).
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

__all__ = ["ENTRY_FACTOR", "SLACK_BYTES", "budget", "check_entries", "check_zip", "overlaps"]

ENTRY_FACTOR = 3
SLACK_BYTES = 1 << 20


class WeightsLimitError(ValueError):
    """A weights file would make the loader allocate far more than it holds; `reason` says
    why (the caller names the file)."""


def budget(path: str | os.PathLike) -> int:
    """The bytes the entries of `path` may take once loaded."""
    return ENTRY_FACTOR * os.path.getsize(path) + SLACK_BYTES


def overlaps(size: Iterable[int], stride: Iterable[int]) -> bool:
    """Whether a tensor of this size and stride (in elements) visits an element twice.

    Dimensions are taken by increasing stride; each must step past everything the smaller
    ones reach (the usual sufficient test: weights never need anything subtler).
    """
    extent = 1
    for step, count in sorted((st, n) for n, st in zip(size, stride, strict=True) if n > 1):
        if step < extent:
            return True
        extent += step * (count - 1)
    return False


def _entry_bytes(value: object) -> tuple[int, str | None]:
    """(bytes the entry takes when copied, why it is refused or None)."""
    if isinstance(value, torch.Tensor):
        if value.layout != torch.strided:
            return 0, f"a {value.layout} tensor"
        if overlaps(value.shape, value.stride()):
            return 0, (f"a tensor of shape {tuple(value.shape)} with strides "
                       f"{tuple(value.stride())}, which overlaps itself (stride 0 or repeated "
                       "elements)")
        return value.numel() * value.element_size(), None
    if isinstance(value, np.ndarray):
        size = value.itemsize
        if overlaps(value.shape, (s // size if size else 0 for s in value.strides)):
            return 0, f"an array of shape {value.shape} that overlaps itself"
        return math.prod(value.shape) * size, None
    return 0, None


def check_entries(entries: Iterable[tuple[str, object]], limit: int | None) -> None:
    """Raise WeightsLimitError when an entry overlaps itself or all of them exceed `limit`
    bytes (None: no total limit). Looks at sizes and strides only: allocates nothing."""
    total = 0
    for key, value in entries:
        nbytes, problem = _entry_bytes(value)
        if problem:
            raise WeightsLimitError(f"entry {key!r} is {problem}")
        total += nbytes
        if limit is not None and total > limit:
            raise WeightsLimitError(
                f"its entries would take more than {limit:,} bytes ({ENTRY_FACTOR}x the file "
                f"size), reached at entry {key!r}: entries repeat or share data"
            )


def check_zip(path: str | Path) -> None:
    """Refuse a zip checkpoint whose members would expand past `budget`, or whose bytes do
    not match their CRC (corrupted on disk or in transfer). Not a zip: nothing to check."""
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            declared = sum(m.file_size for m in members)
            if declared > budget(path):
                raise WeightsLimitError(
                    f"its zip members declare {declared:,} bytes uncompressed, more than "
                    f"{ENTRY_FACTOR}x the file size"
                )
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as e:
        raise zipfile.BadZipFile(f"not a readable zip archive ({e})") from e
    if bad is not None:
        raise zipfile.BadZipFile(f"member {bad!r} does not match its CRC: the file is corrupted")
