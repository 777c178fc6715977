"""Config overrides shrinking the ViT-S models to a few-second benchmark (width 32, 6 blocks,
window 4, 8-channel decoder), shared by the benchmark tests."""

_ENCODER = {
    "embed_dim": 32,
    "num_heads": 2,
    "depth": 6,
    "window_size": 4,
    "window_block_indexes": "[0,1,3,4]",
    "residual_block_indexes": "[2,5]",
}
_DECODER = ["model.decoder.in_chans=32", "model.decoder.convstream_out=[8,8,8]",
            "model.decoder.fusion_out=[8,8,8,8]"]


def _encoder(node: str) -> list[str]:
    return [f"model.{node}.{key}={value}" for key, value in _ENCODER.items()]


# Valid for both mematte_s and vitmatte_s (the teacher overrides only apply where it exists).
VITMATTE_OPTS = _encoder("backbone") + _DECODER
MEMATTE_OPTS = VITMATTE_OPTS + _encoder("teacher_backbone")
