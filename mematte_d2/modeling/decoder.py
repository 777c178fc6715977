"""ViTMatte detail-capture decoder: a light conv stream fused with the 1/16 encoder features.

Module and parameter names follow the released ViTMatte / MEMatte checkpoints
(``convstream.convs.{i}.conv/bn``, ``fusion_blks.{i}.conv.conv/bn``, ``matting_head.matting_convs``)
so their weights load with ``strict=True``.
"""

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .deterministic_ops import interpolate

__all__ = ["ConvBNReLU", "ConvStream", "FusionBlock", "MattingHead", "DetailCapture"]


def folded_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of one conv computing ``bn(conv(x))`` with the BatchNorm's running
    statistics (eval mode): equal up to float rounding, one pass over the activations less."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    bias = -bn.running_mean * scale
    if bn.bias is not None:
        bias = bias + bn.bias
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    return conv.weight * scale[:, None, None, None], bias


def uses_running_stats(bn: nn.BatchNorm2d) -> bool:
    """True when ``bn`` normalises with its running statistics (eval mode), i.e. is foldable."""
    return not bn.training and bn.running_mean is not None and bn.running_var is not None


def conv_bn_relu(x: torch.Tensor, conv: nn.Conv2d, bn: nn.BatchNorm2d) -> torch.Tensor:
    """``relu(bn(conv(x)))``; with running statistics (eval mode) as one conv, BN folded in."""
    if not uses_running_stats(bn):
        return F.relu(bn(conv(x)), inplace=True)
    weight, bias = folded_batchnorm(conv, bn)
    return F.relu(F.conv2d(x, weight, bias, conv.stride, conv.padding), inplace=True)


