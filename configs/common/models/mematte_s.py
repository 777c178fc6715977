"""MEMatte ViT-S: routed ViT-S student, frozen ViTMatte-S teacher, ViTMatte detail decoder."""

from detectron2.config import LazyCall as L

from mematte_d2.modeling import DetailCapture, MattingCriterion, MEMatte, RoutedViT, ViTMatteEncoder

embed_dim, num_heads = 384, 6

model = L(MEMatte)(
    backbone=L(RoutedViT)(
        embed_dim=embed_dim,
        num_heads=num_heads,
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
        embed_dim=embed_dim,
        num_heads=num_heads,
        depth=12,
        window_size=14,
        window_block_indexes=[0, 1, 3, 4, 6, 7, 9, 10],
        residual_block_indexes=[2, 5, 8, 11],
        img_size=512,
    ),
    decoder=L(DetailCapture)(in_chans=embed_dim),
    criterion=L(MattingCriterion)(),
    distill_loss_weight=1.0,
    keep_ratio_loss_weight=1.0,
    tile_size=512,
    tile_context=64,
)
