"""An export-friendly MEMatte forward with a fixed token budget per routed block.

The eval forward of :class:`~mematte_d2.modeling.MEMatte` keeps a data-dependent number of
tokens (``nonzero`` of the router decisions, a Python loop over images) and branches on tensor
sizes in Python (padding, position-embedding resizing, window padding). :class:`FixedBudgetMatting`
reuses the model's submodules and weights but computes everything from tensor shapes, so a
trace holds for every image size:

- image normalisation, trimap coding, padding to ``size_divisibility`` and the final crop and
  known-region clamp happen inside the graph;
- every routed block sends exactly ``K`` tokens to global attention, the ``K`` with the largest
  router margin (``topk`` + ``gather`` / ``scatter``), with ``K = min(max_tokens, N)`` or
  ``K = ceil(keep_ratio * N)`` computed from the token count ``N`` of the image;
- the decoder runs on the whole padded image (no tiling).

With the same budget the outputs equal the eager model's (``MattingPredictor(...).predict(...,
keep_ratio=R)``, or ``max_tokens=K, keep_ratio=1.0`` for a count: the eager ``max_tokens``
alone only caps the tokens the router itself accepts, a data-dependent number).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mematte_d2.modeling import MEMatte, RoutedViT
from mematte_d2.modeling.routing import check_keep_ratio, check_max_tokens, routing_margin
from mematte_d2.modeling.vit import window_partition, window_unpartition
from mematte_d2.utils.trimap import TRIMAP_BG_THRESHOLD, TRIMAP_FG_THRESHOLD

# ratio_to_count's tolerance: ceil(ratio * N - eps) so that e.g. 0.25 * 400 is 100, not 101.
RATIO_EPS = 1e-9


def check_budget(max_tokens: int | None, keep_ratio: float | None) -> None:
    """Raise a ValueError unless exactly one of a positive token count and a ratio in (0, 1]
    is given."""
    if (max_tokens is None) == (keep_ratio is None):
        raise ValueError("give exactly one of max_tokens and keep_ratio")
    check_max_tokens(max_tokens)
    check_keep_ratio(keep_ratio)


def eager_budget(max_tokens: int | None = None, keep_ratio: float | None = None) -> dict:
    """The ``MattingPredictor.predict`` / ``RoutingBudget`` arguments that keep the
    tokens a :class:`FixedBudgetMatting` with this budget keeps."""
    check_budget(max_tokens, keep_ratio)
    if max_tokens is not None:
        return {"max_tokens": max_tokens, "keep_ratio": 1.0}
    return {"max_tokens": None, "keep_ratio": keep_ratio}


class FixedBudgetMatting(nn.Module):
    """``(image [B, 3, H, W] RGB 0-255, trimap [B, 1, H, W] 0/128/255) -> alpha [B, 1, H, W]``
    in [0, 1], known regions set from the trimap, every routed block keeping a fixed number of
    tokens (see the module docstring). Shares (does not copy) the parameters of ``model``.

    Args:
        model: a MEMatte model with a :class:`~mematte_d2.modeling.RoutedViT` encoder.
        max_tokens: tokens per routed block and image (at most the image's token count).
        keep_ratio: share of each image's tokens per routed block, ``ceil(ratio * N)``.
    """

    def __init__(
        self, model: MEMatte, max_tokens: int | None = None, keep_ratio: float | None = None
    ):
        super().__init__()
        check_budget(max_tokens, keep_ratio)
        if not isinstance(model.backbone, RoutedViT):
            raise TypeError(
                "export needs a MEMatte model with a RoutedViT encoder, got backbone "
                f"{type(model.backbone).__name__}"
            )
        self.model = model
        self.max_tokens = None if max_tokens is None else int(max_tokens)
        self.keep_ratio = None if keep_ratio is None else float(keep_ratio)

    def forward(self, image: Tensor, trimap: Tensor) -> Tensor:
        model = self.model
        height, width = image.shape[-2], image.shape[-1]
        known = trimap_codes(trimap)
        inputs = torch.cat([(image - model.pixel_mean) / model.pixel_std, known], dim=1)
        d = model.size_divisibility
        inputs = F.pad(inputs, (0, (d - width % d) % d, 0, (d - height % d) % d))
        features = self.encode(inputs)
        alpha = model.decoder(features, inputs)[..., :height, :width]
        return torch.where(known == 0.5, alpha, known)

    def encode(self, inputs: Tensor) -> Tensor:
        """RoutedViT.forward at inference with fixed-count routing: features [B, C, h, w]."""
        encoder = self.model.backbone
        x = encoder.patch_embed(inputs)
        x = x + position_embedding(encoder, x.shape[1], x.shape[2]).to(x.dtype)
        routers = iter(encoder.routers)
        for i, block in enumerate(encoder.blocks):
            if i in encoder.routed_block_indexes:
                x = self.routed_block(block, next(routers), x)
            elif block.window_size > 0:
                x = block.finish(x + padded_window_attention(block, x))
            else:
                x = block(x)
        return x.permute(0, 3, 1, 2)

    def token_count(self, num_tokens: Tensor | int) -> Tensor:
        """K (a scalar tensor) for an image of ``num_tokens`` tokens: an int in eager mode, in
        a trace a tensor computed from the input's shape, so that K follows the image size."""
        if isinstance(num_tokens, int):
            num_tokens = torch.tensor(num_tokens)
        if self.max_tokens is not None:
            return torch.clamp(num_tokens, max=self.max_tokens)
        # In float64 like ratio_to_count. The constants are 1-element vectors: the ONNX
        # exporter computes arithmetic of 0-d tensors in float32, where 0.3 * 100 rounds up to
        # 30.000002 and its ceil to 31.
        ratio, eps = (torch.tensor([v], dtype=torch.float64) for v in (self.keep_ratio, RATIO_EPS))
        return torch.ceil(num_tokens.to(torch.float64) * ratio - eps).to(torch.int64)[0]

    def routed_block(self, block: nn.Module, router: nn.Module, x: Tensor) -> Tensor:
        """RoutedBlock.forward_eval with the top-K tokens by router margin kept."""
        b, h, w, c = x.shape
        tokens = x.reshape(b, h * w, c)
        margin = routing_margin(router(tokens))
        index = margin.topk(self.token_count(h * w), dim=-1).indices
        index = index.unsqueeze(-1).expand(-1, -1, c)
        kept = block.norm1(tokens.gather(1, index))
        mixed = block.efficient_block(x).reshape(b, h * w, c)
        mixed = mixed.scatter(1, index, block.attn.forward_tokens(kept))
        return block.finish(x + mixed.reshape(b, h, w, c))


def trimap_codes(trimap: Tensor) -> Tensor:
    """0 / 128 / 255 trimap -> 0 / 0.5 / 1 with the thresholds of ``normalize_trimap``."""
    unknown = torch.full_like(trimap, 0.5)
    coded = torch.where(trimap >= TRIMAP_FG_THRESHOLD, torch.ones_like(trimap), unknown)
    return torch.where(trimap < TRIMAP_BG_THRESHOLD, torch.zeros_like(trimap), coded)


def position_embedding(encoder: RoutedViT, h: int, w: int) -> Tensor:
    """``resize_abs_pos`` without its same-size shortcut (bicubic resizing to the table's own
    size is the identity), so the resize stays in the graph for every grid size."""
    table = encoder.pos_embed[:, 1:] if encoder.pretrain_use_cls_token else encoder.pos_embed
    size = math.isqrt(int(encoder.pos_embed.shape[1]) - int(encoder.pretrain_use_cls_token))
    grid = table.reshape(1, size, size, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False)
    return grid.permute(0, 2, 3, 1)


def padded_window_attention(block: nn.Module, x: Tensor) -> Tensor:
    """``Block.attention`` of a window block, always padding to whole windows (the padding is
    zero where none is needed) and without the size-dependent chunking of eager inference."""
    h, w = x.shape[1], x.shape[2]
    ws = block.window_size
    x = F.pad(block.norm1(x), (0, 0, 0, (ws - w % ws) % ws, 0, (ws - h % ws) % ws))
    windows, padded_hw = window_partition(x, ws)
    return window_unpartition(block.attn(windows), ws, padded_hw, (h, w))
