"""Unpickling `.pkl` weights without letting the file run code.

A pickle names the functions it calls to rebuild its objects, so plain `pickle.load` runs
whatever a crafted file asks for (``os.system``, ``builtins.exec``, ...). `load_pickle` allows
only what detectron2 / Caffe2 `.pkl` weights are made of: numeric numpy arrays and scalars,
numbers, strings, bytes, lists, tuples, dicts, OrderedDicts and sets. Any other name in the
file is refused before it is looked up.

numpy's own reconstruction functions are not handed to the file either: called with crafted
arguments they can build object arrays from raw bytes (pointers chosen by the file). The names
numpy pickles use are mapped to stand-ins here that accept only plain numeric dtypes and build
each array from its bytes with `np.frombuffer`.

Nor may a file make the stand-ins allocate more than it holds: the pickle memo lets one byte
string stand for the data of thousands of arrays, so the bytes they build are counted and
refused past twice the file's size (plus 1 MiB), before each allocation.
"""

import collections
import contextvars
import math
import os
import pickle
import re
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["UnsafePickleError", "load_pickle"]

# numpy dtype codes a weights array may have: bool, signed / unsigned int, float, complex.
_NUMERIC_SPEC = re.compile(r"[biufc]\d{1,2}")


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for something outside the allowed numeric-array / container set."""


# Bytes the stand-ins may still allocate in the load under way (None: no load running).
_ALLOWANCE: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "safe_pickle_allowance", default=None
)
_SLACK_BYTES = 1 << 20


def _spend(nbytes: int, what: str) -> None:
    """Count `nbytes` about to be allocated against the allowance of the load under way."""
    allowance = _ALLOWANCE.get()
    if allowance is None:
        return
    allowance[0] -= nbytes
    if allowance[0] < 0:
        raise UnsafePickleError(
            f"{what} would take the data it builds past twice the file's size: the file "
            "repeats one buffer for many arrays"
        )


class _DtypeSpec:
    """Stands for ``numpy.dtype(spec)`` while unpickling; only plain numeric dtypes."""

    def __init__(self, spec: object, align: object = False, copy: object = False):
        if not isinstance(spec, str) or not _NUMERIC_SPEC.fullmatch(spec):
            raise UnsafePickleError(f"numpy dtype {spec!r} is not a plain numeric type")
        self.spec = spec
        self.byteorder = "="

    def __setstate__(self, state: object) -> None:
        # (version, byte order, subarray, names, fields, ...): only a byte order is allowed.
        if not (isinstance(state, tuple) and len(state) >= 5 and state[1] in ("<", ">", "|", "=")
                and state[2:5] == (None, None, None)):
            raise UnsafePickleError("numpy dtype with sub-arrays or fields")
        self.byteorder = state[1]

    def resolve(self) -> np.dtype:
        dtype = np.dtype(self.spec)
        return dtype if self.byteorder in ("|", "=") else dtype.newbyteorder(self.byteorder)


def _as_bytes(data: object) -> bytes:
    if isinstance(data, str):  # Python 2 byte strings arrive decoded as Latin-1
        _spend(len(data), "array data")
        return data.encode("latin1")
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | pickle.PickleBuffer):
        _spend(len(memoryview(data)), "array data")
        return bytes(data)
    raise UnsafePickleError(f"array data is a {type(data).__name__}, not bytes")


def _array(data: object, dtype: object, shape: object, fortran: bool) -> np.ndarray:
    """A writable array of `shape` read from the raw bytes `data`, checked for size."""
    if not isinstance(dtype, _DtypeSpec):
        raise UnsafePickleError("array dtype is not a numpy dtype")
    if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)):
        raise UnsafePickleError(f"array shape {shape!r} is not a tuple of sizes")
    resolved = dtype.resolve()
    nbytes = math.prod(shape) * resolved.itemsize
    raw = _as_bytes(data)
    if len(raw) != nbytes:
        raise UnsafePickleError(
            f"array of shape {shape} and dtype {resolved} with {len(raw)} bytes of data"
        )
    _spend(nbytes, f"an array of shape {shape}")
    flat = np.frombuffer(raw, dtype=resolved)
    return flat.reshape(shape, order="F" if fortran else "C").copy(order="K")


class _ArraySpec:
    """Stands for ``numpy.core.multiarray._reconstruct(ndarray, ...)``; filled by the pickle's
    state (version, shape, dtype, is_fortran, raw bytes), replaced by the array afterwards."""

    array: np.ndarray | None = None

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise UnsafePickleError("malformed numpy array state")
        shape, dtype, fortran, data = state[-4:]
        self.array = _array(data, dtype, shape, bool(fortran))


_NDARRAY = object()  # numpy.ndarray may only appear as the first argument of _reconstruct


def _reconstruct(subtype: object, shape: object, typecode: object) -> _ArraySpec:
    if subtype is not _NDARRAY:
        raise UnsafePickleError("numpy array of a type other than numpy.ndarray")
    return _ArraySpec()


def _frombuffer(buffer: object, dtype: object, shape: object, order: object) -> np.ndarray:
    if order not in ("C", "F"):
        raise UnsafePickleError(f"array order {order!r}")
    return _array(buffer, dtype, shape, order == "F")


def _scalar(dtype: object, data: object) -> np.generic:
    return _array(data, dtype, (), False)[()]


def _latin1_encode(text: object, encoding: str = "latin1") -> bytes:
    """`_codecs.encode` as protocol 0-2 pickles use it for bytes, limited to Latin-1."""
    name = str(encoding).lower().replace("-", "").replace("_", "")
    if name not in ("latin1", "iso88591") or not isinstance(text, str):
        raise UnsafePickleError(f"bytes encoded as {encoding!r} (only latin1 is allowed)")
    _spend(len(text), "a byte string")
    return text.encode("latin1")


def _allowed_globals() -> dict[tuple[str, str], object]:
    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): _NDARRAY,
        ("numpy", "dtype"): _DtypeSpec,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("_codecs", "encode"): _latin1_encode,
    }
    # numpy 1 pickles name numpy.core.*, numpy 2 numpy._core.*
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = _reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = _scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = _frombuffer
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


def _finish(obj: object, seen: dict[int, object]) -> object:
    """`obj` with every array stand-in replaced by its array (containers rebuilt in place)."""
    if isinstance(obj, _ArraySpec):
        if obj.array is None:
            raise UnsafePickleError("numpy array without data")
        return obj.array
    if isinstance(obj, _DtypeSpec):
        return obj.resolve()
    if not isinstance(obj, dict | list | tuple) or id(obj) in seen:
        return seen.get(id(obj), obj)
    seen[id(obj)] = obj
    if isinstance(obj, dict):
        for key, value in obj.items():
            obj[key] = _finish(value, seen)
    elif isinstance(obj, list):
        obj[:] = [_finish(value, seen) for value in obj]
    else:
        seen[id(obj)] = tuple(_finish(value, seen) for value in obj)
    return seen[id(obj)]


def load_pickle(file: BinaryIO | str | Path) -> object:
    """Unpickle a `.pkl` weights file (path or open binary file) allowing only data.

    Python 2 strings are decoded as Latin-1, as detectron2 does for its model zoo files.
    Raises UnsafePickleError for anything that would call other code, or build more than
    twice the file's size (plus 1 MiB) of arrays and byte strings.
    """
    if isinstance(file, str | Path):
        with open(file, "rb") as f:
            return load_pickle(f)
    token = _ALLOWANCE.set([2 * _remaining_size(file) + _SLACK_BYTES])
    try:
        return _finish(_NumpyOnlyUnpickler(file, encoding="latin1").load(), {})
    finally:
        _ALLOWANCE.reset(token)


def _remaining_size(file: BinaryIO) -> int:
    """Bytes from the current position to the end of `file` (its size for a fresh file)."""
    try:
        return os.fstat(file.fileno()).st_size - file.tell()
    except (AttributeError, OSError, ValueError):  # BytesIO and other in-memory files
        start = file.tell()
        end = file.seek(0, os.SEEK_END)
        file.seek(start)
        return end - start
