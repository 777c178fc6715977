"""A DetectionCheckpointer that refuses checkpoints written for another model."""

from __future__ import annotations

from typing import Any

from detectron2.checkpoint import DetectionCheckpointer

from .compare import compare_state_dicts
from .loading import CheckpointError


class StrictCheckpointer(DetectionCheckpointer):
    """detectron2's checkpointer, except that loading a ``model`` state whose keys or shapes
    differ from the model's raises a CheckpointError listing them. detectron2 would load the
    keys that fit and only log the rest, so a resumed run could silently continue from
    partly random weights. The check runs on the checkpoint the load reads anyway."""

    def _load_model(self, checkpoint: Any):
        report = compare_state_dicts(checkpoint["model"], self.model.state_dict())
        if not report.ok:
            raise CheckpointError(
                f"the checkpoint was written for another model.\n{report.format()}"
            )
        return super()._load_model(checkpoint)
