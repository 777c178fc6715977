"""Loading, checking and converting matting checkpoints."""

from .apply import load_matting_weights
from .compare import KeyReport, compare_state_dicts, describe_layout
from .convert import (
    ConversionError,
    fill_missing_from,
    hf_vitmatte_to_d2,
    is_hf_vitmatte,
    vitmatte_to_mematte,
)
from .initialize import initialize_from_checkpoint
from .loading import (
    CheckpointError,
    UnreadableCheckpointError,
    UnsafeCheckpointError,
    extract_state_dict,
    load_state_dict,
)
from .periodic import PeriodicCheckpointer, prune_checkpoints
from .resume import resume_candidates
from .safe_pickle import load_pickle
from .strict import StrictCheckpointer

__all__ = [
    "CheckpointError",
    "ConversionError",
    "KeyReport",
    "PeriodicCheckpointer",
    "StrictCheckpointer",
    "UnreadableCheckpointError",
    "UnsafeCheckpointError",
    "compare_state_dicts",
    "describe_layout",
    "extract_state_dict",
    "fill_missing_from",
    "hf_vitmatte_to_d2",
    "initialize_from_checkpoint",
    "is_hf_vitmatte",
    "load_matting_weights",
    "load_pickle",
    "load_state_dict",
    "prune_checkpoints",
    "resume_candidates",
    "vitmatte_to_mematte",
]
