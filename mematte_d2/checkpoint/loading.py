"""Reading a weights file of any common container into a flat state dict, with clear errors.

Accepted: detectron2 / plain PyTorch checkpoints (`{"model": sd}`, `{"state_dict": sd}` or
the state dict itself, optionally with a DDP `module.` prefix), detectron2 `.pkl` files of
numpy arrays, `.safetensors` files, and a Hugging Face model directory holding one of those.
Files are read with `torch.load(weights_only=True)`: no arbitrary code runs on load.
"""

import pickle
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

# File names looked up, in order, when a directory is given (Hugging Face / detectron2 outputs).
DIRECTORY_CANDIDATES = ("model.safetensors", "pytorch_model.bin", "model_final.pth")
_NESTED_KEYS = ("model", "state_dict", "model_state_dict")


class CheckpointError(ValueError):
    """A weights file is missing, not a checkpoint, or does not fit the model."""


def _resolve(path: Path) -> Path:
    if path.is_dir():
        for name in DIRECTORY_CANDIDATES:
            if (path / name).is_file():
                return path / name
        raise CheckpointError(
            f"{path}: directory holds none of the weight files {', '.join(DIRECTORY_CANDIDATES)}"
        )
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    return path


def _read_container(path: Path) -> object:
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from e
    if path.suffix == ".pkl":
        try:
            with open(path, "rb") as f:
                return pickle.load(f, encoding="latin1")
        except (pickle.UnpicklingError, EOFError, ValueError, AttributeError) as e:
            raise CheckpointError(f"{path}: not a readable pickle checkpoint ({e})") from e
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types (UnpicklingError, RuntimeError, EOFError)
        raise CheckpointError(
            f"{path}: not a PyTorch checkpoint (torch.load failed: {type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''})"
        ) from e


def _as_tensor(key: str, value: object, path: Path) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    raise CheckpointError(
        f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor: not a model state dict"
    )


def extract_state_dict(container: object, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The flat name -> tensor mapping inside a loaded checkpoint container."""
    path = Path(source)
    if not isinstance(container, Mapping):
        raise CheckpointError(
            f"{source}: holds a {type(container).__name__}, not a state dict or checkpoint dict"
        )
    for key in _NESTED_KEYS:
        if isinstance(container.get(key), Mapping):
            container = container[key]
            break
    state = {k: _as_tensor(k, v, path) for k, v in container.items() if not k.startswith("__")}
    if not state:
        raise CheckpointError(f"{source}: contains no tensors")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read `path` (file, model directory or a URL detectron2's PathManager can fetch) and
    return its flat state dict of CPU tensors."""
    if "://" in str(path):
        from detectron2.utils.file_io import PathManager

        path = PathManager.get_local_path(str(path))
    resolved = _resolve(Path(path))
    return extract_state_dict(_read_container(resolved), str(resolved))
