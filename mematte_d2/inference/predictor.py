"""MattingPredictor: alpha mattes from numpy images and trimaps in three lines of Python.

    cfg = model_zoo.get_config("Composition-1K/mematte_s_topk0.25.py")  # mematte_d2.model_zoo
    predictor = MattingPredictor(cfg, "mematte_s.pth")
    alpha = predictor(image_rgb_uint8, trimap_uint8)

Like detectron2's DefaultPredictor it builds the model from the config, loads the weights,
switches to eval mode and runs single images without gradients. Every image is run on its own
(a list is processed one image after the other) so a result never depends on what else is in
the list and peak memory stays that of the largest image.
"""

import copy
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from detectron2.config import instantiate

from mematte_d2.checkpoint import load_matting_weights
from mematte_d2.utils.precision import autocast, autocast_dtype
from mematte_d2.utils.trimap import clamp_known_regions

from .memory import (
    MemoryBudget,
    MemoryBudgetError,
    choose_max_tokens,
    estimate_peak_memory,
    format_bytes,
    model_dims,
    parse_memory_size,
)

INPUT_FORMATS = ("RGB", "BGR")


@dataclass
class MattingResult:
    """One prediction: clamped alpha (HxW float32), routing map and per-block keep ratios."""

    alpha: np.ndarray
    routing: torch.Tensor
    keep_ratio: torch.Tensor
    max_tokens: int | None

    @property
    def num_tokens(self) -> int:
        """Tokens of the (padded) image: the size of the routing grid."""
        return int(self.routing.shape[-2] * self.routing.shape[-1])

    @property
    def tokens_routed(self) -> list[int]:
        """Tokens sent to global attention by each routed block."""
        return [int(n) for n in self.routing.flatten(1).sum(1).tolist()]

    def summary(self) -> str:
        """One line on routing: mean tokens per routed block, share, and the cap if it bit."""
        routed = self.tokens_routed
        if not routed:
            return "no routed blocks"
        mean, total = sum(routed) / len(routed), self.num_tokens
        text = f"{mean:.0f}/{total} tokens routed per block ({mean / total:.0%})"
        if self.max_tokens is not None and self.max_tokens < self.num_tokens:
            text += f", cap {self.max_tokens}"
        return text


def validate_inputs(image: np.ndarray, trimap: np.ndarray) -> None:
    """Raise a TypeError / ValueError naming the problem with an image + trimap pair."""
    for name, arr in (("image", image), ("trimap", trimap)):
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{name} must be a numpy array, got {type(arr).__name__}")
        if arr.dtype != np.uint8:
            raise TypeError(
                f"{name} dtype must be uint8, got {arr.dtype} "
                "(mematte_d2.inference.io.to_uint8 converts 16-bit and float images)"
            )
    if image.ndim != 3 or image.shape[2] != 3:
        channels = image.shape[2] if image.ndim == 3 else 1
        raise ValueError(
            f"image must have shape HxWx3, got {image.shape} ({channels} channel(s)); "
            "mematte_d2.inference.io.read_image turns grayscale and RGBA files into 3 channels"
        )
    if trimap.ndim != 2:
        raise ValueError(f"trimap must have shape HxW, got {trimap.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image is empty: shape {image.shape}")
    if trimap.shape != image.shape[:2]:
        raise ValueError(
            f"trimap size {trimap.shape[0]}x{trimap.shape[1]} differs from image size "
            f"{image.shape[0]}x{image.shape[1]} (HxW)"
        )


