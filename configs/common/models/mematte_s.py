"""MEMatte ViT-S: routed ViT-S student, frozen ViTMatte-S teacher, ViTMatte detail decoder.

Derived values are interpolations of the student's: the decoder's input width and the teacher's
layout (width, heads, depth, window layout), so an override of ``model.backbone.embed_dim``
changes all of them; the teacher's rel-pos tables are sized for the training crop."""

from detectron2.config import LazyCall as L

from mematte_d2.modeling import DetailCapture, MattingCriterion, MEMatte, RoutedViT, ViTMatteEncoder

VIT_LAYOUT = ("embed_dim", "num_heads", "depth", "window_size", "window_block_indexes",
              "residual_block_indexes")

model = L(MEMatte)(
    backbone=L(RoutedViT)(
        embed_dim=384,
        num_heads=6,
        depth=12,
        window_size=14,
        window_block_indexes=[0, 1, 3, 4, 6, 7, 9, 10],
        residual_block_indexes=[2, 5, 8, 11],
        router="LocalGlobalRouter",
        refiner="LTRM",
        routing_policy="BATR",
        keep_ratio=0.25,
        max_tokens=None,
    ),
    teacher_backbone=L(ViTMatteEncoder)(
        **{key: f"${{..backbone.{key}}}" for key in VIT_LAYOUT},
        img_size=512,
    ),
    decoder=L(DetailCapture)(in_chans="${..backbone.embed_dim}"),
    criterion=L(MattingCriterion)(),
    distill_loss_weight=1.0,
    keep_ratio_loss_weight=1.0,
    tile_size=512,
    tile_context=64,
    skip_known_tiles=True,  # inference: decode only around unknown pixels, fill the rest
)
