"""A DetectionCheckpointer that reads only data, writes atomically and refuses checkpoints
written for another model."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import torch
from detectron2.checkpoint import DetectionCheckpointer

from mematte_d2.utils.atomic import atomic_write, atomic_write_bytes

from .compare import compare_state_dicts
from .limits import budget
from .loading import (
    CheckpointError,
    UnreadableCheckpointError,
    extract_state_dict,
    read_pickle_file,
    read_torch_file,
)
from .resume import LAST_CHECKPOINT, resume_candidates

logger = logging.getLogger(__name__)


class StrictCheckpointer(DetectionCheckpointer):
    """detectron2's checkpointer with four changes:

    * Loading a ``model`` state whose keys or shapes differ from the model's raises a
      CheckpointError listing them. detectron2 would load the keys that fit and only log the
      rest, so a resumed run could silently continue from partly random weights.
    * ``.pkl`` files go through the data-only unpickler and PyTorch files through
      ``torch.load(weights_only=True)``: a crafted file cannot run code (UnsafeCheckpointError).
    * Checkpoints and ``last_checkpoint`` are written to a temporary file, then renamed: a crash
      or a full disk never leaves a truncated checkpoint under the real name.
    * `resume_latest` falls back to the newest checkpoint that reads when the last one does not.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._required_state: list[str] = []

    # ------------------------------------------------------------------ reading
    def load(self, path: str, checkpointables: list[str] | None = None) -> dict[str, Any]:
        """detectron2's `load`; a file lacking one of the requested checkpointables (the
        optimizer and iteration of a training checkpoint) is refused before anything loads."""
        self._required_state = list(self.checkpointables if checkpointables is None else
                                    checkpointables)
        try:
            return super().load(path, checkpointables)
        finally:
            # detectron2 clears this only after a successful load; a failed one would make
            # every later load trip its assertion.
            self._parsed_url_during_load = None

    def _load_file(self, filename: str) -> dict[str, Any]:
        if filename.endswith(".pkl"):
            checkpoint = {"model": read_pickle_file(filename)}
        elif filename.endswith(".pyth"):
            raise UnreadableCheckpointError(
                f"{filename}: pycls (.pyth) checkpoints hold classification models, not matting"
            )
        else:
            checkpoint = super()._load_file(filename)  # calls _torch_load
        checkpoint["model"] = extract_state_dict(checkpoint["model"], filename, budget(filename))
        return checkpoint

    def _torch_load(self, f: str) -> dict[str, Any]:
        loaded = read_torch_file(f)
        if not isinstance(loaded, Mapping):
            raise UnreadableCheckpointError(
                f"{f}: holds a {type(loaded).__name__}, not a checkpoint dict"
            )
        return dict(loaded)

    def _load_model(self, checkpoint: Any):
        report = compare_state_dicts(checkpoint["model"], self.model.state_dict())
        if not report.ok:
            raise CheckpointError(
                f"the checkpoint was written for another model.\n{report.format()}"
            )
        missing = [key for key in self._required_state if key not in checkpoint]
        if missing:
            raise UnreadableCheckpointError(
                f"holds no {', '.join(missing)} state: a weights file, not a training checkpoint"
            )
        return super()._load_model(checkpoint)

    def resume_latest(self) -> str | None:
        """Load the newest checkpoint of `save_dir` that reads, with all checkpointables.

        Tries the file ``last_checkpoint`` names, then the other ``model_*.pth`` files, most
        recently written first. A missing, empty, truncated or weights-only file is skipped
        with a warning saying why. Returns the path loaded, or None when the folder holds no
        checkpoint at all. Raises a CheckpointError when checkpoints exist but none reads, or
        when one reads but does not fit the model or is refused as unsafe (no fallback then:
        those are mistakes to fix, not accidents of an interrupted run).
        """
        candidates = resume_candidates(self.save_dir)
        if not candidates:
            logger.info("No checkpoint in %s to resume from", self.save_dir)
            return None
        skipped = []
        for path, problem in candidates:
            if problem:
                reason = f"{path}: {problem}"
            else:
                try:
                    self.load(path)
                    return path
                except UnreadableCheckpointError as e:
                    reason = str(e) if str(e).startswith(path) else f"{path}: {e}"
                except CheckpointError as e:
                    raise CheckpointError(f"cannot resume from {path}: {e}") from None
            logger.warning("Resume: skipping %s", reason)
            skipped.append(reason)
        raise CheckpointError(
            f"cannot resume: no checkpoint in {self.save_dir} can be loaded "
            "(remove --resume to start from scratch):\n  " + "\n  ".join(skipped)
        )

    # ------------------------------------------------------------------ writing
    def save(self, name: str, **kwargs: Any) -> None:
        """Write ``{save_dir}/{name}.pth`` atomically and tag it in ``last_checkpoint``."""
        if not self.save_dir or not self.save_to_disk:
            return
        basename = f"{name}.pth"
        if os.path.basename(basename) != basename:
            raise ValueError(f"checkpoint name {name!r} must not contain a folder")
        data = {"model": self.model.state_dict()}
        data.update({key: obj.state_dict() for key, obj in self.checkpointables.items()})
        data.update(kwargs)
        path = os.path.join(self.save_dir, basename)
        self.logger.info("Saving checkpoint to %s", path)
        atomic_write(path, lambda f: torch.save(data, f))
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        atomic_write_bytes(
            os.path.join(self.save_dir, LAST_CHECKPOINT), last_filename_basename.encode()
        )
