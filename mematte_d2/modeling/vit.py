"""Shared plain-ViT pieces (ViTDet design) used by the ViTMatte and MEMatte encoders.

Tensors inside the encoders are channels-last token grids ``[B, H, W, C]``.
By default ("fused") attention goes through ``torch.nn.functional.scaled_dot_product_attention``;
relative position enters as an additive ``attn_mask`` and large grids are processed in query
chunks so that no full ``N x N`` matrix is ever held at once. ``attention_impl="dense"`` is the
released ViTMatte's arithmetic instead (the whole score matrix, bias added, softmax): the same
outputs at quadratic memory, kept as the baseline whose memory MEMatte is measured against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import deterministic_ops
from .regions import RegionSource

# Largest number of attention-bias elements built at once; larger problems are chunked by query.
# The memory estimate (mematte_d2.inference.memory) reads this constant.
MAX_BIAS_ELEMENTS = 1 << 24
# With chunked inference, the MLP and window attention of large inputs run on slices of about
# this many intermediate elements, which bounds their buffers; results are unchanged. 8 MB in
# fp32: below glibc's largest mmap threshold (32 MB), so the heap reuses them without page faults.
CHUNK_ELEMENTS = 1 << 21


class ChunkedInference:
    """A layer with a low-memory inference mode, ``chunked_inference`` (off by default; the
    encoder's ``set_chunked_inference`` switches it, as timm's ``set_grad_checkpointing`` does
    for checkpointing). When it is on and no gradient is recorded, the layer evaluates large
    inputs in slices and adds residuals into buffers it owns; the values are the same. With
    autograd the slices' buffers would all be kept anyway, so the setting then has no effect."""

    chunked_inference = False

    def low_memory(self) -> bool:
        """Whether this call runs in the low-memory mode."""
        return self.chunked_inference and not torch.is_grad_enabled()


@dataclass(frozen=True)
class EncoderMemory:
    """What an encoder states about its inference memory, for the memory estimate
    (``mematte_d2.inference.memory``), which reads nothing inside the blocks."""

    patch_size: int
    embed_dim: int
    num_heads: int
    window_size: int  # of the window blocks (0: none)
    num_window_blocks: int
    num_routed_blocks: int
    num_global_blocks: int  # unrouted global blocks (all tokens attend)
    refiner_floats_per_token: int  # largest peak working set of a routed block's refiner
    global_rel_pos: bool  # unrouted global blocks carry relative position
    dense_global_attention: bool  # unrouted global blocks hold full N x N scores
    max_bias_elements: int = MAX_BIAS_ELEMENTS  # attention-bias elements built at once


def map_in_chunks(fn, x: Tensor, rows: int) -> Tensor:
    """``fn(x)`` for a row-wise ``fn``, evaluated on slices of ``rows`` along dim 0."""
    rows = max(1, rows)
    if x.shape[0] <= rows:
        return fn(x)
    first = fn(x[:rows])
    out = first.new_empty((x.shape[0], *first.shape[1:]))
    out[:rows] = first
    del first
    for start in range(rows, x.shape[0], rows):
        out[start : start + rows] = fn(x[start : start + rows])
    return out


def map_in_row_strips(fn, x: Tensor, rows: int, halo: int) -> Tensor:
    """``fn(x)`` for an ``fn`` on ``[B, H, W, C]`` grids whose output row depends only on the
    input rows within ``halo`` of it (zero beyond the grid, like a padded convolution), evaluated
    on strips of ``rows`` rows read with ``halo`` rows of context on each side. Every kept output
    row sees the rows it sees in the whole grid."""
    rows = max(1, rows)
    height = x.shape[1]
    if height <= rows:
        return fn(x)
    out = None
    for start in range(0, height, rows):
        stop = min(start + rows, height)
        low, high = max(0, start - halo), min(height, stop + halo)
        part = fn(x[:, low:high])[:, start - low : stop - low]
        if out is None:
            out = part.new_empty((x.shape[0], height, *part.shape[2:]))
        out[:, start:stop] = part
    return out


