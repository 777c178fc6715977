"""Peak-memory estimate of one inference, and the token cap that fits a memory budget.

The estimate counts float32 tensors alive at the worst moment of each stage and takes the
largest stage (stages run one after the other and free their buffers in between):

The model's sizes come from what its components state (``ModelDims``, read by
:func:`model_dims`): the encoder's ``memory_statement()`` (patch size, widths, block layout,
its refiners' ``inference_floats_per_token()``, the attention-bias chunk), the decoder's
``inference_floats_per_pixel()`` and the model's ``size_divisibility`` and ``tile_context``.

* inputs, whole image, kept through the run: the 8-bit image and trimap (the engine builds the
  float input per patch row and decoder tile, ``MattingInputs``), the float alpha and the masks
  that clamp it: `PIXEL_FLOATS` per pixel;
* encoder, over the N tokens of width C (the image padded to ``size_divisibility``, one token
  per patch): token activations of a
  block (input, LN, qkv, projection, MLP hidden: `TOKEN_FLOATS_PER_DIM` x C per token); the
  relative-position bias, built in chunks of at most the encoder's ``max_bias_elements``
  (scores and softmax of a chunk alive too: 3 chunks); a routed block adds its refiner's
  working set on all tokens (the floats per token the refiner states,
  ``inference_floats_per_token``: 2 x C for the LTRM) and the gathered q, k, v, output of its
  K kept tokens
  (`ROUTED_FLOATS_PER_DIM` x C per kept token); an unrouted global block with relative position
  (ViTMatte) adds its per-axis bias terms, heads x N x (h + w) floats twice, and with
  ``attention_impl="dense"`` (the released arithmetic) `DENSE_SCORE_COPIES` x heads x N^2 scores
  (scores, scores + row bias, + column bias are alive at once);
* decoder: the 1/16 features (N x C) and the activations of one decoded area A (the largest
  window ``tiled_decode`` may decode: a tile with its context, or the whole padded image when
  tile_size = 0): the decoder's stated floats per pixel;
* fixed: the parameters and the runtime (`RUNTIME_OVERHEAD_BYTES`: interpreter, torch and
  detectron2, about 0.75 GB resident on CPU, plus first-call workspaces and allocator slack).

Attention runs through torch's scaled_dot_product_attention, whose fused kernels (flash /
memory-efficient, CPU and CUDA) never hold the K x K score matrix, so the token cap changes
peak memory only linearly; `fused_attention=False` adds the 2 x heads x K^2 scores of the
plain (math) implementation. The factors were checked against the peak resident memory
(VmHWM) of CPU runs in fresh processes (`python -m mematte_d2.inference.memory_probe`,
tests/inference/test_memory.py, 2048^2 slow): MEMatte-S at 1024^2 and 2048^2, ViTMatte-S at
2048^2 and a swapped refiner at 768^2 lie between 1x and 1.4x the measured peak (ViTMatte-S at
2048^2: 1.45x).
"""

import math
import re
from dataclasses import dataclass

import psutil
import torch
from torch import nn

from ..modeling.tiling import largest_window_side

BYTES_PER_FLOAT = 4
PIXEL_FLOATS = 3
TOKEN_FLOATS_PER_DIM = 12
ROUTED_FLOATS_PER_DIM = 4
DENSE_SCORE_COPIES = 3
RUNTIME_OVERHEAD_BYTES = 2**30
# Fraction of the currently free memory an "auto" budget uses.
AUTO_BUDGET_FRACTION = 0.8
_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


@dataclass(frozen=True)
class ModelDims:
    """The sizes of a matting model that its memory use depends on (see :func:`model_dims`)."""

    embed_dim: int
    num_heads: int
    window_size: int
    num_window_blocks: int
    num_routed_blocks: int
    num_global_blocks: int  # unrouted global blocks (all tokens attend)
    param_bytes: int
    refiner_floats_per_token: int  # largest peak working set of a routed block's refiner
    global_rel_pos: bool = True  # unrouted global blocks carry relative position
    dense_global_attention: bool = False  # unrouted global blocks hold full N x N scores
    tile_context: int = 64
    patch_size: int = 16
    size_divisibility: int = 32
    decoder_floats_per_pixel: int = 320
    max_bias_elements: int = 1 << 24


