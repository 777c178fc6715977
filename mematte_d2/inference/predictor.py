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
from mematte_d2.modeling.routing import check_keep_ratio, check_max_tokens
from mematte_d2.utils.precision import autocast, autocast_dtype
from mematte_d2.utils.trimap import clamp_known_regions_, trimap_codes

from .memory import (
    MemoryBudget,
    MemoryBudgetError,
    choose_max_tokens,
    estimate_peak_memory,
    format_bytes,
    model_dims,
    parse_memory_size,
    resident_bytes,
    token_grid,
)
from .options import check_tile_size

INPUT_FORMATS = ("RGB", "BGR")
# Retries of an image that ran out of memory, each with half the token cap and decoder tile.
OOM_RETRIES = 3


class PredictionOutOfMemoryError(MemoryBudgetError):
    """An image ran out of device memory even with the smaller budgets of every retry."""


def free_cached_memory(device: torch.device) -> None:
    """Return the blocks PyTorch's CUDA cache holds but does not use to the device."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


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


class NonFinitePredictionError(ValueError):
    """The model returned NaN or infinite alpha values (for example from diverged weights)."""


def _describe(value) -> str:
    """What a wrong argument is, in words that point to the fix."""
    if isinstance(value, torch.Tensor):
        return (f"a torch.Tensor of shape {tuple(value.shape)} (give numpy HxWx3 arrays, e.g. "
                "tensor.permute(1, 2, 0).cpu().numpy() for a CHW tensor)")
    if isinstance(value, (str, bytes)) or hasattr(value, "__fspath__"):
        return f"the path {str(value)!r} (read files with mematte_d2.utils.image_io.read_image)"
    if isinstance(value, np.ndarray):
        return f"a numpy array of shape {value.shape}"
    return "None" if value is None else f"a {type(value).__name__}"


def validate_inputs(image: np.ndarray, trimap: np.ndarray) -> None:
    """Raise a TypeError / ValueError naming the problem with an image + trimap pair.

    The image is HxWx3 uint8; the trimap HxW uint8 (0-255 codes) or float (0-1), see
    mematte_d2.utils.trimap.trimap_codes.
    """
    for name, arr in (("image", image), ("trimap", trimap)):
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{name} must be a numpy array, got {_describe(arr)}")
    if image.dtype != np.uint8:
        raise TypeError(
            f"image dtype must be uint8, got {image.dtype} "
            "(mematte_d2.utils.image_io.to_uint8 converts 16-bit and float images)"
        )
    if not (trimap.dtype == np.uint8 or np.issubdtype(trimap.dtype, np.floating)):
        raise TypeError(
            f"trimap dtype must be uint8 (0-255 codes) or float (0-1), got {trimap.dtype}"
        )
    if image.ndim != 3 or image.shape[2] != 3:
        channels = image.shape[2] if image.ndim == 3 else 1
        raise ValueError(
            f"image must have shape HxWx3, got {image.shape} ({channels} channel(s)); "
            "mematte_d2.utils.image_io.read_image turns grayscale and RGBA files into 3 channels"
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
        max_memory: memory budget ("8GB", bytes, or "auto" = 80% of the memory available when
            an image starts, see MemoryBudget) from which the token cap of each image is chosen
            when no explicit max_tokens / keep_ratio is given (never above the config's
            `max_tokens`); None uses the config's cap as is. An image that does not fit the
            budget at all raises MemoryBudgetError; one that runs out of memory all the same is
            retried smaller, then raises PredictionOutOfMemoryError.
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
        check_max_tokens(max_tokens)
        check_keep_ratio(keep_ratio)
        check_tile_size(tile_size)
        if isinstance(image, np.ndarray):
            return self._predict_one(image, trimap, max_tokens, keep_ratio, tile_size)
        if not isinstance(image, (list, tuple)):
            raise TypeError(
                f"image must be an HxWx3 numpy array or a list of them, got {_describe(image)}"
            )
        if not isinstance(trimap, (list, tuple)):
            raise TypeError(
                f"image is a list of {len(image)}, so trimap must be a list of as many HxW "
                f"arrays, got {_describe(trimap)}"
            )
        images, trimaps = list(image), list(trimap)
        if len(images) != len(trimaps):
            raise ValueError(f"got a list of {len(images)} images but {len(trimaps)} trimaps")
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
        budget = self.memory_budget.bytes(resident_bytes(dims))
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
        # 8-bit image and codes as given, on the host: the model builds its float input per
        # patch row and decoder tile, on its device (MattingInputs).
        rgb = torch.from_numpy(np.ascontiguousarray(image))
        tri = torch.from_numpy(trimap_codes(trimap))
        inputs = {"image": rgb.permute(2, 0, 1), "trimap": tri[None]}
        out, max_tokens = self._run_with_oom_retries(inputs, max_tokens, keep_ratio, tile_size)
        alpha = out["alpha"].float()
        non_finite = int(alpha.numel() - torch.isfinite(alpha).sum())
        if non_finite:
            raise NonFinitePredictionError(
                f"the model predicted {non_finite} non-finite (NaN or infinite) alpha values "
                f"of {alpha.numel()}; are the weights diverged?"
            )
        alpha = clamp_known_regions_(alpha, inputs["trimap"])
        return MattingResult(
            alpha=np.ascontiguousarray(alpha[0].cpu().numpy()),
            routing=out["routing"].cpu(),
            keep_ratio=out["keep_ratio"].cpu(),
            max_tokens=max_tokens,
        )

    def _run_with_oom_retries(self, inputs: dict, max_tokens, keep_ratio, tile_size):
        """The model's output and the token cap it ran with. When the device runs out of
        memory, the cache is freed and the image retried with half the token cap and half the
        decoder tile, up to ``OOM_RETRIES`` times; then PredictionOutOfMemoryError."""
        height, width = inputs["trimap"].shape[-2:]
        for _ in range(OOM_RETRIES + 1):
            try:
                with self._tile_size(tile_size), self._budget(max_tokens, keep_ratio), autocast(
                    self.autocast_dtype, self.device
                ):
                    return self.model([inputs])[0], max_tokens
            except torch.OutOfMemoryError as e:
                # Only the message is kept: the traceback's frames hold the failed activations.
                reason = str(e).splitlines()[0] if str(e) else "out of memory"
            free_cached_memory(self.device)
            max_tokens, tile_size = self._smaller_budget(height, width, max_tokens, tile_size)
        raise PredictionOutOfMemoryError(
            f"a {height}x{width} image ran out of {self.device.type} memory {OOM_RETRIES + 1} "
            f"times, last with max_tokens={max_tokens}, tile_size={tile_size} ({reason})"
        )

    def _smaller_budget(self, height: int, width: int, max_tokens, tile_size):
        """Half the token cap (at least 1) and half the decoder tile (a multiple of 32, not
        below the tile context); decoding the whole image at once becomes 512 tiles."""
        gh, gw = token_grid(height, width)
        max_tokens = max(1, (gh * gw if max_tokens is None else max_tokens) // 2)
        tile = self.model.tile_size if tile_size is None else tile_size
        tile = 512 if tile == 0 else max(32, self.model.tile_context, tile // 2 // 32 * 32)
        return max_tokens, tile

    @contextmanager
    def _tile_size(self, tile_size: int | None):
        if tile_size is None:
            yield
            return
        previous = self.model.tile_size
        self.model.tile_size = tile_size
        try:
            yield
        finally:
            self.model.tile_size = previous

    def _budget(self, max_tokens: int | None, keep_ratio: float | None):
        return self.model.routing_budget(max_tokens=max_tokens, keep_ratio=keep_ratio)


def _without_teacher(model_cfg):
    """The model config without its distillation teacher, which inference never runs."""
    model_cfg = copy.deepcopy(model_cfg)
    if "teacher_backbone" in model_cfg:
        model_cfg.teacher_backbone = None
    return model_cfg
