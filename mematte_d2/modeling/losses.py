"""Matting losses (ViTMatte / MEMatte recipe) and the feature-distillation loss.

Region losses are scaled by ``B * 512^2 / (pixels in the region)`` as in the authors' recipe,
so a 512 x 512 crop gives the mean over the region. An empty region gives a loss of 0, not NaN.
"""

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .deterministic_ops import reflect_pad2d

__all__ = [
    "MattingCriterion",
    "region_l1_loss",
    "laplacian_loss",
    "gradient_penalty_loss",
    "distillation_loss",
]

_REFERENCE_AREA = 512 * 512


def _region_scale(region: torch.Tensor) -> torch.Tensor:
    """B * 512^2 / |region|; the count is clamped to 1 so an empty region scales a zero loss."""
    return region.shape[0] * _REFERENCE_AREA / region.sum().clamp(min=1.0)


def region_l1_loss(pred: torch.Tensor, gt: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """L1 between pred and gt restricted to a 0/1 ``region`` mask, region-scaled."""
    return F.l1_loss(pred * region, gt * region) * _region_scale(region)


def _gauss_kernel(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=device, dtype=dtype)
    return (torch.outer(taps, taps) / 256.0).view(1, 1, 5, 5)


def _gauss_blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    channels = x.shape[1]
    x = reflect_pad2d(x, (2, 2, 2, 2))
    return F.conv2d(x, kernel.expand(channels, 1, 5, 5), groups=channels)


def _laplacian_pyramid(x: torch.Tensor, max_levels: int) -> list[torch.Tensor]:
    """Band-pass levels (current - up(down(current))); stops early once a level is < 4 px."""
    kernel = _gauss_kernel(x.device, x.dtype)
    levels = []
    current = x
    for _ in range(max_levels):
        h, w = current.shape[-2] // 2 * 2, current.shape[-1] // 2 * 2
        if min(h, w) < 4:
            break
        current = current[..., :h, :w]
        down = _gauss_blur(current, kernel)[..., ::2, ::2]
        up = torch.zeros_like(current)
        up[..., ::2, ::2] = down * 4
        levels.append(current - _gauss_blur(up, kernel))
        current = down
    return levels


def laplacian_loss(pred: torch.Tensor, gt: torch.Tensor, max_levels: int = 5) -> torch.Tensor:
    """Sum over pyramid levels of 2^level * L1, divided by ``max_levels`` (whole image).

    Levels an image is too small for contribute 0.
    """
    loss = pred.new_zeros(())
    for level, (p, g) in enumerate(
        zip(_laplacian_pyramid(pred, max_levels), _laplacian_pyramid(gt, max_levels))
    ):
        loss = loss + (2**level) * F.l1_loss(p, g)
    return loss / max_levels


def _sobel(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    kx = torch.tensor(
        [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device, dtype=x.dtype
    )
    kx = kx.view(1, 1, 3, 3)
    return F.conv2d(x, kx, padding=1), F.conv2d(x, kx.transpose(-1, -2), padding=1)


def gradient_penalty_loss(
    pred: torch.Tensor, gt: torch.Tensor, region: torch.Tensor, penalty: float = 0.01
) -> torch.Tensor:
    """Sobel-x/y L1 between pred and gt plus ``penalty`` * mean |Sobel(pred)|, in ``region``."""
    scale = _region_scale(region)
    pred_x, pred_y = _sobel(pred)
    gt_x, gt_y = _sobel(gt)
    loss = F.l1_loss(pred_x * region, gt_x * region) + F.l1_loss(pred_y * region, gt_y * region)
    loss = loss + penalty * ((pred_x * region).abs().mean() + (pred_y * region).abs().mean())
    return loss * scale


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """MSE between student and (detached) teacher features."""
    if student.shape != teacher.shape:
        raise ValueError(
            f"distillation: student features {tuple(student.shape)} != teacher features "
            f"{tuple(teacher.shape)}"
        )
    return F.mse_loss(student, teacher.detach())


class MattingCriterion(nn.Module):
    """The matting losses of the recipe, each weighted and returned under its own name.

    Args:
        losses: which of ``MattingCriterion.LOSSES`` to compute.
        weights: optional per-loss multipliers (default 1).
    """

    LOSSES = ("loss_unknown_l1", "loss_known_l1", "loss_laplacian", "loss_grad")

    def __init__(
        self,
        losses: Sequence[str] = LOSSES,
        weights: dict[str, float] | None = None,
    ):
        super().__init__()
        unknown = [name for name in losses if name not in self.LOSSES]
        if unknown:
            raise KeyError(f"MattingCriterion: unknown losses {unknown}; choose from {self.LOSSES}")
        weights = dict(weights or {})
        bad = [name for name in weights if name not in losses]
        if bad:
            raise KeyError(f"MattingCriterion: weights for losses not computed: {bad}")
        self.losses = tuple(losses)
        self.weights = {name: float(weights.get(name, 1.0)) for name in self.losses}

    def forward(
        self, pred: torch.Tensor, gt: torch.Tensor, trimap: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """pred, gt: [B, 1, H, W] alpha in [0, 1]; trimap: [B, 1, H, W] with 0 / 0.5 / 1.

        Computed in float32 whatever the autocast: a bf16 ground truth would be off by up to
        0.5/255, and autocast would run the Sobel and pyramid convolutions in fp16 / bf16.
        """
        if not (pred.shape == gt.shape == trimap.shape):
            raise ValueError(
                f"MattingCriterion: pred {tuple(pred.shape)}, alpha {tuple(gt.shape)} and trimap "
                f"{tuple(trimap.shape)} must have the same shape"
            )
        with torch.autocast(pred.device.type, enabled=False):
            return self._losses(pred.float(), gt.float(), trimap.float())

    def _losses(
        self, pred: torch.Tensor, gt: torch.Tensor, trimap: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        unknown = (trimap == 0.5).to(pred.dtype)
        compute = {
            "loss_unknown_l1": lambda: region_l1_loss(pred, gt, unknown),
            "loss_known_l1": lambda: region_l1_loss(pred, gt, 1.0 - unknown),
            "loss_laplacian": lambda: laplacian_loss(pred, gt),
            "loss_grad": lambda: gradient_penalty_loss(pred, gt, unknown),
        }
        return {name: compute[name]() * self.weights[name] for name in self.losses}
