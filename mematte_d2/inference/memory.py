"""Peak-memory estimate of one inference, and the token cap that fits a memory budget.

The estimate counts float32 tensors alive at the worst moment of each stage of the model and
takes the largest stage (stages run one after the other; their buffers are freed in between):

* inputs: per-pixel buffers of the whole image kept through the run (uint8 image, float image
  and trimap, the normalised and padded 4-channel input, the alpha and its clamped copy):
  `PIXEL_FLOATS` floats per pixel;
* encoder, per block, over the N = ceil(H/32)*2 x ceil(W/32)*2 tokens of width C:
  token activations (input, LN, qkv, projection, MLP hidden: `TOKEN_FLOATS_PER_DIM` x C per token),
  window attention scores (heads x window^2 per token, scores and softmax both alive),
  a routed global block: LTRM hidden (`LTRM_FLOATS_PER_DIM` x C per token) plus attention among
  the K kept tokens (heads x K^2 x 2), an unrouted global block: heads x N^2 x 2;
* decoder: the 1/16 features (N x C) plus, per decoded area A (one tile with its context, or
  the whole padded image when tile_size = 0), `DECODER_FLOATS_PER_PIXEL` floats per pixel
  (the detail stream and fusion activations at 1, 1/2, 1/4 and 1/8 resolution) and the detail
  stream of the whole image (`DETAIL_FLOATS_PER_PIXEL`);
* the parameters and a fixed runtime overhead (`RUNTIME_OVERHEAD_BYTES`: interpreter, torch,
  allocator slack) on top.

The factors were checked against the peak resident memory (ru_maxrss) of CPU runs in fresh
processes (tests/inference/test_infer_memory.py): the estimate is meant as an upper bound.
"""

import math
import re
import resource
import sys
from dataclasses import dataclass

import psutil
import torch
from torch import nn

BYTES_PER_FLOAT = 4
PIXEL_FLOATS = 16
TOKEN_FLOATS_PER_DIM = 16
LTRM_FLOATS_PER_DIM = 8
DECODER_FLOATS_PER_PIXEL = 320
DETAIL_FLOATS_PER_PIXEL = 26
RUNTIME_OVERHEAD_BYTES = 600 * 2**20
# Fraction of the currently free memory an "auto" budget uses.
AUTO_BUDGET_FRACTION = 0.8
_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


@dataclass(frozen=True)
class ModelDims:
    """The sizes of a matting model that its memory use depends on."""

    embed_dim: int
    num_heads: int
    window_size: int
    num_window_blocks: int
    num_routed_blocks: int
    num_global_blocks: int  # global blocks without routing (all tokens attend)
    param_bytes: int
    tile_context: int = 64


def model_dims(model: nn.Module) -> ModelDims:
    """Read ModelDims from a built MEMatte / ViTMatte model's student encoder parameters."""
    state = {k: v for k, v in model.state_dict().items() if k.startswith("backbone.")}
    embed_dim = state["backbone.patch_embed.proj.weight"].shape[0]
    block_key = re.compile(r"backbone\.blocks\.(\d+)\.")
    blocks = sorted({int(m.group(1)) for k in state if (m := block_key.match(k))})
    routed = {b for b in blocks if f"backbone.blocks.{b}.efficient_block.fc1.weight" in state}
    with_rel = {b for b in blocks if f"backbone.blocks.{b}.attn.rel_pos_h" in state}
    residual = {b for b in blocks if f"backbone.blocks.{b}.residual.conv1.weight" in state}
    global_blocks = routed | residual | (set(blocks) - with_rel)
    window_blocks = [b for b in blocks if b not in global_blocks]
    head_dim = None
    window_size = 14
    if window_blocks:
        rel = state[f"backbone.blocks.{window_blocks[0]}.attn.rel_pos_h"]
        window_size, head_dim = (rel.shape[0] + 1) // 2, rel.shape[1]
    num_heads = _num_heads(model, embed_dim, head_dim)
    return ModelDims(
        embed_dim=embed_dim,
        num_heads=num_heads,
        window_size=window_size,
        num_window_blocks=len(window_blocks),
        num_routed_blocks=len(routed),
        num_global_blocks=len(global_blocks - routed),
        param_bytes=sum(p.numel() * p.element_size() for p in model.parameters()),
        tile_context=int(getattr(model, "tile_context", 64)),
    )


