"""MattingInference: the inference engineering around a plain matting model.

``MEMatte.forward`` is the plain tensor-in, tensor-out path that training and the equivalence
tests use: the whole normalised input in float, the whole image decoded at once. This wrapper
runs the same model on images of any size, as detectron2's ``GeneralizedRCNNWithTTA`` wraps
``GeneralizedRCNN``, without changing any of its attributes per call:

* inputs are read in windows from the 8-bit images (``MattingInputs``): the encoder's patch
  embedding by row strips, the decoder by tiles; no full-resolution float copy exists;
* the encoder's layers run in their low-memory mode (``set_chunked_inference``, switched on
  once when the engine is built: same values, bounded buffers);
* the decoder decodes tiles, or a sparse cover of the unknown pixels (``tiled_decode``), and
  the known pixels outside it hold the trimap's 0 / 1 (the known-region fill);
* on CUDA the 8-bit image and trimap are uploaded once, through pinned memory, and normalised
  on the device window by window: no pageable copy makes the host wait for the GPU per window;
* the token budget of a call is chosen from a memory budget (``MemoryBudget``), and an image
  that runs out of device memory is retried with smaller budgets.

Every setting of a call (routing budget, decoder tile, memory budget, progress callback) is an
argument, so two threads may call one engine with different budgets.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from mematte_d2.modeling.model_inputs import MattingInputs
from mematte_d2.modeling.routing.policies import RoutingBudget
from mematte_d2.modeling.tiling import check_tiling, tiled_decode

from .memory import (
    MemoryBudget,
    MemoryBudgetError,
    choose_max_tokens,
    estimate_peak_memory,
    format_bytes,
    model_dims,
    parse_memory_size,
    resident_bytes,
    token_grid,
)

__all__ = [
    "MattingInference",
    "OOM_RETRIES",
    "PredictionOutOfMemoryError",
    "Progress",
    "is_out_of_memory",
    "upload",
]

# Retries of a call that ran out of memory, each with half the token cap and decoder tile.
OOM_RETRIES = 3
# ``progress(done, total, stage)``: stage "encoder" (0 of N, then after each of its N blocks),
# then "decoder" once per decoded window.
Progress = Callable[[int, int, str], None]
# The progress callback of the call running in this thread (a context variable: concurrent calls
# in other threads have their own), read by the hooks on the encoder's blocks.
_CALL_PROGRESS: ContextVar[Progress | None] = ContextVar("mematte_call_progress", default=None)
_HOOKED_BLOCKS: weakref.WeakSet = weakref.WeakSet()
# Allocation failures that CUDA libraries report as RuntimeError, not torch.OutOfMemoryError.
_OOM_MESSAGES = ("out of memory", "CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_ALLOC_FAILED",
                 "CUDNN_STATUS_NOT_ENOUGH_WORKSPACE")


class PredictionOutOfMemoryError(MemoryBudgetError):
    """An image ran out of device memory even with the smaller budgets of every retry."""


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is a device allocation failure: torch's OutOfMemoryError, or a
    RuntimeError in which cuBLAS / cuDNN report one."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and any(m in str(error) for m in _OOM_MESSAGES)


def free_cached_memory(device: torch.device) -> None:
    """Return the blocks PyTorch's CUDA cache holds but does not use to the device."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def upload(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` on ``device``; to CUDA through pinned memory without blocking the host. A
    permuted view of contiguous memory (the predictor's CHW view of an HWC image) is uploaded
    as laid out and permuted back on the device, so no pageable host copy is made first."""
    if tensor.device == device:
        return tensor
    order = sorted(range(tensor.dim()), key=lambda d: -tensor.stride(d))
    base = tensor.permute(order)
    if not base.is_contiguous():
        base, order = tensor.contiguous(), list(range(tensor.dim()))
    if device.type == "cuda":
        base = base.pin_memory()
    moved = base.to(device, non_blocking=True)
    inverse = sorted(range(len(order)), key=order.__getitem__)
    return moved.permute(inverse)


def _on_device(batched_inputs: list[dict], device: torch.device) -> list[dict]:
    """The items with their image and trimap (channel) on the model's device."""
    keys = ("image", "trimap", "trimap_channel")
    return [{k: upload(v, device) if k in keys else v for k, v in item.items()}
            for item in batched_inputs]


def _report_block(done: int, total: int, module, args, output) -> None:
    report = _CALL_PROGRESS.get()
    if report is not None:
        report(done, total, "encoder")


def _hook_encoder_blocks(backbone: nn.Module) -> int:
    """Report every encoder block of an engine call to its progress callback; the hooks are
    added once per block and do nothing outside such a call. Returns the number of blocks."""
    blocks = list(getattr(backbone, "blocks", ()))
    for i, block in enumerate(blocks):
        if block not in _HOOKED_BLOCKS:
            block.register_forward_hook(partial(_report_block, i + 1, len(blocks)))
            _HOOKED_BLOCKS.add(block)
    return len(blocks)


@dataclass(frozen=True)
class _CallSettings:
    budget: RoutingBudget
    tile_size: int


class MattingInference(nn.Module):
    """Runs a MEMatte / ViTMatte model on images of any size (see the module docstring).

    Args:
        model: the plain model; its ``tile_size``, ``tile_context`` and ``skip_known_tiles``
            are the defaults of the settings below.
        tile_size: decoder tile in pixels (0 = the whole image at once; None = the model's).
        skip_known_tiles: decode only around unknown trimap pixels (None = the model's).
        max_memory: default memory budget of a call ("8GB", bytes, "auto" = 80% of the memory
            available when the call starts, or None = no budget).
        chunked_inference: switch the encoder's low-memory mode on (the engine's one change to
            the model, made here once: it changes buffers, not values).

    Calls take a list of detectron2-style dicts ("image" 3xHxW, any real dtype on the 0-255
    scale; "trimap" 1xHxW codes or 0-1 values) and return per image "alpha" (1xHxW, the
    decoder's values, known pixels outside the decoded windows hold the trimap's 0 / 1),
    "routing" (bool [K, h, w]), "keep_ratio" ([K]) and "max_tokens" (the cap it ran with).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        tile_size: int | None = None,
        skip_known_tiles: bool | None = None,
        max_memory: str | int | None = None,
        chunked_inference: bool = True,
    ):
        super().__init__()
        self.model = model
        self.tile_context = int(model.tile_context)
        self.tile_size = self._checked_tile(model.tile_size if tile_size is None else tile_size)
        self.skip_known_tiles = bool(
            model.skip_known_tiles if skip_known_tiles is None else skip_known_tiles
        )
        self.max_memory = None if max_memory is None else parse_memory_size(max_memory)
        setter = getattr(model.backbone, "set_chunked_inference", None)
        if setter is not None:
            setter(chunked_inference)
        self._encoder_blocks = _hook_encoder_blocks(model.backbone)

    @property
    def device(self) -> torch.device:
        return self.model.device

    def _checked_tile(self, tile_size: int) -> int:
        """``tile_size``, checked against the decoder's stride and the tile context before any
        work (``tiled_decode`` would only find a bad one after the encoder ran)."""
        if tile_size:
            check_tiling(tile_size, self.tile_context, self.model.decoder.stride)
        return tile_size

    # ------------------------------------------------------------------ budgets
    def token_cap(
        self, height: int, width: int, tile_size: int | None = None,
        max_memory: str | int | None = None,
    ) -> int | None:
        """The max_tokens a memory budget allows for an HxW image (None: no budget, or a model
        without routing that fits). Raises MemoryBudgetError when the image does not fit the
        budget at any token cap."""
        spec = self.max_memory if max_memory is None else parse_memory_size(max_memory)
        if spec is None:
            return None
        dims = model_dims(self.model)
        tile = self.tile_size if tile_size is None else tile_size
        budget = MemoryBudget(spec, self.device).bytes(resident_bytes(dims))
        if dims.num_routed_blocks:
            cap = choose_max_tokens(budget, height, width, dims, tile_size=tile)
            configured = getattr(self.model.backbone, "max_tokens", None)
            return cap if configured is None else min(cap, configured)
        need = estimate_peak_memory(height, width, dims, tile_size=tile).total
        if need > budget:
            raise MemoryBudgetError(
                f"a {height}x{width} image needs about {format_bytes(need)}, more than the "
                f"budget of {format_bytes(budget)} (a smaller decoder tile size needs less)"
            )
        return None

    def _smaller(self, settings: _CallSettings, height: int, width: int) -> _CallSettings:
        """Half the token cap (at least 1) and half the decoder tile (a multiple of 32, not
        below the tile context); decoding the whole image at once becomes 512 tiles."""
        dims = model_dims(self.model)
        gh, gw = token_grid(height, width, dims.patch_size, dims.size_divisibility)
        cap = settings.budget.max_tokens
        cap = max(1, (gh * gw if cap is None else cap) // 2)
        tile = settings.tile_size
        tile = 512 if tile == 0 else max(32, self.tile_context, tile // 2 // 32 * 32)
        return _CallSettings(RoutingBudget(cap, settings.budget.keep_ratio), tile)

    # ------------------------------------------------------------------ calls
    @torch.no_grad()
    def forward(
        self,
        batched_inputs: list[dict],
        budget: RoutingBudget | None = None,
        tile_size: int | None = None,
        max_memory: str | int | None = None,
        progress: Progress | None = None,
    ) -> list[dict]:
        """Per-image outputs of a batch; images are batched only with others of the same
        padded size. ``budget`` routes this call (None: the encoder's configured budget; when
        it sets neither value, the memory budget chooses the token cap of a single image);
        ``tile_size`` / ``max_memory`` replace the engine's settings for this call."""
        if not isinstance(batched_inputs, (list, tuple)) or not batched_inputs:
            raise TypeError("MattingInference expects a non-empty list of dicts")
        self.model.check_inputs(batched_inputs, training=False)
        budget = budget or RoutingBudget()
        tile = self.tile_size if tile_size is None else self._checked_tile(tile_size)
        has_memory_budget = max_memory is not None or self.max_memory is not None
        if has_memory_budget and budget.max_tokens is None and budget.keep_ratio is None:
            if len(batched_inputs) != 1:
                raise ValueError("a memory budget covers one image per call; call image by image")
            height, width = batched_inputs[0]["image"].shape[-2:]
            cap = self.token_cap(int(height), int(width), tile, max_memory)
            budget = RoutingBudget(max_tokens=cap)
        if self.device.type == "cuda":  # once per call, not per out-of-memory retry
            batched_inputs = _on_device(batched_inputs, self.device)
        results: list[dict] = [{} for _ in batched_inputs]
        for indices in self.model.same_size_groups(batched_inputs):
            group = [batched_inputs[i] for i in indices]
            outputs = self._with_oom_retries(group, _CallSettings(budget, tile), progress)
            for i, result in zip(indices, outputs):
                results[i] = result
        return results

    def _with_oom_retries(self, batched_inputs, settings: _CallSettings, progress):
        """The outputs of one same-size group; when the device runs out of memory, the cache
        is freed and the group retried with half the token cap and half the decoder tile, up to
        ``OOM_RETRIES`` times; then PredictionOutOfMemoryError."""
        height, width = (int(v) for v in batched_inputs[0]["image"].shape[-2:])
        for _ in range(OOM_RETRIES + 1):
            try:
                return self._run(batched_inputs, settings, progress)
            except (torch.OutOfMemoryError, RuntimeError) as e:
                if not is_out_of_memory(e):
                    raise
                # Only the message is kept: the traceback's frames hold the failed activations.
                reason = str(e).splitlines()[0] if str(e) else "out of memory"
            free_cached_memory(self.device)
            settings = self._smaller(settings, height, width)
        raise PredictionOutOfMemoryError(
            f"a {height}x{width} image ran out of {self.device.type} memory {OOM_RETRIES + 1} "
            f"times, last with max_tokens={settings.budget.max_tokens}, "
            f"tile_size={settings.tile_size} ({reason})"
        )

    def _run(self, batched_inputs: list[dict], settings: _CallSettings, progress) -> list[dict]:
        model = self.model
        inputs: MattingInputs = model.model_inputs(batched_inputs)
        if progress is not None:
            progress(0, max(1, self._encoder_blocks), "encoder")
        token = _CALL_PROGRESS.set(progress)
        try:
            if getattr(model.backbone, "reads_input_in_windows", False):
                encoded = model.backbone(inputs, settings.budget)
            else:
                encoded = model.backbone(inputs.dense(), settings.budget)
        finally:
            _CALL_PROGRESS.reset(token)
        features = encoded["features"]
        needed = fill = None
        if self.skip_known_tiles:
            needed, fill = inputs.unknown, inputs.trimap
        alpha = tiled_decode(
            model.decoder,
            features,
            inputs,
            tile_size=settings.tile_size,
            context=self.tile_context,
            stride=inputs.shape[-1] // features.shape[-1],
            needed=needed,
            fill=fill,
            progress=None if progress is None else (lambda i, n: progress(i, n, "decoder")),
        )
        results = model.postprocess(batched_inputs, alpha, encoded)
        for result in results:
            result["max_tokens"] = settings.budget.max_tokens
        return results
