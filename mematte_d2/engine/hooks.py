"""Training hooks specific to matting."""

import logging
import os

import cv2
import torch
from detectron2.engine import HookBase
from detectron2.utils.events import get_event_storage
from torch.nn.parallel import DistributedDataParallel

from .visualize import matting_sheet_row, stack_rows

__all__ = ["MattingVisualizer", "unwrap_model"]

logger = logging.getLogger(__name__)


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


class MattingVisualizer(HookBase):
    """Every `period` iterations, predict a few fixed samples and log a sheet to TensorBoard.

    Each row: input, trimap, predicted alpha, ground truth and one map per router (red =
    token sent to global attention). The sheet is also saved as ``<output_dir>/vis/iter_*.png``
    when `output_dir` is given. Samples larger than `max_size` are center-cropped.
    """

    def __init__(self, period: int, samples: list[dict], output_dir: str | None = None,
                 max_size: int = 512):
        self.period = period
        self.samples = [_center_crop(s, max_size) for s in samples]
        self.output_dir = output_dir

    @torch.no_grad()
    def _sheet(self):
        model = unwrap_model(self.trainer.model)
        was_training = model.training
        model.eval()
        try:
            rows = [matting_sheet_row(s, model([s])[0]) for s in self.samples]
        finally:
            model.train(was_training)
        return stack_rows(rows)

    def after_step(self) -> None:
        next_iter = self.trainer.iter + 1
        if not self.samples or self.period <= 0 or next_iter % self.period:
            return
        sheet = self._sheet()
        get_event_storage().put_image("matting/sheet", torch.from_numpy(sheet).permute(2, 0, 1))
        if self.output_dir:
            folder = os.path.join(self.output_dir, "vis")
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, f"iter_{next_iter:07d}.png")
            cv2.imwrite(path, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def _center_crop(sample: dict, size: int) -> dict:
    h, w = sample["image"].shape[-2:]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    out = dict(sample)
    for key in ("image", "trimap", "alpha"):
        if key in sample:
            out[key] = sample[key][..., top : top + size, left : left + size]
    return out
