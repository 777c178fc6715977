"""ViTMatte ViT-S baseline: the same meta-architecture with the plain ViTMatte encoder.

The decoder's input width follows the encoder's (an interpolation), so one override of
``model.backbone.embed_dim`` changes both."""

from detectron2.config import LazyCall as L

from mematte_d2.modeling import DetailCapture, MattingCriterion, MEMatte, ViTMatteEncoder

model = L(MEMatte)(
    backbone=L(ViTMatteEncoder)(
        embed_dim=384,
        num_heads=6,
        depth=12,
        window_size=14,
        window_block_indexes=[0, 1, 3, 4, 6, 7, 9, 10],
        residual_block_indexes=[2, 5, 8, 11],
        img_size=512,
    ),
    teacher_backbone=None,
    decoder=L(DetailCapture)(in_chans="${..backbone.embed_dim}"),
    criterion=L(MattingCriterion)(),
    tile_size=512,
    tile_context=64,
    skip_known_tiles=True,  # inference: decode only around unknown pixels, fill the rest
)
