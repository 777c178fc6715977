"""ViTMatte encoder: the plain ViT with window and global blocks, rel-pos everywhere.

Used as MEMatte's frozen distillation teacher and as the backbone of the plain ViTMatte
baseline. It returns the same dict as the routed encoder, with zero routed blocks.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .regions import RegionSource
from .routing.policies import RoutingBudget
from .vit import Block, ViTEncoderBase, validate_block_indexes, validate_window_layout


class ViTMatteEncoder(ViTEncoderBase):
    """Plain ViT encoder of ViTMatte (no final norm).

    Args:
        img_size: training crop size; global blocks' rel-pos tables are sized for its token grid
            (512 / 16 -> 63 x head_dim) and interpolated to other grids at run time.
        patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio, qkv_bias: ViT settings.
        window_size: window of the window-attention blocks (27 x head_dim rel-pos for 14).
        window_block_indexes: blocks using window attention; the others are global.
        residual_block_indexes: blocks followed by the residual conv bottleneck.
        use_rel_pos: decomposed relative position in every block.
        pretrain_img_size, pretrain_use_cls_token: layout of the stored ``pos_embed``.
        attention_impl: "fused" (default; memory linear in the tokens) or "dense" (the released
            implementation's full score matrices; same outputs, for baseline measurements).
    """

    def __init__(
        self,
        img_size: int = 512,
        patch_size: int = 16,
        in_chans: int = 4,
        embed_dim: int = 384,
        depth: int = 12,
        num_heads: int = 6,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        window_size: int = 14,
        window_block_indexes: tuple[int, ...] = (0, 1, 3, 4, 6, 7, 9, 10),
        residual_block_indexes: tuple[int, ...] = (2, 5, 8, 11),
        use_rel_pos: bool = True,
        pretrain_img_size: int = 224,
        pretrain_use_cls_token: bool = True,
        attention_impl: str = "fused",
    ):
        super().__init__(patch_size, in_chans, embed_dim, pretrain_img_size, pretrain_use_cls_token)
        window_block_indexes = validate_window_layout(window_block_indexes, window_size, depth)
        residual_block_indexes = validate_block_indexes(
            residual_block_indexes, depth, "residual_block_indexes"
        )
        self.window_block_indexes = window_block_indexes
        self.residual_block_indexes = residual_block_indexes
        grid = img_size // patch_size
        self.blocks = nn.ModuleList(
            Block(
                embed_dim,
                num_heads,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                window_size=window_size if i in window_block_indexes else 0,
                rel_pos_size=(grid, grid) if use_rel_pos else None,
                use_residual_block=i in residual_block_indexes,
                attention_impl=attention_impl,
            )
            for i in range(depth)
        )
        self.routed_block_indexes: tuple[int, ...] = ()
        self.num_routed_blocks = 0
        self.init_weights()

    def forward(self, x: Tensor | RegionSource, budget: RoutingBudget | None = None
                ) -> dict[str, Tensor]:
        """``x`` ``[B, in_chans, H, W]`` (H, W multiples of the patch size; a tensor or a region
        source; ``budget`` is accepted for the encoder interface and has nothing to cap) -> dict
        with
        "features" ``[B, C, H/16, W/16]``, "routing" ``[B, 0, h, w]``, "keep_ratios" ``[0]``
        and "routing_loss" (zero)."""
        x = self.embed(x)
        for block in self.blocks:
            x = block(x)
        b, h, w, _ = x.shape
        routing_dtype = x.dtype if self.training else torch.bool
        return {
            "features": x.permute(0, 3, 1, 2),
            "routing": x.new_zeros((b, 0, h, w), dtype=routing_dtype),
            "keep_ratios": x.new_zeros((0,)),
            "routing_loss": x.new_zeros(()),
        }