class MattingPredictor:
    """Builds a matting model from a LazyConfig and predicts clamped alpha mattes.

    Args:
        cfg: a LazyConfig with a `model` node (MEMatte or ViTMatte).
        weights: path of a checkpoint fitting `cfg.model` (None keeps the initialisation).
        device: "cpu" / "cuda" (default: cuda when available, else cpu).
        input_format: channel order of the images given, "RGB" or "BGR" (default: the config's
            `input_format` if set, else "RGB").
        max_memory: memory budget ("8GB", bytes, or "auto" = 80% of what is free now) from which
            the token cap of each image is chosen when no explicit max_tokens / keep_ratio is
            given (never above the config's `max_tokens`); None uses the config's cap as is.
            An image that does not fit the budget at all raises MemoryBudgetError.
        precision: "fp32" (default), or autocast to "bf16" (CPU or CUDA) / "fp16" (CUDA):
            faster, with alphas that differ slightly from fp32. The memory budget is estimated
            for fp32; autocast can need more (README, Performance: ViTMatte-S in CPU bf16).
    """

    def __init__(
        self,
        cfg,
        weights: str | None = None,
        device: str | None = None,
        input_format: str | None = None,
        max_memory: str | int | None = "auto",
        precision: str = "fp32",
    ):
        self.cfg = cfg
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.autocast_dtype = autocast_dtype(precision, self.device)
        self.input_format = (input_format or cfg.get("input_format", None) or "RGB").upper()
        if self.input_format not in INPUT_FORMATS:
            raise ValueError(
                f"input_format must be one of {INPUT_FORMATS}, got {self.input_format!r}"
            )
        self.model = instantiate(_without_teacher(cfg.model))
        if weights:
            load_matting_weights(self.model, weights)
        self.model.to(self.device).eval()
        self.memory_budget = (
            None if max_memory is None else MemoryBudget(parse_memory_size(max_memory), self.device)
        )

    def __call__(
        self,
        image: np.ndarray | Sequence[np.ndarray],
        trimap: np.ndarray | Sequence[np.ndarray],
        max_tokens: int | None = None,
        keep_ratio: float | None = None,
        tile_size: int | None = None,
    ) -> np.ndarray | list[np.ndarray]:
        """HxW float32 alpha in [0, 1], known regions clamped (a list for a list of images)."""
        results = self.predict(image, trimap, max_tokens, keep_ratio, tile_size)
        if isinstance(results, list):
            return [r.alpha for r in results]
        return results.alpha

    def predict(
        self,
        image: np.ndarray | Sequence[np.ndarray],
        trimap: np.ndarray | Sequence[np.ndarray],
        max_tokens: int | None = None,
        keep_ratio: float | None = None,
        tile_size: int | None = None,
    ) -> MattingResult | list[MattingResult]:
        """Like __call__, returning MattingResult(s) with the routing maps as well."""
        if isinstance(image, np.ndarray):
            return self._predict_one(image, trimap, max_tokens, keep_ratio, tile_size)
        images, trimaps = list(image), list(trimap)
        if len(images) != len(trimaps):
            raise ValueError(f"got {len(images)} images but {len(trimaps)} trimaps")
        for i, (img, tri) in enumerate(zip(images, trimaps, strict=True)):
            try:
                validate_inputs(img, tri)
            except (TypeError, ValueError) as e:
                raise type(e)(f"item {i}: {e}") from e
        return [
            self._predict_one(img, tri, max_tokens, keep_ratio, tile_size)
            for img, tri in zip(images, trimaps, strict=True)
        ]

    def token_cap(self, height: int, width: int, tile_size: int | None = None) -> int | None:
        """The max_tokens the memory budget allows for an image (None: no budget / no routing).

        Raises MemoryBudgetError when the image does not fit the budget at any token cap.
        """
        if self.memory_budget is None:
            return None
        dims = model_dims(self.model)
        tile = self.model.tile_size if tile_size is None else tile_size
        budget = self.memory_budget.bytes()
        if dims.num_routed_blocks:
            cap = choose_max_tokens(budget, height, width, dims, tile_size=tile)
            configured = getattr(self.model.backbone, "max_tokens", None)
            return cap if configured is None else min(cap, configured)
        need = estimate_peak_memory(height, width, dims, tile_size=tile).total
        if need > budget:
            raise MemoryBudgetError(
                f"a {height}x{width} image needs about {format_bytes(need)}, more than the "
                f"budget of {format_bytes(budget)} (a smaller decoder tile size needs less)"
            )
        return None

    @torch.no_grad()
    def _predict_one(self, image, trimap, max_tokens, keep_ratio, tile_size) -> MattingResult:
        validate_inputs(image, trimap)
        if self.input_format == "BGR":
            image = image[:, :, ::-1]
        h, w = trimap.shape
        if max_tokens is None and keep_ratio is None:
            max_tokens = self.token_cap(h, w, tile_size)
        rgb = torch.from_numpy(np.ascontiguousarray(image)).to(self.device)
        tri = torch.from_numpy(trimap).to(self.device)
        inputs = {"image": rgb.permute(2, 0, 1).float(), "trimap": tri[None].float()}
        with self._tile_size(tile_size), self._budget(max_tokens, keep_ratio), autocast(
            self.autocast_dtype, self.device
        ):
            out = self.model([inputs])[0]
        alpha = clamp_known_regions(out["alpha"], inputs["trimap"])
        return MattingResult(
            alpha=alpha[0].float().cpu().numpy(),
            routing=out["routing"].cpu(),
            keep_ratio=out["keep_ratio"].cpu(),
            max_tokens=max_tokens,
        )

    @contextmanager
    def _tile_size(self, tile_size: int | None):
        if tile_size is None:
            yield
            return
        if tile_size < 0:
            raise ValueError(f"tile_size must be >= 0 (0 = whole image), got {tile_size}")
        previous = self.model.tile_size
        self.model.tile_size = tile_size
        try:
            yield
        finally:
            self.model.tile_size = previous

    def _budget(self, max_tokens: int | None, keep_ratio: float | None):
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        if keep_ratio is not None and not 0.0 < keep_ratio <= 1.0:
            raise ValueError(f"keep_ratio must be in (0, 1], got {keep_ratio}")
        return self.model.routing_budget(max_tokens=max_tokens, keep_ratio=keep_ratio)


def _without_teacher(model_cfg):
    """The model config without its distillation teacher, which inference never runs."""
    model_cfg = copy.deepcopy(model_cfg)
    if "teacher_backbone" in model_cfg:
        model_cfg.teacher_backbone = None
    return model_cfg
