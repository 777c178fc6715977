"""Tiny MEMatte / ViTMatte configs (width 32, 6 blocks, window 4) shared by the inference tests."""

from detectron2.config import LazyConfig

MEMATTE_CONFIG = "configs/common/models/mematte_s.py"
VITMATTE_CONFIG = "configs/common/models/vitmatte_s.py"

_ENCODER = {
    "embed_dim": 32,
    "num_heads": 2,
    "depth": 6,
    "window_size": 4,
    "window_block_indexes": [0, 1, 3, 4],
    "residual_block_indexes": [2, 5],
}


def _encoder_overrides(node: str) -> list[str]:
    return [f"model.{node}.{k}={v}".replace(" ", "") for k, v in _ENCODER.items()]


MEMATTE_OPTS = (
    _encoder_overrides("backbone") + _encoder_overrides("teacher_backbone")
    + ["model.decoder.in_chans=32"]
)
VITMATTE_OPTS = _encoder_overrides("backbone") + ["model.decoder.in_chans=32"]


def tiny_cfg(kind: str = "mematte"):
    """LazyConfig of a tiny MEMatte ("mematte") or ViTMatte ("vitmatte") model."""
    path, opts = (MEMATTE_CONFIG, MEMATTE_OPTS) if kind == "mematte" else (VITMATTE_CONFIG,
                                                                           VITMATTE_OPTS)
    return LazyConfig.apply_overrides(LazyConfig.load(path), opts)
