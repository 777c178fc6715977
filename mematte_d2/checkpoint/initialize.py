"""Training initialisation from a ViTMatte or MEMatte checkpoint (``train.init_checkpoint``)."""

import logging
from pathlib import Path

from torch import nn

from .apply import TEACHER_PREFIX, _has_teacher
from .compare import compare_state_dicts, describe_layout
from .convert import fill_missing_from, vitmatte_to_mematte
from .loading import CheckpointError, load_state_dict

logger = logging.getLogger(__name__)

# Modules a ViTMatte checkpoint cannot provide; they keep their fresh initialisation.
NEW_IN_MEMATTE = ("backbone.routers.", ".efficient_block.")


def _is_routed(model: nn.Module) -> bool:
    return any(k.startswith("backbone.routers.") for k in model.state_dict())


def initialize_from_checkpoint(model: nn.Module, path: str | Path) -> list[str]:
    """Load `path` for training; return the keys left at their fresh initialisation.

    A ViTMatte checkpoint given to a routed MEMatte is converted as the paper does (student
    keys copied, teacher keys prefixed ``teacher_``); routers and token refiners then start
    fresh. Anything else that does not fit (other shapes, unknown keys, missing encoder or
    decoder weights) raises a CheckpointError before training starts.
    """
    state = load_state_dict(path)
    is_mematte = any(k.startswith(("backbone.routers.", TEACHER_PREFIX)) for k in state)
    if _is_routed(model) and not is_mematte:
        state, dropped = vitmatte_to_mematte(state)
        if dropped:
            logger.info("init_checkpoint: dropped %d global-block rel_pos keys", len(dropped))
    if not _has_teacher(model):
        state = {k: v for k, v in state.items() if not k.startswith(TEACHER_PREFIX)}
    report = compare_state_dicts(state, model.state_dict())
    fresh = [k for k in report.missing if any(part in k for part in NEW_IN_MEMATTE)]
    blocking = [k for k in report.missing if k not in fresh]
    if report.unexpected or report.mismatched or blocking:
        raise CheckpointError(
            f"train.init_checkpoint={path} does not fit the model built from the config "
            f"({type(model).__name__}); it looks like {describe_layout(state)}.\n{report.format()}"
        )
    fill_missing_from(state, model.state_dict())
    model.load_state_dict(state, strict=True)
    if fresh:
        logger.info("init_checkpoint: %d routing keys start from scratch", len(fresh))
    return fresh
