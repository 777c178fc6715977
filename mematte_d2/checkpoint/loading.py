"""Reading a weights file of any common container into a flat state dict, with clear errors.

Accepted: detectron2 / plain PyTorch checkpoints (`{"model": sd}`, `{"state_dict": sd}` or
the state dict itself, optionally with a DDP `module.` prefix), detectron2 `.pkl` files of
numpy arrays, `.safetensors` files, and a Hugging Face model directory holding one of those.
No code in a weights file runs on load: PyTorch files are read with
`torch.load(weights_only=True)`, `.pkl` files with an unpickler that admits only numpy arrays,
numbers, strings and plain containers (`safe_pickle`), and a file asking for anything else is
refused with an UnsafeCheckpointError. Nor may a file make the loader allocate far more than
it holds (`limits`): overlapping tensors and entries sharing or repeating data are refused,
and a zip checkpoint whose bytes do not match their CRCs is unreadable.
"""

import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from .errors import CheckpointError
from .limits import WeightsLimitError, budget, check_entries, check_zip
from .safe_pickle import UnsafePickleError, load_pickle

# File names looked up, in order, when a directory is given (Hugging Face / detectron2 outputs).
DIRECTORY_CANDIDATES = ("model.safetensors", "pytorch_model.bin", "model_final.pth")
_NESTED_KEYS = ("model", "state_dict", "model_state_dict")


class UnreadableCheckpointError(CheckpointError):
    """The file is missing, empty, truncated or not in a checkpoint format."""


class UnsafeCheckpointError(CheckpointError):
    """The file asks to run code (or build objects other than data) when loaded: refused."""


def _resolve(path: Path) -> Path:
    if path.is_dir():
        for name in DIRECTORY_CANDIDATES:
            if (path / name).is_file():
                return path / name
        raise UnreadableCheckpointError(
            f"{path}: directory holds none of the weight files {', '.join(DIRECTORY_CANDIDATES)}"
        )
    if not path.is_file():
        raise UnreadableCheckpointError(f"{path}: no such weights file")
    return path


def _refused(path: Path, reason: str) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(f"{path}: refused to load: {reason}")


def _weights_only_detail(message: str) -> tuple[str, bool]:
    """(the telling line, whether it refuses a global) of a torch.load(weights_only=True)
    error: torch's first line suggests weights_only=False, which is exactly what not to do."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("Weights only load failed"):
        return (lines[0] if lines else "the file is empty or cut short"), False
    refusals = [line for line in lines if "GLOBAL" in line]
    if refusals:
        return refusals[0], True
    details = [line for line in lines[1:] if "weights_only" not in line]
    return (details[0] if details else "content a weights file cannot hold"), False


def read_pickle_file(path: str | Path) -> object:
    """Unpickle a `.pkl` weights file with `safe_pickle.load_pickle`; clear errors naming it."""
    path = Path(path)
    try:
        return load_pickle(path)
    except UnsafePickleError as e:
        raise _refused(path, str(e)) from None
    except Exception as e:  # truncated or garbage pickles raise many types
        raise UnreadableCheckpointError(
            f"{path}: not a readable pickle checkpoint ({type(e).__name__}: {e})"
        ) from e


def read_torch_file(path: str | Path) -> object:
    """`torch.load(path, weights_only=True)` on the CPU, with clear errors naming the file."""
    path = Path(path)
    try:
        check_zip(path)
    except zipfile.BadZipFile as e:
        raise UnreadableCheckpointError(f"{path}: not a readable PyTorch checkpoint: {e}") from None
    except WeightsLimitError as e:
        raise _refused(path, str(e)) from None
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types (UnpicklingError, RuntimeError, EOFError)
        detail, refused = _weights_only_detail(str(e))
        if refused:
            raise _refused(path, f"{detail} (a weights file should hold tensors only)") from None
        raise UnreadableCheckpointError(
            f"{path}: not a PyTorch checkpoint (torch.load failed: {type(e).__name__}: {detail})"
        ) from e


def _read_container(path: Path) -> object:
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as e:
            raise UnreadableCheckpointError(
                f"{path}: not a readable safetensors file ({e})"
            ) from e
    if path.suffix == ".pkl":
        return read_pickle_file(path)
    return read_torch_file(path)


def _as_tensor(key: str, value: object, path: Path) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        # a writable C-ordered copy in native byte order; np.ascontiguousarray would turn 0-d
        # arrays (BatchNorm's num_batches_tracked) into shape (1,)
        native = np.array(value, dtype=value.dtype.newbyteorder("="), order="C")
        try:
            return torch.from_numpy(native)
        except TypeError:  # float128 and the like: no torch dtype holds them
            raise CheckpointError(
                f"{path}: entry {key!r} is a numpy array of dtype {value.dtype}, which PyTorch "
                "cannot hold"
            ) from None
    kind = (
        f"numpy array of dtype {value.dtype}"
        if isinstance(value, np.ndarray)
        else type(value).__name__
    )
    raise CheckpointError(
        f"{path}: entry {key!r} is a {kind}, not a tensor: not a model state dict"
    )


def extract_state_dict(
    container: object, source: str = "checkpoint", limit: int | None = None
) -> dict[str, torch.Tensor]:
    """The flat name -> tensor mapping inside a loaded checkpoint container.

    `limit` bounds the bytes all entries take (`limits.budget` of the file they came from);
    an overlapping tensor or a larger total is refused (UnsafeCheckpointError) before any
    entry is copied. An array under several keys becomes one tensor, not one copy per key.
    """
    path = Path(source)
    if not isinstance(container, Mapping):
        raise CheckpointError(
            f"{source}: holds a {type(container).__name__}, not a state dict or checkpoint dict"
        )
    for key in _NESTED_KEYS:
        if isinstance(container.get(key), Mapping):
            container = container[key]
            break
    odd_keys = [k for k in container if not isinstance(k, str)]
    if odd_keys:
        raise CheckpointError(f"{source}: key {odd_keys[0]!r} is not a parameter name")
    entries = [(k, v) for k, v in container.items() if not k.startswith("__")]
    try:
        check_entries(entries, limit)
    except WeightsLimitError as e:
        raise _refused(path, str(e)) from None
    converted: dict[int, torch.Tensor] = {}
    state = {}
    for key, value in entries:
        if id(value) not in converted:
            converted[id(value)] = _as_tensor(key, value, path)
        state[key] = converted[id(value)]
    if not state:
        raise CheckpointError(f"{source}: contains no tensors")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read `path` (file, model directory, a ``file://`` URL, a URL detectron2's PathManager can
    fetch, or a model-zoo checkpoint name, fetched into the cache once) and return its flat
    state dict of CPU tensors."""
    from mematte_d2.model_zoo.checkpoints import file_url_path, resolve_weights

    path = file_url_path(resolve_weights(path))
    if "://" in str(path):
        from detectron2.utils.file_io import PathManager

        path = PathManager.get_local_path(str(path))
    resolved = _resolve(Path(path))
    return extract_state_dict(_read_container(resolved), str(resolved), budget(resolved))
