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