def model_dims(model: nn.Module) -> ModelDims:
    """ModelDims of a built MEMatte / ViTMatte model, from its components' statements: the
    student encoder's ``memory_statement()`` and the decoder's ``inference_floats_per_pixel()``.
    """
    encoder = model.backbone.memory_statement()
    return ModelDims(
        embed_dim=encoder.embed_dim,
        num_heads=encoder.num_heads,
        window_size=encoder.window_size,
        num_window_blocks=encoder.num_window_blocks,
        num_routed_blocks=encoder.num_routed_blocks,
        num_global_blocks=encoder.num_global_blocks,
        param_bytes=sum(p.numel() * p.element_size() for p in model.parameters()),
        refiner_floats_per_token=encoder.refiner_floats_per_token,
        global_rel_pos=encoder.global_rel_pos,
        dense_global_attention=encoder.dense_global_attention,
        tile_context=int(model.tile_context),
        patch_size=encoder.patch_size,
        size_divisibility=int(model.size_divisibility),
        decoder_floats_per_pixel=int(model.decoder.inference_floats_per_pixel()),
        max_bias_elements=encoder.max_bias_elements,
    )


def token_grid(
    height: int, width: int, patch_size: int = 16, size_divisibility: int = 32
) -> tuple[int, int]:
    """Token grid of an image: padded to a multiple of ``size_divisibility``, one token per
    patch (pass a model's ``ModelDims`` values; the defaults are MEMatte's)."""
    d = size_divisibility
    return math.ceil(height / d) * d // patch_size, math.ceil(width / d) * d // patch_size


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak bytes: fixed + inputs + the larger of the encoder and decoder stages."""

    total: int
    inputs: int
    encoder: int
    decoder: int
    fixed: int


def _decoded_area(height: int, width: int, tile_size: int, context: int) -> int:
    """Pixels decoded at once: the largest decoder window, or the whole padded image."""
    return (largest_window_side(height, tile_size, context)
            * largest_window_side(width, tile_size, context))


def estimate_peak_memory(
    height: int,
    width: int,
    dims: ModelDims,
    max_tokens: int | None = None,
    tile_size: int = 512,
    fused_attention: bool = True,
) -> MemoryEstimate:
    """Upper estimate of the peak bytes of one inference on an HxW image.

    `max_tokens` caps the tokens each routed block sends to global attention (None: all of them,
    the worst case of an untrained router); `tile_size` 0 decodes the whole image at once.
    """
    gh, gw = token_grid(height, width, dims.patch_size, dims.size_divisibility)
    n = gh * gw
    c, heads = dims.embed_dim, dims.num_heads
    padded_h, padded_w = gh * dims.patch_size, gw * dims.patch_size
    inputs = PIXEL_FLOATS * padded_h * padded_w

    tokens = TOKEN_FLOATS_PER_DIM * c * n
    bias = 0
    if dims.num_window_blocks or (dims.num_global_blocks and dims.global_rel_pos):
        bias = 3 * min(dims.max_bias_elements, heads * n * max(dims.window_size, 1) ** 2)
    encoder = tokens + bias
    if dims.num_routed_blocks:
        kept = n if max_tokens is None else min(n, max_tokens)
        scores = 2 * heads * kept * kept if not fused_attention else 0
        refiner = dims.refiner_floats_per_token * n
        routed = refiner + ROUTED_FLOATS_PER_DIM * c * kept + scores
        encoder = max(encoder, tokens + routed)
    if dims.num_global_blocks:
        rel_terms = 2 * heads * n * (gh + gw) if dims.global_rel_pos else 0
        if dims.dense_global_attention:
            scores = DENSE_SCORE_COPIES * heads * n * n
        else:
            scores = 2 * heads * n * n if not fused_attention else 0
        encoder = max(encoder, tokens + bias + rel_terms + scores)

    area = _decoded_area(padded_h, padded_w, tile_size, dims.tile_context)
    decoder = n * c + dims.decoder_floats_per_pixel * area

    fixed = resident_bytes(dims)
    total = fixed + BYTES_PER_FLOAT * (inputs + max(encoder, decoder))
    return MemoryEstimate(
        total=int(total),
        inputs=int(BYTES_PER_FLOAT * inputs),
        encoder=int(BYTES_PER_FLOAT * encoder),
        decoder=int(BYTES_PER_FLOAT * decoder),
        fixed=int(fixed),
    )


def resident_bytes(dims: ModelDims) -> int:
    """The fixed part of an estimate: runtime overhead and parameters, held by the process from
    the moment the model is loaded, before and after every image."""
    return RUNTIME_OVERHEAD_BYTES + dims.param_bytes


class MemoryBudgetError(MemoryError):
    """An image cannot be processed within the memory budget whatever the token cap."""


def choose_max_tokens(
    budget_bytes: int,
    height: int,
    width: int,
    dims: ModelDims,
    tile_size: int = 512,
    fused_attention: bool = True,
) -> int:
    """The largest per-block token cap whose estimated peak fits `budget_bytes`.

    Returns the number of tokens of the image when everything fits; raises MemoryBudgetError
    naming the smallest need when even routing a single token does not fit.
    """
    gh, gw = token_grid(height, width, dims.patch_size, dims.size_divisibility)
    n = gh * gw

    def fits(k: int) -> bool:
        need = estimate_peak_memory(height, width, dims, k, tile_size, fused_attention).total
        return need <= budget_bytes

    if fits(n):
        return n
    if not fits(1):
        need = estimate_peak_memory(height, width, dims, 1, tile_size, fused_attention).total
        hint = " (decoding in tiles, e.g. tile size 512, needs far less)" if not tile_size else ""
        raise MemoryBudgetError(
            f"a {height}x{width} image needs about {format_bytes(need)} even with 1 routed token, "
            f"more than the budget of {format_bytes(budget_bytes)}{hint}"
        )
    lo, hi = 1, n  # fits(lo), not fits(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def parse_memory_size(spec: str | int) -> str | int:
    """'8GB', '512M', '1.5GiB', a byte count or 'auto' -> bytes (int) or 'auto' (1 GB = 2**30)."""
    if isinstance(spec, int):
        if spec <= 0:
            raise ValueError(f"memory size must be positive, got {spec}")
        return spec
    text = str(spec).strip()
    if text.lower() == "auto":
        return "auto"
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?", text.upper())
    if not m or float(m.group(1)) <= 0:
        raise ValueError(
            f"cannot read memory size {spec!r}: use e.g. 8GB, 512MB, 1.5G or auto"
        )
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def available_memory(device: torch.device) -> int:
    """Bytes this process can still allocate on `device`.

    CUDA: the device's free memory plus the blocks PyTorch's caching allocator holds but does
    not use (``mem_get_info`` counts them as used, yet the next image reuses them), so the value
    does not drop once an image has run. CPU: the available system RAM.
    """
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + cached)
    return int(psutil.virtual_memory().available)


class MemoryBudget:
    """A fixed byte count, or "auto": a share of the memory available when an image starts."""

    def __init__(self, spec: str | int, device: torch.device):
        self.spec = parse_memory_size(spec)
        self.device = device

    def bytes(self, resident: int = 0) -> int:
        """The bound for an estimate's total. ``resident``: the estimate's part this process
        already holds (:func:`resident_bytes`). An "auto" budget adds it to its share of the
        available memory, which no longer contains it: counting it against the available
        memory again would leave less room than there is."""
        if self.spec == "auto":
            return int(AUTO_BUDGET_FRACTION * available_memory(self.device)) + resident
        return int(self.spec)


def format_bytes(n: int) -> str:
    return f"{n / 2**30:.2f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"
