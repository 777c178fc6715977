"""Tiny MEMatte models and batches for the routing-ablation tests."""

import routing_ablations  # noqa: F401  (registers the project's components)
import torch

from mematte_d2.modeling import DetailCapture, MEMatte, RoutedViT

DIM = 64


def tiny_encoder(router="LocalGlobalRouter", refiner="LTRM", policy="BATR", **kwargs):
    """embed_dim 64, 2 heads, depth 4: window blocks 0-1, routed global blocks 2-3."""
    options = dict(
        embed_dim=DIM,
        num_heads=2,
        depth=4,
        window_size=4,
        window_block_indexes=(0, 1),
        residual_block_indexes=(3,),
        router=router,
        refiner=refiner,
        routing_policy=policy,
        keep_ratio=0.25,
    )
    options.update(kwargs)
    return RoutedViT(**options)


def tiny_model(router="LocalGlobalRouter", refiner="LTRM", policy="BATR", **kwargs) -> MEMatte:
    """Tiny MEMatte (no teacher, whole-image decoding) with the named routing components."""
    return MEMatte(
        backbone=tiny_encoder(router, refiner, policy, **kwargs),
        decoder=DetailCapture(in_chans=DIM, convstream_out=(8, 16, 16), fusion_out=(32, 16, 8, 8)),
        tile_size=0,
    )


def tiny_batch(size: int = 64, batch: int = 2) -> list[dict]:
    """Random images with a band of unknown trimap and an alpha matte consistent with it."""
    items = []
    for _ in range(batch):
        trimap = torch.zeros(1, size, size)
        trimap[:, size // 2 :] = 255
        trimap[:, size // 2 - 6 : size // 2 + 6] = 128
        alpha = (trimap / 255).clamp(0, 1)
        alpha[trimap == 128] = torch.rand(int((trimap == 128).sum()))
        items.append({"image": torch.rand(3, size, size) * 255, "trimap": trimap, "alpha": alpha})
    return items
