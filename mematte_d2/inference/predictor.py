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
from dataclasses import dataclass

import numpy as np
import torch
from detectron2.config import instantiate

from mematte_d2.checkpoint import load_matting_weights
from mematte_d2.modeling.routing.policies import RoutingBudget
from mematte_d2.utils.precision import autocast, autocast_dtype
from mematte_d2.utils.trimap import clamp_known_regions_, trimap_codes

from .engine import MattingInference, PredictionOutOfMemoryError, Progress
from .memory import MemoryBudget, parse_memory_size
from .options import check_tile_size

__all__ = ["MattingPredictor", "MattingResult", "PredictionOutOfMemoryError", "validate_inputs"]

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
            for fp32; autocast can need more (docs/benchmarks.md: ViTMatte-S in CPU bf16).

    The model runs inside ``self.engine`` (:class:`MattingInference`); every per-call setting
    (token budget, decoder tile, memory budget, progress) is an argument, so one predictor may
    serve several threads.
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
        model = instantiate(_without_teacher(cfg.model))
        if weights:
            load_matting_weights(model, weights)
        model.to(self.device).eval()
        self.engine = MattingInference(model, max_memory=max_memory)

    @property
    def model(self) -> torch.nn.Module:
        """The plain model the engine runs."""
        return self.engine.model

    @property
    def memory_budget(self) -> MemoryBudget | None:
        """The default memory budget of a call (None: the config's token cap as is)."""
        spec = self.engine.max_memory
        return None if spec is None else MemoryBudget(spec, self.device)

    def __call__(
        self,
        image: np.ndarray | Sequence[np.ndarray],
        trimap: np.ndarray | Sequence[np.ndarray],
        max_tokens: int | None = None,
        keep_ratio: float | None = None,
        tile_size: int | None = None,
        max_memory: str | int | None = None,
    ) -> np.ndarray | list[np.ndarray]:
        """HxW float32 alpha in [0, 1], known regions clamped (a list for a list of images)."""
        results = self.predict(image, trimap, max_tokens, keep_ratio, tile_size, max_memory)
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
        max_memory: str | int | None = None,
        progress: Progress | None = None,
    ) -> MattingResult | list[MattingResult]:
        """Like __call__, returning MattingResult(s) with the routing maps as well.

        ``max_memory`` replaces the predictor's memory budget for this call; ``progress(done,
        total, stage)`` is called as each encoder block and each decoder window finishes."""
        call = dict(budget=RoutingBudget(max_tokens, keep_ratio),
                    tile_size=check_tile_size(tile_size),
                    max_memory=None if max_memory is None else parse_memory_size(max_memory),
                    progress=progress)
        if isinstance(image, np.ndarray):
            return self._predict_one(image, trimap, **call)
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
            self._predict_one(img, tri, **call) for img, tri in zip(images, trimaps, strict=True)
        ]

    def token_cap(self, height: int, width: int, tile_size: int | None = None) -> int | None:
        """The max_tokens the memory budget allows for an image (None: no budget / no routing).

        Raises MemoryBudgetError when the image does not fit the budget at any token cap.
        """
        return self.engine.token_cap(height, width, tile_size)

    def _predict_one(self, image, trimap, budget, tile_size, max_memory, progress
                     ) -> MattingResult:
        validate_inputs(image, trimap)
        if self.input_format == "BGR":
            image = image[:, :, ::-1]
        # 8-bit image and codes as given, on the host: the engine builds the float input per
        # patch row and decoder tile, on the model's device (MattingInputs).
        rgb = torch.from_numpy(np.ascontiguousarray(image))
        tri = torch.from_numpy(trimap_codes(trimap))
        inputs = {"image": rgb.permute(2, 0, 1), "trimap": tri[None]}
        with autocast(self.autocast_dtype, self.device):
            out = self.engine([inputs], budget, tile_size, max_memory, progress)[0]
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
            max_tokens=out["max_tokens"],
        )


def _without_teacher(model_cfg):
    """The model config without its distillation teacher, which inference never runs."""
    model_cfg = copy.deepcopy(model_cfg)
    if "teacher_backbone" in model_cfg:
        model_cfg.teacher_backbone = None
    return model_cfg