def residual_add(branch: Tensor, x: Tensor, in_place: bool) -> Tensor:
    """``x + branch``. With ``in_place`` (no autograd: a low-memory call) the sum is written into
    ``branch`` (a fresh buffer of the caller's) when that gives the same tensor: same shape,
    dtype and strides as the result. Addition commutes, so the values are the same; one
    token-grid buffer fewer is alive."""
    if (not in_place or torch.is_grad_enabled() or branch.shape != x.shape
            or branch.stride() != x.stride()
            or branch.dtype != torch.promote_types(branch.dtype, x.dtype)):
        return x + branch
    return branch.add_(x)


class PatchEmbed(nn.Module):
    """Non-overlapping patch embedding: a stride-``patch_size`` conv, output ``[B, h, w, C]``."""

    def __init__(self, patch_size: int = 16, in_chans: int = 4, embed_dim: int = 384):
        super().__init__()
        self.in_chans = in_chans
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor | RegionSource) -> Tensor:
        """``[B, in_chans, H, W]`` -> ``[B, H/p, W/p, C]``. A region source is read in row strips
        of about ``CHUNK_ELEMENTS`` input elements: every patch sees only its own pixels, so the
        tokens are those of the whole input (the same convolution on the same values)."""
        if len(x.shape) != 4 or x.shape[1] != self.in_chans:
            raise ValueError(
                f"PatchEmbed expects [B, {self.in_chans}, H, W], got shape {tuple(x.shape)}"
            )
        # Contiguous [B, h, w, C]: residual additions keep the layout of their first operand,
        # so a permuted view here would make every later LayerNorm / Linear copy its input.
        if isinstance(x, Tensor):
            return self.proj(x).permute(0, 2, 3, 1).contiguous()
        b, c, height, width = x.shape
        patch = self.proj.stride[0]
        rows = patch * max(1, CHUNK_ELEMENTS // (b * c * width * patch))
        tokens = None
        for y in range(0, height, rows):
            strip = self.proj(x.crop(y, min(y + rows, height), 0, width)).permute(0, 2, 3, 1)
            if tokens is None:
                tokens = strip.new_empty((b, height // patch, width // patch, strip.shape[-1]))
            tokens[:, y // patch : y // patch + strip.shape[1]] = strip
        return tokens


def resize_abs_pos(pos_embed: Tensor, has_cls_token: bool, hw: tuple[int, int]) -> Tensor:
    """Absolute position embedding for an ``h x w`` grid, shape ``[1, h, w, C]``.

    The stored table belongs to a square pretraining grid (e.g. 14 x 14, plus a class token that
    is dropped); it is resized bicubically (align_corners=False) when the grid differs (ViTDet).
    """
    h, w = hw
    if has_cls_token:
        pos_embed = pos_embed[:, 1:]
    num_positions = pos_embed.shape[1]
    size = math.isqrt(num_positions)
    if size * size != num_positions:
        raise ValueError(f"pos_embed has {num_positions} positions, not a square grid")
    grid = pos_embed.reshape(1, size, size, -1).permute(0, 3, 1, 2)
    if (size, size) != (h, w):
        grid = deterministic_ops.interpolate(grid, size=(h, w), mode="bicubic",
                                             align_corners=False)
    return grid.permute(0, 2, 3, 1)


def resize_rel_pos(rel_pos: Tensor, q_size: int, k_size: int) -> Tensor:
    """Relative-position embeddings ``[q_size, k_size, D]`` for one axis (ViTDet's rule).

    The table is linearly interpolated to ``2 * max(q_size, k_size) - 1`` entries when needed;
    coordinates of the shorter side are stretched to the longer one.
    """
    length = 2 * max(q_size, k_size) - 1
    if rel_pos.shape[0] != length:
        rel_pos = deterministic_ops.interpolate(
            rel_pos.t().unsqueeze(0), size=length, mode="linear"
        ).squeeze(0).t()
    q_coords = torch.arange(q_size, device=rel_pos.device)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size, device=rel_pos.device)[None, :] * max(q_size / k_size, 1.0)
    relative = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return rel_pos[relative.long()]


def decomposed_rel_pos_terms(
    q: Tensor, rel_pos_h: Tensor, rel_pos_w: Tensor, hw: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """Per-axis relative-position terms of queries ``q`` ``[B, heads, h*w, D]`` (unscaled).

    Returns ``rel_h`` ``[B, heads, N, h]`` and ``rel_w`` ``[B, heads, N, w]``; the bias of query
    ``i`` and key ``(y, x)`` is ``rel_h[..., i, y] + rel_w[..., i, x]``.
    """
    h, w = hw
    b, heads, n, d = q.shape
    table_h = resize_rel_pos(rel_pos_h, h, h).to(q.dtype)
    table_w = resize_rel_pos(rel_pos_w, w, w).to(q.dtype)
    grid_q = q.reshape(b, heads, h, w, d)
    rel_h = torch.einsum("bnyxd,ykd->bnyxk", grid_q, table_h).reshape(b, heads, n, h)
    rel_w = torch.einsum("bnyxd,xkd->bnyxk", grid_q, table_w).reshape(b, heads, n, w)
    return rel_h, rel_w


def rel_pos_bias(rel_h: Tensor, rel_w: Tensor) -> Tensor:
    """Dense additive bias ``[B, heads, n, h*w]`` from the per-axis terms of n queries."""
    bias = rel_h[..., :, None] + rel_w[..., None, :]
    return bias.flatten(-2)


def grid_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    hw: tuple[int, int],
    rel_pos: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """Softmax attention of ``[B, heads, N, D]`` tensors over an ``hw`` token grid via SDPA.

    With ``rel_pos=(rel_pos_h, rel_pos_w)`` the decomposed relative-position bias of the grid is
    the ``attn_mask``. Queries are chunked so that at most ``MAX_BIAS_ELEMENTS`` bias entries
    exist at a time.
    """
    if rel_pos is None:
        return F.scaled_dot_product_attention(q, k, v)
    rel_h, rel_w = decomposed_rel_pos_terms(q, rel_pos[0], rel_pos[1], hw)
    b, heads, n, _ = q.shape
    chunk = max(1, MAX_BIAS_ELEMENTS // max(1, b * heads * n))
    if chunk >= n:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=rel_pos_bias(rel_h, rel_w))
    outputs = []
    for start in range(0, n, chunk):
        rows = slice(start, start + chunk)
        bias = rel_pos_bias(rel_h[:, :, rows], rel_w[:, :, rows])
        outputs.append(F.scaled_dot_product_attention(q[:, :, rows], k, v, attn_mask=bias))
    return torch.cat(outputs, dim=2)


def dense_grid_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    hw: tuple[int, int],
    rel_pos: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """Softmax attention as the released ViTMatte computes it: the full ``[B, heads, N, N]``
    score matrix, plus the decomposed rel-pos bias of the ``hw`` grid, then softmax and values."""
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
    if rel_pos is not None:
        rel_h, rel_w = decomposed_rel_pos_terms(q, rel_pos[0], rel_pos[1], hw)
        b, heads, n, _ = scores.shape
        scores = scores.view(b, heads, n, *hw) + rel_h[..., :, None] + rel_w[..., None, :]
        scores = scores.view(b, heads, n, n)
    return scores.softmax(dim=-1) @ v


ATTENTION_IMPLS = {"fused": grid_attention, "dense": dense_grid_attention}


def check_attention_impl(attention_impl: str) -> str:
    """``attention_impl`` if it names an implementation, else a ValueError listing them."""
    if attention_impl not in ATTENTION_IMPLS:
        raise ValueError(
            f"attention_impl must be one of {sorted(ATTENTION_IMPLS)}, got {attention_impl!r}"
        )
    return attention_impl


class Attention(nn.Module):
    """Multi-head self-attention over a token grid, optionally with decomposed rel-pos bias.

    Args:
        dim: channels.
        num_heads: attention heads.
        qkv_bias: bias in the qkv projection.
        rel_pos_size: ``(h, w)`` grid the relative-position tables are sized for
            (``2 * size - 1`` rows each); ``None`` = no relative position.
        attention_impl: "fused" (chunked SDPA, linear memory) or "dense" (full score matrix,
            as released); both give the same outputs.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = True,
        rel_pos_size: tuple[int, int] | None = None,
        attention_impl: str = "fused",
    ):
        super().__init__()
        self.attention_impl = check_attention_impl(attention_impl)
        if dim % num_heads != 0:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.use_rel_pos = rel_pos_size is not None
        if rel_pos_size is not None:
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * rel_pos_size[0] - 1, self.head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * rel_pos_size[1] - 1, self.head_dim))

    def qkv_heads(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Project ``[B, N, C]`` tokens to q, k, v of shape ``[B, heads, N, head_dim]``."""
        b, n, _ = tokens.shape
        qkv = self.qkv(tokens).reshape(b, n, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        return q, k, v

    def merge_heads(self, out: Tensor) -> Tensor:
        """``[B, heads, N, head_dim]`` -> projected ``[B, N, C]``."""
        b, _, n, _ = out.shape
        return self.proj(out.transpose(1, 2).reshape(b, n, -1))

    def forward(self, x: Tensor) -> Tensor:
        """Full attention within each grid of ``x`` ``[B, H, W, C]``."""
        b, h, w, c = x.shape
        q, k, v = self.qkv_heads(x.reshape(b, h * w, c))
        rel_pos = (self.rel_pos_h, self.rel_pos_w) if self.use_rel_pos else None
        out = ATTENTION_IMPLS[self.attention_impl](q, k, v, (h, w), rel_pos=rel_pos)
        return self.merge_heads(out).reshape(b, h, w, c)

    def forward_tokens(self, tokens: Tensor) -> Tensor:
        """Plain softmax attention among the given tokens ``[B, n, C]`` (no position bias)."""
        q, k, v = self.qkv_heads(tokens)
        return self.merge_heads(F.scaled_dot_product_attention(q, k, v))


def window_partition(x: Tensor, window_size: int) -> tuple[Tensor, tuple[int, int]]:
    """Split ``[B, H, W, C]`` into ``[B * nW, ws, ws, C]`` windows, zero-padding H and W up to
    multiples of the window. Returns the windows and the padded size."""
    b, h, w, c = x.shape
    pad_h = (window_size - h % window_size) % window_size
    pad_w = (window_size - w % window_size) % window_size
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.reshape(b, hp // window_size, window_size, wp // window_size, window_size, c)
    windows = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size, window_size, c)
    return windows, (hp, wp)


def window_unpartition(
    windows: Tensor, window_size: int, padded_hw: tuple[int, int], hw: tuple[int, int]
) -> Tensor:
    """Inverse of :func:`window_partition`: reassemble and crop the padding away."""
    hp, wp = padded_hw
    h, w = hw
    c = windows.shape[-1]
    b = windows.shape[0] // ((hp // window_size) * (wp // window_size))
    x = windows.reshape(b, hp // window_size, wp // window_size, window_size, window_size, c)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
    return x[:, :h, :w]  # the residual addition that follows copies it anyway


class Mlp(nn.Module):
    """Two-layer token MLP with GELU (names ``fc1``/``fc2`` as in the checkpoints)."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """Per token; ``Block.norm_mlp`` runs it on row chunks at inference."""
        return self.fc2(self.act(self.fc1(x)))


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of a ``[B, C, H, W]`` tensor."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps
        # A Python int (not x.shape[1]) so that an ONNX trace sees a constant normalized shape.
        self.normalized_shape = (channels,)

    def forward(self, x: Tensor) -> Tensor:
        # One fused layer_norm over the channels of the [B, H, W, C] view: the encoders hand
        # channels-last tensors in, so the view is contiguous and the output stays channels-last.
        out = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                           self.eps)
        return out.permute(0, 3, 1, 2)


class ResidualBottleneck(ChunkedInference, nn.Module):
    """Conv bottleneck (1x1 -> 3x3 -> 1x1, channel LayerNorm after each conv) added to its input.

    The last norm starts at zero so that a freshly added bottleneck is the identity.
    """

    def __init__(self, channels: int, bottleneck_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, bottleneck_channels, 1, bias=False)
        self.norm1 = LayerNorm2d(bottleneck_channels)
        self.act1 = nn.GELU()
        self.conv2 = nn.Conv2d(bottleneck_channels, bottleneck_channels, 3, padding=1, bias=False)
        self.norm2 = LayerNorm2d(bottleneck_channels)
        self.act2 = nn.GELU()
        self.conv3 = nn.Conv2d(bottleneck_channels, channels, 1, bias=False)
        self.norm3 = LayerNorm2d(channels)
        for conv in (self.conv1, self.conv2, self.conv3):
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.norm3.weight)
        nn.init.zeros_(self.norm3.bias)

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.norm1(self.conv1(x)))
        out = self.act2(self.norm2(self.conv2(out)))
        return residual_add(self.norm3(self.conv3(out)), x, self.low_memory())


class Block(ChunkedInference, nn.Module):
    """Pre-norm transformer block on ``[B, H, W, C]`` grids: window or global attention, MLP,
    and an optional residual conv bottleneck after the MLP.

    Args:
        dim, num_heads, mlp_ratio, qkv_bias: usual ViT settings.
        window_size: > 0 for window attention in ``window_size`` windows, 0 for global.
        rel_pos_size: grid the global rel-pos tables are sized for, or ``None`` for no rel-pos
            (window blocks use ``(window_size, window_size)`` whenever this is not ``None``).
        use_residual_block: add the conv bottleneck after the MLP.
        attention_impl: see ``Attention``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        window_size: int = 0,
        rel_pos_size: tuple[int, int] | None = None,
        use_residual_block: bool = False,
        attention_impl: str = "fused",
    ):
        super().__init__()
        self.window_size = window_size
        if rel_pos_size is not None and window_size > 0:
            rel_pos_size = (window_size, window_size)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(
            dim, num_heads, qkv_bias=qkv_bias, rel_pos_size=rel_pos_size,
            attention_impl=attention_impl,
        )
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.residual = ResidualBottleneck(dim, dim // 2) if use_residual_block else None

    def attention(self, x: Tensor) -> Tensor:
        """The attention branch ``attn(LN(x))`` on a ``[B, H, W, C]`` grid."""
        if self.window_size <= 0:
            return self.attn(self.norm1(x))
        h, w = x.shape[1:3]
        windows, padded_hw = window_partition(self.norm1(x), self.window_size)
        if self.low_memory():
            rows = CHUNK_ELEMENTS // self._window_elements(x)
            windows = map_in_chunks(self.attn, windows, rows)
        else:
            windows = self.attn(windows)
        return window_unpartition(windows, self.window_size, padded_hw, (h, w))

    def _window_elements(self, x: Tensor) -> int:
        """Intermediate elements of one window's attention: qkv and output, scores and bias."""
        tokens = self.window_size**2
        return tokens * (4 * x.shape[-1] + 2 * self.attn.num_heads * tokens)

    def finish(self, x: Tensor) -> Tensor:
        """MLP sub-block and the optional conv bottleneck. ``x`` is the block's residual sum, a
        buffer its callers own: in a low-memory call the MLP's output is added into it."""
        x = residual_add(x, self.norm_mlp(x), self.low_memory())
        if self.residual is not None:
            x = self.residual(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x

    def norm_mlp(self, x: Tensor) -> Tensor:
        """``mlp(norm2(x))``. Both are per token: in a low-memory call they run on row chunks
        together, so the normalised grid never exists whole."""
        if not self.low_memory():
            return self.mlp(self.norm2(x))
        tokens = x.reshape(-1, x.shape[-1])
        rows = CHUNK_ELEMENTS // self.mlp.fc1.out_features
        out = map_in_chunks(lambda t: self.mlp(self.norm2(t)), tokens, rows)
        return out.reshape(*x.shape[:-1], out.shape[-1])

    def forward(self, x: Tensor) -> Tensor:
        return self.finish(residual_add(self.attention(x), x, self.low_memory()))


def init_vit_weights(module: nn.Module) -> None:
    """ViT initialisation: truncated-normal linears (std 0.02, zero bias), unit LayerNorms."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def check_encoder_input(
    x: Tensor | RegionSource, in_chans: int, patch_size: int, name: str
) -> None:
    """Raise a clear error unless ``x`` is ``[B, in_chans, H, W]`` with H, W multiples of the
    patch size (the meta-architecture pads its input to a multiple of 32)."""
    if len(x.shape) != 4 or x.shape[1] != in_chans:
        raise ValueError(f"{name} expects a [B, {in_chans}, H, W] input, got {tuple(x.shape)}")
    if x.shape[2] % patch_size or x.shape[3] % patch_size:
        raise ValueError(
            f"{name} needs H and W divisible by the patch size {patch_size}, got "
            f"{tuple(x.shape[2:])}; pad the input first"
        )


def validate_block_indexes(indexes, depth: int, name: str) -> tuple[int, ...]:
    """Indexes as a sorted tuple, each checked to lie in ``range(depth)``."""
    indexes = tuple(sorted(int(i) for i in indexes))
    bad = [i for i in indexes if not 0 <= i < depth]
    if bad:
        raise ValueError(f"{name} {bad} out of range for depth {depth}")
    return indexes


def validate_window_layout(window_block_indexes, window_size: int, depth: int) -> tuple[int, ...]:
    """Checked window-block indexes; window blocks need a positive ``window_size``."""
    indexes = validate_block_indexes(window_block_indexes, depth, "window_block_indexes")
    if indexes and window_size <= 0:
        raise ValueError(
            f"window_block_indexes {list(indexes)} need window_size > 0, got {window_size}"
        )
    return indexes


class ViTEncoderBase(nn.Module):
    """Common stem of the encoders: ``patch_embed`` and the absolute position embedding
    ``pos_embed`` (stored at pretraining size with a class-token slot, ``[1, (P/16)^2 + 1, C]``,
    resized to the token grid at run time). Subclasses add ``blocks``."""

    def __init__(
        self,
        patch_size: int,
        in_chans: int,
        embed_dim: int,
        pretrain_img_size: int = 224,
        pretrain_use_cls_token: bool = True,
    ):
        super().__init__()
        self.patch_size = patch_size
        self.in_chans = in_chans
        self.embed_dim = embed_dim
        self.pretrain_use_cls_token = pretrain_use_cls_token
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        num_positions = (pretrain_img_size // patch_size) ** 2 + int(pretrain_use_cls_token)
        self.pos_embed = nn.Parameter(torch.zeros(1, num_positions, embed_dim))

    def init_weights(self) -> None:
        """ViT initialisation of the whole encoder (call once the blocks exist)."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.apply(init_vit_weights)

    def memory_statement(self) -> EncoderMemory:
        """This encoder's inference memory as the estimate needs it."""
        blocks = list(self.blocks)
        window = [blocks[i] for i in self.window_block_indexes]
        routed = [blocks[i] for i in self.routed_block_indexes]
        global_ = [b for i, b in enumerate(blocks)
                   if i not in self.window_block_indexes and i not in self.routed_block_indexes]
        return EncoderMemory(
            patch_size=self.patch_size,
            embed_dim=self.embed_dim,
            num_heads=blocks[0].attn.num_heads,
            window_size=window[0].window_size if window else 0,
            num_window_blocks=len(window),
            num_routed_blocks=len(routed),
            num_global_blocks=len(global_),
            refiner_floats_per_token=max(
                (b.refiner_floats_per_token() for b in routed), default=0
            ),
            global_rel_pos=any(b.attn.use_rel_pos for b in global_),
            dense_global_attention=any(b.attn.attention_impl == "dense" for b in global_),
        )

    def set_chunked_inference(self, enable: bool = True) -> None:
        """Switch every layer's low-memory inference mode (:class:`ChunkedInference`): large
        inputs in slices, residual sums in place, when no gradient is recorded. Off by default,
        so the model as built is the plain arithmetic; an inference engine switches it on once.
        """
        for module in self.modules():
            if isinstance(module, ChunkedInference):
                module.chunked_inference = bool(enable)

    # The input may be a region source (``mematte_d2.modeling.regions``): only the patch
    # embedding reads it, a row strip at a time.
    reads_input_in_windows = True

    def embed(self, x: Tensor | RegionSource) -> Tensor:
        """Input ``[B, in_chans, H, W]`` -> position-embedded token grid ``[B, H/p, W/p, C]``."""
        check_encoder_input(x, self.in_chans, self.patch_size, type(self).__name__)
        x = self.patch_embed(x)
        pos = resize_abs_pos(self.pos_embed, self.pretrain_use_cls_token, tuple(x.shape[1:3]))
        return x + pos.to(x.dtype)
