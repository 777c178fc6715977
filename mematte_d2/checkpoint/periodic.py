"""Periodic checkpoints whose `max_to_keep` holds across restarts of a run."""

import logging
import re
from pathlib import Path

from detectron2.engine import hooks

from .resume import CHECKPOINT_PREFIX, newest_first, tagged_checkpoint

logger = logging.getLogger(__name__)


def prune_checkpoints(
    folder: str | Path, keep: int, prefix: str = CHECKPOINT_PREFIX
) -> list[Path]:
    """Delete all but the `keep` most recently written ``{prefix}_{iteration}.pth`` files of
    `folder` (``{prefix}_final.pth`` and ``{prefix}_best.pth`` are not periodic and stay, as
    does the file ``last_checkpoint`` names). Returns the deleted paths."""
    if keep < 1:
        raise ValueError(f"checkpointer.max_to_keep must be at least 1, got {keep}")
    pattern = re.compile(rf"{re.escape(prefix)}_\d+\.pth")
    periodic = [p for p in Path(folder).iterdir() if pattern.fullmatch(p.name) and p.is_file()]
    tagged = tagged_checkpoint(folder)
    stale = [p for p in newest_first(periodic)[keep:] if str(p) != tagged]
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        logger.info("max_to_keep=%d: deleted %s", keep, ", ".join(p.name for p in stale))
    return stale


class PeriodicCheckpointer(hooks.PeriodicCheckpointer):
    """detectron2's hook, except that `max_to_keep` also counts the periodic checkpoints that
    earlier runs left in the folder. detectron2 counts only those written by this process,
    so every restart of a run leaves up to `max_to_keep` more files behind."""

    def __init__(self, checkpointer, period: int, max_to_keep: int | None = None, **kwargs):
        if max_to_keep is not None and max_to_keep < 1:
            raise ValueError(f"checkpointer.max_to_keep must be at least 1, got {max_to_keep}")
        super().__init__(checkpointer, period, max_to_keep=None, **kwargs)
        self.keep = max_to_keep

    def step(self, iteration: int, **kwargs) -> None:
        super().step(iteration, **kwargs)
        if self.keep is not None and (int(iteration) + 1) % self.period == 0:
            prune_checkpoints(self.checkpointer.save_dir, self.keep, self.file_prefix)
