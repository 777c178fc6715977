"""Benchmark cases: what one fresh process measures, and the models and inputs it uses.

A case is a small JSON-serialisable dataclass so that the parent process can hand it to a
child (`python -m mematte_d2.benchmark.measure`) and every case starts from an empty heap.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mematte_d2 import model_zoo
from mematte_d2.config import load_config
from mematte_d2.data.compose import trimap_from_alpha
from mematte_d2.data.procedural import random_foreground

MODEL_CONFIGS = {
    name: Path(model_zoo.get_config_file(f"common/models/{name}.py"))
    for name in ("mematte_s", "mematte_b", "vitmatte_s", "vitmatte_b")
}
# Named variants: a model config plus overrides. "_dense" runs global attention with the full
# N x N score matrix, as the released ViTMatte does; "vitmatte_s" keeps this project's fused,
# chunked attention (same outputs, memory linear in the tokens).
MODEL_VARIANTS = {
    f"{name}_dense": (name, ["model.backbone.attention_impl='dense'"])
    for name in ("vitmatte_s", "vitmatte_b")
}
MODEL_NAMES = (*MODEL_CONFIGS, *MODEL_VARIANTS)
DTYPES = ("fp32", "fp16", "bf16")
TRIMAPS = ("disc", "outline")
# The outline trimap's subject is drawn at this size and scaled up; its unknown band reaches
# this share of the image side into foreground and background (13 px each way at 2048^2).
OUTLINE_DRAW_SIZE = 512
OUTLINE_HALF_WIDTH = 0.006


def resolve_model(model: str) -> tuple[Path, list[str]]:
    """The LazyConfig file and built-in overrides of a model name (mematte_s, vitmatte_s_dense,
    ...) or of a path to a config file."""
    if model in MODEL_CONFIGS:
        return MODEL_CONFIGS[model], []
    if model in MODEL_VARIANTS:
        base, overrides = MODEL_VARIANTS[model]
        return MODEL_CONFIGS[base], list(overrides)
    path = Path(model)
    if path.suffix == ".py" and path.is_file():
        return path, []
    raise ValueError(
        f"unknown model {model!r}: use one of {', '.join(MODEL_NAMES)} or a config file path"
    )


def load_model_config(model: str, opts: list[str]):
    """The config of ``model`` with its variant's overrides, then ``opts``, applied."""
    path, overrides = resolve_model(model)
    return load_config(path, overrides + list(opts))


@dataclass
class InferenceCase:
    """One model at one square resolution, batch 1, measured in its own process.

    ``keep_ratio``: fixed share of tokens each routed block sends to global attention;
    ``tile_size``: decoder tile size (None = the config's, 0 = whole image at once);
    ``skip_known_tiles``: decode only around unknown trimap pixels (None = the config's);
    ``trimap``: input trimap shape, one of ``TRIMAPS`` (see ``synthetic_pair``);
    ``count_flops``: after the timed calls, trace one more call and count its FLOPs
    (``flops.count_gflops``);
    ``max_memory_bytes``: a case whose estimated peak (``estimate_peak_memory``) exceeds this is
    not run but reported as skipped, so that a quadratic-memory baseline cannot exhaust the
    machine (None = always run); ``max_memory``: the same as a ``MemoryBudget`` spec ("8GB",
    "auto"), read by the child itself, so that the parent never touches CUDA.
    """

    model: str
    size: int
    device: str = "cpu"
    dtype: str = "fp32"
    keep_ratio: float = 0.25
    tile_size: int | None = None
    skip_known_tiles: bool | None = None
    trimap: str = "disc"
    threads: int = 2
    repeats: int = 3
    seed: int = 0
    max_seconds: float | None = None
    max_memory_bytes: int | None = None
    max_memory: str | None = None
    count_flops: bool = True
    opts: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({"kind": "inference", **asdict(self)})


RECIPE_TRAIN_CONFIG = Path(model_zoo.get_config_file("common/train.py"))


@dataclass
class TrainCase:
    """Training steps (forward, backward, AdamW step) on random crops, in its own process,
    run by the training step runner as the recipes train.

    ``teacher``: keep the config's distillation teacher (as in real MEMatte training);
    ``precision``: "recipe" = the AMP and gradient clipping of ``configs/common/train.py``
    (fp16 autocast with a GradScaler on CUDA, fp32 on the CPU, as the trainer does), or one of
    ``DTYPES`` for that autocast dtype (fp16 on CUDA only).
    """

    model: str
    teacher: bool = False
    precision: str = "recipe"
    batch_size: int = 2
    crop_size: int = 512
    device: str = "cpu"
    threads: int = 2
    repeats: int = 3
    seed: int = 0
    opts: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({"kind": "train", **asdict(self)})


def case_from_json(text: str) -> InferenceCase | TrainCase:
    """Inverse of ``to_json`` of either case type."""
    data = json.loads(text)
    kind = data.pop("kind")
    return InferenceCase(**data) if kind == "inference" else TrainCase(**data)


def disc_trimap(size: int) -> np.ndarray:
    """0/128/255 trimap: foreground disc, unknown ring (19% of the pixels), background."""
    yy, xx = np.mgrid[:size, :size]
    radius = np.hypot(yy - size / 2, xx - size / 2) / size
    trimap = np.zeros((size, size), np.uint8)
    trimap[radius < 0.35] = 128
    trimap[radius < 0.25] = 255
    return trimap


def outline_trimap(size: int, seed: int = 0) -> np.ndarray:
    """0/128/255 trimap shaped like a photo's: a thin unknown band along the outline of a
    procedural subject (body, holes, hair strands; ``random_foreground``), about 5-15% of the
    pixels, the rest known."""
    _, alpha = random_foreground(np.random.default_rng(seed), OUTLINE_DRAW_SIZE,
                                 OUTLINE_DRAW_SIZE)
    subject = cv2.resize(alpha, (size, size), interpolation=cv2.INTER_LINEAR) >= 0.5
    return trimap_from_alpha(subject.astype(np.uint8) * 255,
                             2 * max(1, round(OUTLINE_HALF_WIDTH * size)) + 1)


def synthetic_pair(size: int, seed: int = 0, trimap: str = "disc"
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A random RGB uint8 image and a ``disc_trimap`` or ``outline_trimap`` of it.

    The image contents do not change the cost of a run (routing uses a fixed keep ratio); the
    trimap does when only the area around unknown pixels is decoded.
    """
    if trimap not in TRIMAPS:
        raise ValueError(f"unknown trimap shape {trimap!r}: use one of {', '.join(TRIMAPS)}")
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    return image, disc_trimap(size) if trimap == "disc" else outline_trimap(size, seed)
