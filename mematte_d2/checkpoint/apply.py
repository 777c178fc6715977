"""Loading a weights file into a built model, refusing anything that does not fit exactly."""

from pathlib import Path

import torch
from torch import nn

from .compare import compare_state_dicts, describe_layout
from .convert import hf_vitmatte_to_d2, is_hf_vitmatte
from .loading import CheckpointError, load_state_dict

TEACHER_PREFIX = "teacher_backbone."


def _has_teacher(model: nn.Module) -> bool:
    return getattr(model, "teacher_backbone", None) is not None


def load_matting_weights(model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """Load `path` into `model` strictly and return the state dict that was loaded.

    `path` may be a model-zoo name; a transformers VitMatte checkpoint is converted to this
    project's layout first. Released MEMatte checkpoints carry the distillation teacher
    (`teacher_backbone.*`); an inference model built without a teacher ignores those keys.
    Any other difference (missing, unexpected or reshaped keys) raises a CheckpointError
    listing them and naming the architecture the file seems to belong to.
    """
    state = load_state_dict(path)
    if is_hf_vitmatte(state):
        state = hf_vitmatte_to_d2(state)
    if not _has_teacher(model):
        state = {k: v for k, v in state.items() if not k.startswith(TEACHER_PREFIX)}
    report = compare_state_dicts(state, model.state_dict())
    if not report.ok:
        raise CheckpointError(
            f"{path} does not fit the model built from the config ({type(model).__name__}); "
            f"it looks like {describe_layout(state)}.\n{report.format()}"
        )
    model.load_state_dict(state, strict=True)
    return state
