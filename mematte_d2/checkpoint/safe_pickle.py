"""Unpickling `.pkl` weights without letting the file run code.

A pickle names the functions it calls to rebuild its objects, so plain `pickle.load` runs
whatever a crafted file asks for (``os.system``, ``builtins.exec``, ...). `load_pickle` allows
only what detectron2 / Caffe2 `.pkl` weights are made of: numpy arrays and numpy scalars,
numbers, strings, bytes, lists, tuples, dicts, OrderedDicts and sets. Any other name in the
file is refused before it is looked up.
"""

import codecs
import collections
import pickle
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["UnsafePickleError", "load_pickle"]


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for a callable or class outside the allowed numpy/container set."""


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """`_codecs.encode` as protocol 0-2 pickles use it for bytes, limited to Latin-1."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise UnsafePickleError(f"bytes encoded as {encoding!r} (only latin1 is allowed)")
    return text.encode("latin1")


def _numpy_reconstructors() -> dict[str, object]:
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    numeric = np._core.numeric if hasattr(np, "_core") else np.core.numeric
    return {
        "multiarray._reconstruct": multiarray._reconstruct,
        "multiarray.scalar": multiarray.scalar,
        "numeric._frombuffer": numeric._frombuffer,
    }


def _allowed_globals() -> dict[tuple[str, str], object]:
    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("_codecs", "encode"): _latin1_encode,
    }
    # numpy 1 pickles name numpy.core.*, numpy 2 numpy._core.*; both load with either numpy.
    for suffix, func in _numpy_reconstructors().items():
        module, name = suffix.rsplit(".", 1)
        for package in ("numpy.core", "numpy._core"):
            allowed[(f"{package}.{module}", name)] = func
    # Protocol 0-2 pickles (Python 2 ones included) spell the builtins module __builtin__.
    for builtins in ("builtins", "__builtin__"):
        allowed[(builtins, "set")] = set
        allowed[(builtins, "frozenset")] = frozenset
    return allowed


_ALLOWED = _allowed_globals()


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"it refers to {module}.{name}, which could run code; only numpy arrays, "
                "numbers, strings and plain containers are allowed"
            ) from None

    def persistent_load(self, pid: object) -> object:
        raise UnsafePickleError("it refers to external (persistent) objects")


def load_pickle(file: BinaryIO | str | Path) -> object:
    """Unpickle a `.pkl` weights file (path or open binary file) allowing only data.

    Python 2 strings are decoded as Latin-1, as detectron2 does for its model zoo files.
    Raises UnsafePickleError for anything that would call other code.
    """
    if isinstance(file, str | Path):
        with open(file, "rb") as f:
            return load_pickle(f)
    return _NumpyOnlyUnpickler(file, encoding="latin1").load()
