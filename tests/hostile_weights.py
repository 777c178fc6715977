"""Weights files for the safety tests: crafted ones whose loading would run code (each
creates a marker file if it is ever unpickled unsafely) and legitimate detectron2 `.pkl`s."""

import builtins
import os
import pickle
from pathlib import Path

import numpy as np
import torch


class _Reduce:
    """Unpickles as ``func(*args)``: what a crafted file uses to run code."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def code_running_pickle(path: Path, marker: Path, via: str = "system", protocol: int = 4) -> Path:
    """A detectron2-looking `.pkl` whose unpickling creates `marker` through ``os.system``
    ("system") or ``builtins.open`` ("open")."""
    payload = (
        _Reduce(os.system, f"touch '{marker}'") if via == "system"
        else _Reduce(builtins.open, str(marker), "w")
    )
    data = {"model": {"w": np.ones(2, np.float32)}, "__author__": payload}
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    return path


def code_running_torch_file(path: Path, marker: Path) -> Path:
    """A `.pth` written by torch.save holding an object whose unpickling creates `marker`."""
    torch.save({"model": {"w": torch.ones(2)}, "x": _Reduce(os.system, f"touch '{marker}'")},
               path)
    return path


def detectron2_pkl(path: Path, state: dict, protocol: int = 2) -> Path:
    """`state` as the detectron2 model zoo stores it: numpy arrays in {"model", "__author__"}."""
    arrays = {k: v.detach().cpu().numpy() for k, v in state.items()}
    path.write_bytes(pickle.dumps({"model": arrays, "__author__": "test"}, protocol=protocol))
    return path


class _ArrayOver:
    """Unpickles as a numpy array built by numpy's own ``_reconstruct`` over `data`; several
    instances holding one bytes object share it through the pickle memo."""

    def __init__(self, data: bytes, shape: tuple, dtype: str = "f4"):
        self.data, self.shape, self.dtype = data, shape, np.dtype(dtype)

    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct

        return (_reconstruct, (np.ndarray, (0,), b"b"),
                (1, self.shape, self.dtype, False, self.data))


def shared_buffer_pkl(path: Path, arrays: int = 300, nbytes: int = 1 << 20) -> Path:
    """A `.pkl` whose one `nbytes` buffer is the data of `arrays` arrays (a memory bomb:
    loading copies it once per array)."""
    data = bytes(nbytes)
    model = {f"backbone.w{i}": _ArrayOver(data, (nbytes // 4,)) for i in range(arrays)}
    path.write_bytes(pickle.dumps({"model": model}, protocol=4))
    return path


def one_array_many_keys_pkl(path: Path, keys: int = 2000, nbytes: int = 1 << 20) -> Path:
    """A `.pkl` with one array stored once and named by `keys` keys."""
    array = np.zeros(nbytes // 4, np.float32)
    path.write_bytes(pickle.dumps({"model": {f"backbone.w{i}": array for i in range(keys)}}))
    return path


def stride0_pth(path: Path, side: int = 65536) -> Path:
    """A 2 KB `.pth` holding a side x side float32 tensor expanded from one element."""
    torch.save({"model": {"backbone.blocks.0.attn.qkv.weight": torch.zeros(1).expand(side, side)}},
               path)
    return path


def shared_storage_pth(path: Path, views: int = 2000, numel: int = 1 << 18) -> Path:
    """A `.pth` of `views` entries viewing one stored buffer of `numel` floats."""
    base = torch.zeros(numel)
    torch.save({"model": {f"backbone.w{i}": base[:] for i in range(views)}}, path)
    return path


def deflated_pth(path: Path, numel: int = 1 << 24) -> Path:
    """A `.pth` re-zipped with compression: a small file whose member expands to 64 MiB."""
    import zipfile

    plain = path.with_suffix(".plain")
    torch.save({"model": {"backbone.w": torch.zeros(numel)}}, plain)
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    plain.unlink()
    return path


def flip_tensor_bytes(path: Path, count: int = 64) -> Path:
    """Invert `count` bytes in the middle of the largest tensor of the zip checkpoint `path`
    (the zip stays well formed; only the member's CRC no longer matches)."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename),
                   key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    header = info.header_offset  # local header: 30 bytes, then the name and the extra field
    name_len = int.from_bytes(raw[header + 26:header + 28], "little")
    extra_len = int.from_bytes(raw[header + 28:header + 30], "little")
    start = header + 30 + name_len + extra_len + info.file_size // 2 - count // 2
    raw[start:start + count] = bytes(b ^ 0xFF for b in raw[start:start + count])
    path.write_bytes(bytes(raw))
    return path


def numpy_pkl(path: Path, array: np.ndarray) -> Path:
    """A detectron2-style `.pkl` holding one array (float128, big-endian, ...)."""
    path.write_bytes(pickle.dumps({"model": {"backbone.w": array}}, protocol=2))
    return path
