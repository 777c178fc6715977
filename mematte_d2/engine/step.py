"""One optimisation step: seeded per iteration, optional autocast, grad scaling and clipping."""

import time

import torch
from detectron2.engine import SimpleTrainer
from detectron2.utils import comm

from mematte_d2.data.resumable import sample_seed
from mematte_d2.utils.precision import autocast
from mematte_d2.utils.precision import autocast_dtype as _autocast_dtype

__all__ = ["MattingStepRunner", "autocast_dtype"]


def autocast_dtype(name: str, device: torch.device) -> torch.dtype:
    """The autocast dtype for ``train.amp.precision`` (amp on: fp16 or bf16; CPU: bf16 only)."""
    dtype = _autocast_dtype(name, device, setting="train.amp.precision")
    if dtype is None:
        raise ValueError(
            f"train.amp.precision={name!r} is not a reduced precision; set train.amp.enabled="
            "False for fp32 training"
        )
    return dtype


class MattingStepRunner(SimpleTrainer):
    """detectron2's SimpleTrainer step with the extras matting training needs.

    * torch's global RNG is re-seeded from (seed, rank, iteration) before each step, so the
      routing decisions (Gumbel noise) of iteration k do not depend on how the run got there;
      this is what makes a resumed run identical to an uninterrupted one.
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
        use_scaler = amp_dtype == torch.float16 and device.type == "cuda"
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
        if not torch.isfinite(losses):
            raise FloatingPointError(
                f"loss became {losses.item()} at iteration {self.iter}: "
                + ", ".join(f"{k}={v.item():.4g}" for k, v in loss_dict.items())
            )
        if self.grad_scaler is not None:
            self.grad_scaler.scale(losses).backward()
            self.grad_scaler.unscale_(self.optimizer)
        else:
            losses.backward()
        if self.clip_grad_norm:
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.clip_grad_norm)
        self.after_backward()
        self._write_metrics(loss_dict, data_time)
        if self.grad_scaler is not None:
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            self.optimizer.step()

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.grad_scaler is not None:
            state["grad_scaler"] = self.grad_scaler.state_dict()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        if self.grad_scaler is not None and "grad_scaler" in state_dict:
            self.grad_scaler.load_state_dict(state_dict["grad_scaler"])