def _num_heads(model: nn.Module, embed_dim: int, head_dim: int | None) -> int:
    for module in model.modules():
        heads = getattr(module, "num_heads", None)
        if isinstance(heads, int) and heads > 0:
            return heads
    return embed_dim // head_dim if head_dim else max(1, embed_dim // 64)


def token_grid(height: int, width: int) -> tuple[int, int]:
    """Token grid of an image: padded to a multiple of 32 pixels, 16 pixels per token."""
    return math.ceil(height / 32) * 2, math.ceil(width / 32) * 2


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak bytes, and the stage sizes it is the maximum of (plus the fixed part)."""

    total: int
    inputs: int
    encoder: int
    decoder: int
    fixed: int


def estimate_peak_memory(
    height: int, width: int, dims: ModelDims, max_tokens: int | None = None, tile_size: int = 512
) -> MemoryEstimate:
    """Upper estimate of the peak bytes of one inference on an HxW image.

    `max_tokens` caps the tokens each routed block sends to global attention (None: all of them,
    the worst case of an untrained router); `tile_size` 0 decodes the whole image at once.
    """
    gh, gw = token_grid(height, width)
    n = gh * gw
    c, heads, ws = dims.embed_dim, dims.num_heads, dims.window_size
    pixels = (gh * 16) * (gw * 16)
    inputs = PIXEL_FLOATS * pixels

    tokens = TOKEN_FLOATS_PER_DIM * c * n
    encoder = tokens
    if dims.num_window_blocks:
        padded = math.ceil(gh / ws) * ws * math.ceil(gw / ws) * ws
        encoder = max(encoder, tokens + 2 * heads * ws * ws * padded)
    if dims.num_routed_blocks:
        kept = n if max_tokens is None else min(n, max_tokens)
        encoder = max(encoder, tokens + LTRM_FLOATS_PER_DIM * c * n + 2 * heads * kept * kept)
    if dims.num_global_blocks:
        encoder = max(encoder, tokens + 2 * heads * n * n)

    if tile_size and tile_size > 0 and (gh * 16 > tile_size or gw * 16 > tile_size):
        side = tile_size + 2 * dims.tile_context
        area = min(side, gh * 16 + dims.tile_context) * min(side, gw * 16 + dims.tile_context)
    else:
        area = pixels
    decoder = n * c + DETAIL_FLOATS_PER_PIXEL * pixels + DECODER_FLOATS_PER_PIXEL * area

    fixed = RUNTIME_OVERHEAD_BYTES + 2 * dims.param_bytes
    total = fixed + BYTES_PER_FLOAT * (inputs + max(encoder, decoder))
    return MemoryEstimate(
        total=int(total),
        inputs=int(BYTES_PER_FLOAT * inputs),
        encoder=int(BYTES_PER_FLOAT * encoder),
        decoder=int(BYTES_PER_FLOAT * decoder),
        fixed=int(fixed),
    )


class MemoryBudgetError(MemoryError):
    """An image cannot be processed within the memory budget whatever the token cap."""


def choose_max_tokens(
    budget_bytes: int, height: int, width: int, dims: ModelDims, tile_size: int = 512
) -> int:
    """The largest per-block token cap whose estimated peak fits `budget_bytes`.

    Returns the number of tokens of the image when everything fits; raises MemoryBudgetError
    naming the smallest need when even routing a single token does not fit.
    """
    gh, gw = token_grid(height, width)
    n = gh * gw

    def fits(k: int) -> bool:
        return estimate_peak_memory(height, width, dims, k, tile_size).total <= budget_bytes

    if fits(n):
        return n
    if not fits(1):
        need = estimate_peak_memory(height, width, dims, 1, tile_size).total
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
    """Bytes free now on `device` (free GPU memory, or available system RAM on CPU)."""
    if device.type == "cuda" and torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return int(psutil.virtual_memory().available)


class MemoryBudget:
    """A fixed byte count, or "auto": a share of the memory free when an image starts."""

    def __init__(self, spec: str | int, device: torch.device):
        self.spec = parse_memory_size(spec)
        self.device = device

    def bytes(self) -> int:
        if self.spec == "auto":
            return int(AUTO_BUDGET_FRACTION * available_memory(self.device))
        return int(self.spec)


def format_bytes(n: int) -> str:
    return f"{n / 2**30:.2f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)