class ConvBNReLU(nn.Module):
    """3x3 conv (no bias) + BatchNorm + ReLU (in eval mode as one conv with the BN folded in)."""

    def __init__(self, in_chans: int, out_chans: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_chans, out_chans, 3, stride=stride, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv_bn_relu(x, self.conv, self.bn)

    def forward_concat(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """``forward(torch.cat([first, second], 1))``; in eval mode as two convs on the parts,
        which never builds the concatenation (a full-resolution copy in the decoder)."""
        if not uses_running_stats(self.bn):
            return self(torch.cat([first, second], dim=1))
        weight, bias = folded_batchnorm(self.conv, self.bn)
        split = first.shape[1]
        out = self._conv(second, weight[:, split:], bias)
        out += self._conv(first, weight[:, :split], None)
        return F.relu(out, inplace=True)

    def _conv(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
        return F.conv2d(x, weight, bias, self.conv.stride, self.conv.padding)


class ConvStream(nn.Module):
    """Stride-2 conv pyramid on the 4-channel input: returns [D0 = input, D1, D2, D3, ...]."""

    def __init__(self, in_chans: int = 4, out_chans: Sequence[int] = (48, 96, 192)):
        super().__init__()
        chans = [in_chans, *out_chans]
        self.convs = nn.ModuleList(
            ConvBNReLU(chans[i], chans[i + 1], stride=2) for i in range(len(out_chans))
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        details = [x]
        for conv in self.convs:
            details.append(conv(details[-1]))
        return details


class FusionBlock(nn.Module):
    """Upsample coarse features x2 and fuse them with a detail map: conv([detail, upsampled])."""

    def __init__(self, in_chans: int, out_chans: int):
        super().__init__()
        self.conv = ConvBNReLU(in_chans, out_chans, stride=1)

    def forward(self, features: torch.Tensor, detail: torch.Tensor) -> torch.Tensor:
        up = interpolate(features, scale_factor=2, mode="bilinear", align_corners=False)
        return self.conv.forward_concat(detail, up)


class MattingHead(nn.Module):
    """conv3x3 + BN + ReLU + conv1x1 to one alpha logit channel."""

    def __init__(self, in_chans: int = 32, mid_chans: int = 16):
        super().__init__()
        self.matting_convs = nn.Sequential(
            nn.Conv2d(in_chans, mid_chans, 3, stride=1, padding=1),
            nn.BatchNorm2d(mid_chans),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_chans, 1, 1, stride=1, padding=0),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv, bn, _, out = self.matting_convs
        return out(conv_bn_relu(x, conv, bn))


class DetailCapture(nn.Module):
    """Decode 1/16 encoder features plus the 4-channel input into an alpha matte in [0, 1].

    Args:
        in_chans: channels of the encoder features (384 for ViT-S, 768 for ViT-B).
        img_chans: channels of the network input (RGB + trimap = 4).
        convstream_out: channels of the stride-2 detail maps D1, D2, ...
        fusion_out: channels of the fusion steps; one more than ``convstream_out`` (the last
            fusion step uses D0, the input itself).
    """

    def __init__(
        self,
        in_chans: int = 384,
        img_chans: int = 4,
        convstream_out: Sequence[int] = (48, 96, 192),
        fusion_out: Sequence[int] = (256, 128, 64, 32),
    ):
        super().__init__()
        if len(fusion_out) != len(convstream_out) + 1:
            raise ValueError(
                f"DetailCapture: fusion_out needs len(convstream_out) + 1 = "
                f"{len(convstream_out) + 1} entries, got {len(fusion_out)}"
            )
        self.in_chans = in_chans
        self.img_chans = img_chans
        self.convstream = ConvStream(img_chans, convstream_out)
        detail_chans = [img_chans, *convstream_out]
        fusion_in = [in_chans, *fusion_out[:-1]]
        self.fusion_blks = nn.ModuleList(
            FusionBlock(fusion_in[i] + detail_chans[-(i + 1)], fusion_out[i])
            for i in range(len(fusion_out))
        )
        self.matting_head = MattingHead(fusion_out[-1])

    @property
    def stride(self) -> int:
        """Pixel stride of the features this decoder expects (16 for the default layout)."""
        return 2 ** len(self.fusion_blks)

    @property
    def receptive_radius(self) -> int:
        """Upper bound, in input pixels, of how far away an output pixel's inputs (and the zero
        padding or edge clamping of the layers computing it) can lie.

        With n fusion steps, in input pixels: the head's 3x3 conv (1), the fusion 3x3 convs at
        scales 1..2^(n-1) (2^n - 1), the x2 bilinear upsamplings from scales 2..2^n (2^(n+1) - 2)
        and the stride-2 conv stream down to scale 2^(n-1), alignment included (2^n - 2):
        4 * 2^n - 4 = 60 for n = 4 (a single perturbed pixel reaches 37). Tiled decoding with
        at least this much context equals decoding the whole padded input.
        """
        return 4 * 2 ** len(self.fusion_blks) - 4

    def inference_floats_per_pixel(self) -> int:
        """Peak floats alive per decoded pixel at inference, for the memory estimate: the
        full-resolution fusion maps and their inputs, the upsampled features and the detail
        maps of the conv stream (320 for the default layout, checked against measured peaks in
        tests/inference/test_infer_memory.py)."""
        return 320

    def forward(self, features: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """features [B, in_chans, H/s, W/s] + images [B, img_chans, H, W] -> alpha [B, 1, H, W]."""
        if features.dim() != 4 or features.shape[1] != self.in_chans:
            raise ValueError(
                f"DetailCapture expects features [B, {self.in_chans}, h, w], "
                f"got {tuple(features.shape)}"
            )
        if images.dim() != 4 or images.shape[1] != self.img_chans:
            raise ValueError(
                f"DetailCapture expects images [B, {self.img_chans}, H, W], "
                f"got {tuple(images.shape)}"
            )
        s = self.stride
        if tuple(images.shape[-2:]) != (features.shape[-2] * s, features.shape[-1] * s):
            raise ValueError(
                f"DetailCapture: image size {tuple(images.shape[-2:])} must be {s} x the feature "
                f"size {tuple(features.shape[-2:])}"
            )
        # Channels-last activations: oneDNN / cuDNN convolutions with few channels run much
        # faster on them (about 1.3x for this decoder on CPU); the values are the same.
        images = images.contiguous(memory_format=torch.channels_last)
        details = self.convstream(images)
        x = features.contiguous(memory_format=torch.channels_last)
        for i, fuse in enumerate(self.fusion_blks):
            x = fuse(x, details[-(i + 1)])
        return torch.sigmoid(self.matting_head(x))
