"""One optimisation step: seeded per iteration, optional autocast, grad scaling and clipping."""

import logging
import time
from collections.abc import Mapping

import torch
from detectron2.engine import SimpleTrainer
from detectron2.utils import comm
from detectron2.utils.events import get_event_storage

from mematte_d2.data.resumable import sample_seed
from mematte_d2.utils.distributed import ranks_where
from mematte_d2.utils.events import pop_device_scalars
from mematte_d2.utils.precision import PRECISIONS, autocast, check_bf16_native

__all__ = ["MattingStepRunner", "training_autocast_dtype", "uses_grad_scaler"]

logger = logging.getLogger(__name__)


def training_autocast_dtype(amp: Mapping, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``train.amp`` on `device`, None for fp32.

    The recipes train as the authors' release does, with fp16 autocast and a GradScaler; CPU
    autocast has no fp16, so there a float16 setting trains in fp32 (logged once). bfloat16
    works on both devices.
    """
    if not amp.get("enabled", False):
        return None
    name = amp.get("precision", "float16")
    if name not in PRECISIONS or PRECISIONS[name] is None:
        raise ValueError(
            f"train.amp.precision={name!r}: choose float16 or bfloat16 (or set "
            "train.amp.enabled=False for fp32 training)"
        )
    dtype = PRECISIONS[name]
    if device.type == "cpu" and dtype == torch.float16:
        logger.info("train.amp: float16 autocast needs CUDA; training in float32 on the CPU")
        return None
    check_bf16_native(dtype, device, f"train.amp.precision={name!r}")
    return dtype


def uses_grad_scaler(amp_dtype: torch.dtype | None, device: torch.device) -> bool:
    """Whether training in `amp_dtype` on `device` scales its losses (fp16 autocast on CUDA)."""
    return amp_dtype == torch.float16 and device.type == "cuda"


class MattingStepRunner(SimpleTrainer):
    """detectron2's SimpleTrainer step with the extras matting training needs.

    * torch's global RNG is re-seeded from (seed, rank, iteration) before each step, so the
      routing decisions (Gumbel noise) of iteration k do not depend on how the run got there.
      With deterministic kernels (any CPU run; on CUDA only with ``train.deterministic``, see
      docs/determinism.md) a resumed run is then identical to an uninterrupted one.
    * autocast (fp16 with a GradScaler or bf16 on CUDA, bf16 on CPU) when ``amp_dtype`` is set.
    * gradient clipping by global norm when ``clip_grad_norm`` is set.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        data_loader,
        optimizer: torch.optim.Optimizer,
        *,
        seed: int,
        device: torch.device,
        amp_dtype: torch.dtype | None = None,
        clip_grad_norm: float | None = None,
    ):
        super().__init__(model, data_loader, optimizer)
        self.seed = seed
        self.device = device
        self.amp_dtype = amp_dtype
        self.clip_grad_norm = clip_grad_norm
        use_scaler = uses_grad_scaler(amp_dtype, device)
        self.grad_scaler = torch.amp.GradScaler("cuda") if use_scaler else None

    def run_step(self) -> None:
        assert self.model.training, "[MattingStepRunner] model was switched to eval mode"
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        data_time = time.perf_counter() - start

        torch.manual_seed(sample_seed(self.seed, comm.get_rank(), self.iter, stream=1))
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.amp_dtype, self.device):
            loss_dict = self.model(data)
        losses = sum(loss_dict.values())
        if self.grad_scaler is not None:
            self.grad_scaler.scale(losses).backward()
        else:
            losses.backward()
        # One device-to-host copy per step, after the backward pass was queued (a copy before
        # it would leave the GPU idle while the host launches the backward): the losses for
        # the non-finite check and the log, and the scalars the model logged as tensors.
        storage = get_event_storage()
        logged = pop_device_scalars(storage)
        host = self._to_host({**logged, **loss_dict})
        host_losses = {name: host[name] for name in loss_dict}
        self._check_finite(host_losses)
        if self.grad_scaler is not None:
            self.grad_scaler.unscale_(self.optimizer)
        if self.clip_grad_norm:
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.clip_grad_norm)
        self.after_backward()
        self._write_metrics(host_losses, data_time)
        for name in logged:
            storage.put_scalar(name, float(host[name]))
        if self.grad_scaler is not None:
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            self.optimizer.step()

    @staticmethod
    def _to_host(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """0-d tensors copied to the host together (one sync on CUDA)."""
        stacked = torch.stack([v.detach().float().reshape(()) for v in values.values()])
        return dict(zip(values, stacked.cpu()))

    def _check_finite(self, losses: dict[str, torch.Tensor]) -> None:
        """Raise FloatingPointError on every rank together, before the optimizer step, when any
        rank's loss is not finite (a rank raising alone would leave the others waiting in the
        next collective). Called after backward, so every rank has joined the gradient
        all-reduce before it votes (a gloo all-reduce of the host copies, also under NCCL)."""
        finite = all(bool(torch.isfinite(v)) for v in losses.values())
        bad_ranks = ranks_where(not finite)
        if bad_ranks:
            mine = ", ".join(f"{k}={v.item():.4g}" for k, v in losses.items())
            raise FloatingPointError(
                f"loss became non-finite at iteration {self.iter} on rank(s) {bad_ranks} "
                f"(rank {comm.get_rank()}: {mine})"
            )

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.grad_scaler is not None:
            state["grad_scaler"] = self.grad_scaler.state_dict()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        if self.grad_scaler is not None and "grad_scaler" in state_dict:
            self.grad_scaler.load_state_dict(state_dict["grad_scaler"])
