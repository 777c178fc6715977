"""Per-image model time, measured by evaluation rather than by the model.

The model stays free of clocks and device synchronisation; the evaluation wraps it in
:class:`TimedModel`, which waits for the device once per call and hands the seconds per image
to the evaluator through each output's ``"inference_time"``.
"""

from __future__ import annotations

import time

import torch
from torch import nn


class TimedModel(nn.Module):
    """``model`` whose outputs also carry ``"inference_time"``: the call's wall time (CUDA work
    included) divided by the number of images in the batch."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batched_inputs: list[dict]) -> list[dict]:
        start = time.perf_counter()
        outputs = self.model(batched_inputs)
        devices = {v.device for out in outputs for v in out.values()
                   if isinstance(v, torch.Tensor) and v.is_cuda}
        for device in devices:
            torch.cuda.synchronize(device)
        seconds = (time.perf_counter() - start) / max(1, len(batched_inputs))
        return [{**out, "inference_time": seconds} for out in outputs]
