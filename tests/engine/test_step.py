"""The training step reads the GPU once per step, after the backward pass was queued.

On CUDA every device-to-host copy (``.cpu()``, ``.item()``, ``float()``...) waits for the GPU;
here a TorchFunctionMode records those calls, so the CPU emulates where the syncs fall."""

import itertools

import pytest
import torch
from detectron2.utils.events import EventStorage
from torch.overrides import TorchFunctionMode

from mematte_d2.engine import MattingStepRunner
from mematte_d2.modeling.meta_arch import MEMatte
from mematte_d2.utils.events import flush_device_scalars

HOST_READS = {torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.numpy,
              torch.Tensor.__float__, torch.Tensor.__bool__, torch.Tensor.__int__}


class _DeviceReads(TorchFunctionMode):
    """Emulates a GPU on the CPU: every tensor counts as on the device, except the results of
    ``.cpu()`` and of operations on such host tensors only. Appends "copy" to `events` for each
    ``.cpu()`` of a device tensor and "read" for any other host read of one (each would wait
    for the GPU)."""

    def __init__(self, events: list):
        super().__init__()
        self.events = events

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [a for a in [*args, *kwargs.values()] if isinstance(a, torch.Tensor)]
        on_host = bool(tensors) and all(getattr(t, "_on_host", False) for t in tensors)
        if func is torch.Tensor.cpu:
            if not on_host:
                self.events.append("copy")
            result = args[0].clone()
        else:
            if func in HOST_READS and not on_host:
                self.events.append("read")
            result = func(*args, **kwargs)
        if on_host or func is torch.Tensor.cpu:
            for out in result if isinstance(result, (tuple, list)) else [result]:
                if isinstance(out, torch.Tensor):
                    out._on_host = True
        return result


class _MarkBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, events):
        ctx.events = events
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        ctx.events.append("backward")
        return grad, None


class _RoutedModel(torch.nn.Module):
    """A loss and keep ratios logged as MEMatte logs them."""

    def __init__(self, events):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([0.5, 1.5]))
        self.events = events

    def forward(self, batch):
        MEMatte._log_keep_ratios(self.w.sigmoid())
        self.events.append("forward done")
        w = _MarkBackward.apply(self.w, self.events)
        return {"loss_a": (w ** 2).sum(), "loss_b": w.sum()}


def test_one_host_copy_per_step_after_backward_and_keep_ratios_logged():
    events = []
    model = _RoutedModel(events)
    runner = MattingStepRunner(model, itertools.repeat([{}]),
                               torch.optim.SGD(model.parameters(), lr=0.1), seed=0,
                               device=torch.device("cpu"))
    with EventStorage(0) as storage, _DeviceReads(events):
        runner.run_step()
    assert events == ["forward done", "backward", "copy"]
    latest = storage.latest()
    expected = torch.tensor([0.5, 1.5]).sigmoid()
    assert latest["keep_ratio/router0"][0] == pytest.approx(float(expected[0]))
    assert latest["keep_ratio/router1"][0] == pytest.approx(float(expected[1]))
    assert latest["keep_ratio/mean"][0] == pytest.approx(float(expected.mean()))
    assert latest["loss_a"][0] == pytest.approx(0.25 + 2.25)


def test_keep_ratio_logging_reads_nothing_until_flushed():
    events = []
    with EventStorage(0) as storage:
        with _DeviceReads(events):
            MEMatte._log_keep_ratios(torch.tensor([[0.25], [0.75]]))
        assert events == [] and "keep_ratio/mean" not in storage.latest()
        flush_device_scalars(storage)
    assert storage.latest()["keep_ratio/mean"][0] == pytest.approx(0.5)
    MEMatte._log_keep_ratios(torch.tensor([0.5]))  # no storage: nothing to log into


def test_nonfinite_loss_raises_after_backward_before_the_optimizer_step():
    events = []

    class _Nan(_RoutedModel):
        def forward(self, batch):
            losses = super().forward(batch)
            return {**losses, "loss_bad": losses["loss_a"] * float("nan")}

    model = _Nan(events)
    runner = MattingStepRunner(model, itertools.repeat([{}]),
                               torch.optim.SGD(model.parameters(), lr=0.1), seed=0,
                               device=torch.device("cpu"))
    with EventStorage(0), pytest.raises(FloatingPointError, match="loss_bad=nan"):
        runner.run_step()
    assert "backward" in events
    assert torch.equal(model.w.detach(), torch.tensor([0.5, 1.5]))  # no step taken
