"""MEMatte meta-architecture: preprocessing, encoder (+ frozen teacher), decoder, losses.

Also the plain ViTMatte baseline when built with a ViTMatte encoder and no teacher.
"""

from collections.abc import Sequence

import torch
from torch import nn

from mematte_d2.utils.events import put_device_scalars

from .losses import MattingCriterion, distillation_loss
from .model_inputs import MattingInputs
from .routing.policies import RoutingBudget

__all__ = ["MEMatte"]

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def _check_widths(backbone: nn.Module, teacher: nn.Module | None, decoder: nn.Module) -> None:
    """Fail at construction when encoder and decoder widths disagree (e.g. half an override)."""
    width = getattr(backbone, "embed_dim", None)
    if width is None:
        return
    decoder_width = getattr(decoder, "in_chans", width)
    if decoder_width != width:
        raise ValueError(
            f"MEMatte: backbone.embed_dim={width} but decoder.in_chans={decoder_width}; "
            "set model.decoder.in_chans to the encoder width"
        )
    teacher_width = getattr(teacher, "embed_dim", width)
    if teacher_width != width:
        raise ValueError(
            f"MEMatte: backbone.embed_dim={width} but teacher_backbone.embed_dim={teacher_width}; "
            "distillation needs equal widths (or model.teacher_backbone=None)"
        )


class MEMatte(nn.Module):
    """Trimap-based matting with a (routed) ViT encoder and the ViTMatte detail decoder.

    Args:
        backbone: encoder mapping [B, 4, H, W] to a dict with "features" [B, C, H/16, W/16] and,
            for routed encoders, "routing", "keep_ratios" and "routing_loss". At inference an
            encoder whose ``reads_input_in_windows`` is True gets the input as a region source
            (``MattingInputs``: no full-resolution float copy), any other the whole tensor.
        decoder: maps (features, 4-channel input) to alpha [B, 1, H, W].
        criterion: matting losses (default: all four of the recipe).
        teacher_backbone: frozen encoder distilled into ``backbone``; None = no teacher, no
            distillation.
        pixel_mean, pixel_std: RGB normalisation on the 0-255 scale.
        size_divisibility: inputs are zero-padded bottom/right to a multiple of this.
        distill_loss_weight, keep_ratio_loss_weight: multipliers of those two losses.
        tile_size, tile_context, skip_known_tiles: test-time decoding settings that the
            inference engine (``mematte_d2.inference.MattingInference``) reads as its defaults:
            decoder tile (0 = whole image at once) and its context, and decoding only around
            the unknown trimap pixels. The model's own ``forward`` never reads them.

    ``forward`` is the plain path: the whole normalised input in float, the whole image
    decoded at once; large images go through ``MattingInference``, which reads the input in
    windows and decodes tiles.

    An input dict may also carry "padded_size" (Hp, Wp), a multiple of ``size_divisibility``
    at least the image size, to pad to instead of the next multiple, and "trimap_channel", a
    1xHxW float tensor used verbatim as the fourth input channel instead of the 0 / 0.5 / 1
    encoding of "trimap". Test mappers set them to feed the model as another code base does.
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        decoder: nn.Module,
        criterion: nn.Module | None = None,
        teacher_backbone: nn.Module | None = None,
        pixel_mean: Sequence[float] = IMAGENET_MEAN,
        pixel_std: Sequence[float] = IMAGENET_STD,
        size_divisibility: int = 32,
        distill_loss_weight: float = 1.0,
        keep_ratio_loss_weight: float = 1.0,
        tile_size: int = 512,
        tile_context: int = 64,
        skip_known_tiles: bool = True,
    ):
        super().__init__()
        for name, module in (("backbone", backbone), ("decoder", decoder)):
            if not isinstance(module, nn.Module):
                raise TypeError(
                    f"MEMatte: {name} must be an nn.Module, got {type(module).__name__}"
                )
        if teacher_backbone is not None and not isinstance(teacher_backbone, nn.Module):
            raise TypeError(
                "MEMatte: teacher_backbone must be an nn.Module or None, "
                f"got {type(teacher_backbone).__name__}"
            )
        _check_widths(backbone, teacher_backbone, decoder)
        # Registered first so state_dict() lists keys in the released checkpoints' order.
        self.teacher_backbone = teacher_backbone
        self.backbone = backbone
        self.decoder = decoder
        self.criterion = criterion if criterion is not None else MattingCriterion()
        if teacher_backbone is not None:
            teacher_backbone.requires_grad_(False)
            teacher_backbone.eval()
        if len(pixel_mean) != 3 or len(pixel_std) != 3:
            raise ValueError("MEMatte: pixel_mean and pixel_std need 3 (RGB) values each")
        self.register_buffer(
            "pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(3, 1, 1), False
        )
        self.register_buffer(
            "pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(3, 1, 1), False
        )
        self.size_divisibility = size_divisibility
        self.distill_loss_weight = distill_loss_weight
        self.keep_ratio_loss_weight = keep_ratio_loss_weight
        self.tile_size = tile_size
        self.tile_context = tile_context
        self.skip_known_tiles = skip_known_tiles

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def train(self, mode: bool = True) -> "MEMatte":
        """Switch modes; the teacher always stays in eval mode."""
        super().train(mode)
        if self.teacher_backbone is not None:
            self.teacher_backbone.eval()
        return self

    # ------------------------------------------------------------------ inputs
    def check_inputs(self, batched_inputs: list[dict], training: bool) -> None:
        """Raise a KeyError / ValueError naming the item and key at fault."""
        for index, item in enumerate(batched_inputs):
            self._check_input(index, item, training)

    def _check_input(self, index: int, item: dict, training: bool) -> None:
        for key in ("image", "trimap") + (("alpha",) if training else ()):
            if key not in item:
                raise KeyError(
                    f"MEMatte: batched_inputs[{index}] has no {key!r} (keys: {list(item)})"
                )
        image, trimap = item["image"], item["trimap"]
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(
                f"MEMatte: batched_inputs[{index}]['image'] must be 3xHxW RGB, "
                f"got shape {tuple(image.shape)}"
            )
        if trimap.dim() != 3 or trimap.shape[0] != 1:
            raise ValueError(
                f"MEMatte: batched_inputs[{index}]['trimap'] must be 1xHxW, "
                f"got shape {tuple(trimap.shape)}"
            )
        if trimap.shape[-2:] != image.shape[-2:]:
            raise ValueError(
                f"MEMatte: batched_inputs[{index}] trimap size {tuple(trimap.shape[-2:])} != "
                f"image size {tuple(image.shape[-2:])}"
            )
        if "trimap_channel" in item and item["trimap_channel"].shape != trimap.shape:
            raise ValueError(
                f"MEMatte: batched_inputs[{index}]['trimap_channel'] shape "
                f"{tuple(item['trimap_channel'].shape)} != trimap shape {tuple(trimap.shape)}"
            )
        if "padded_size" in item:
            padded, d = tuple(item["padded_size"]), self.size_divisibility
            if (len(padded) != 2 or any(p % d for p in padded)
                    or padded[0] < trimap.shape[-2] or padded[1] < trimap.shape[-1]):
                raise ValueError(
                    f"MEMatte: batched_inputs[{index}]['padded_size'] {padded} must be two "
                    f"multiples of {d} at least the image size {tuple(trimap.shape[-2:])}"
                )
        if training:
            alpha = item["alpha"]
            if alpha.shape != trimap.shape:
                raise ValueError(
                    f"MEMatte: batched_inputs[{index}]['alpha'] shape {tuple(alpha.shape)} "
                    f"!= trimap shape {tuple(trimap.shape)}"
                )
            if not alpha.is_floating_point() or alpha.min() < 0 or alpha.max() > 1:
                raise ValueError(
                    f"MEMatte: batched_inputs[{index}]['alpha'] must be a float tensor in [0, 1]"
                )

    def padded_size(self, item: dict) -> tuple[int, int]:
        """(Hp, Wp) the item's input is padded to: its "padded_size", or the next multiples of
        ``size_divisibility``."""
        if "padded_size" in item:
            return tuple(item["padded_size"])
        height, width = item["image"].shape[-2:]
        d = self.size_divisibility
        return -(-height // d) * d, -(-width // d) * d

    def same_size_groups(self, batched_inputs: list[dict]) -> list[list[int]]:
        """Indices of the items that share a padded size, group by group: inference batches
        an image only with others of its padded size, so its result never depends on them."""
        groups: dict[tuple[int, int], list[int]] = {}
        for i, item in enumerate(batched_inputs):
            groups.setdefault(self.padded_size(item), []).append(i)
        return list(groups.values())

    def model_inputs(self, batched_inputs: list[dict]) -> MattingInputs:
        """The normalised 4-channel input of a batch, zero-padded to a common multiple of
        ``size_divisibility``, as a region source (``MattingInputs``) that builds any window of
        it from the images as given."""
        padded = [self.padded_size(item) for item in batched_inputs]
        size = (max(p[0] for p in padded), max(p[1] for p in padded))
        return MattingInputs(batched_inputs, size, self.pixel_mean, self.pixel_std)

    def preprocess(self, batched_inputs: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole input: (inputs [B, 4, Hp, Wp], trimaps [B, 1, Hp, Wp] in 0 / 0.5 / 1 or
        the items' "trimap_channel", a view of channel 3 of inputs); see ``model_inputs``."""
        inputs = self.model_inputs(batched_inputs).dense()
        return inputs, inputs[:, 3:4]

    # ------------------------------------------------------------------ forward
    def forward(self, batched_inputs: list[dict], budget: RoutingBudget | None = None):
        """Training: dict of named losses.

        Eval: per image {"alpha" (1xHxW, the decoder's raw output), "routing" (bool [K, h, w]),
        "keep_ratio" ([K])}; ``budget`` is the token budget of this call (None: the encoder's
        configured one). Images are batched only with others of the same padded size.
        """
        if not isinstance(batched_inputs, (list, tuple)) or not batched_inputs:
            raise TypeError("MEMatte expects a non-empty list of dicts (detectron2 batched inputs)")
        self.check_inputs(batched_inputs, self.training)
        if self.training:
            return self._forward_train(batched_inputs)
        results: list[dict] = [{} for _ in batched_inputs]
        for indices in self.same_size_groups(batched_inputs):
            group = [batched_inputs[i] for i in indices]
            inputs, _ = self.preprocess(group)
            encoded = self.backbone(inputs, budget)
            alpha = self.decoder(encoded["features"], inputs)
            for i, result in zip(indices, self.postprocess(group, alpha, encoded)):
                results[i] = result
        return results

    def _forward_train(self, batched_inputs: list[dict]) -> dict[str, torch.Tensor]:
        inputs, trimaps = self.preprocess(batched_inputs)
        encoded = self.backbone(inputs)
        pred = self.decoder(encoded["features"], inputs)
        losses = self._matting_losses(batched_inputs, pred, trimaps)
        if self.teacher_backbone is not None:
            with torch.no_grad():
                teacher = self.teacher_backbone(inputs)["features"]
            losses["loss_distill"] = (
                distillation_loss(encoded["features"], teacher) * self.distill_loss_weight
            )
        if "routing_loss" in encoded:
            losses["loss_keep_ratio"] = encoded["routing_loss"] * self.keep_ratio_loss_weight
        if "keep_ratios" in encoded:
            self._log_keep_ratios(encoded["keep_ratios"])
        return losses

    def _matting_losses(
        self, batched_inputs: list[dict], pred: torch.Tensor, trimaps: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Criterion on the un-padded area; images of different sizes are averaged one by one."""
        sizes = [tuple(item["image"].shape[-2:]) for item in batched_inputs]
        # float32 ground truth whatever the autocast dtype of pred (the criterion is fp32)
        alphas = [item["alpha"].to(pred.device, torch.float32, non_blocking=True)
                  for item in batched_inputs]
        if len(set(sizes)) == 1:
            h, w = sizes[0]
            return self.criterion(pred[..., :h, :w], torch.stack(alphas), trimaps[..., :h, :w])
        total: dict[str, torch.Tensor] = {}
        for i, (h, w) in enumerate(sizes):
            one = self.criterion(
                pred[i : i + 1, :, :h, :w], alphas[i][None], trimaps[i : i + 1, :, :h, :w]
            )
            for name, value in one.items():
                total[name] = total.get(name, 0.0) + value / len(sizes)
        return total

    @staticmethod
    def _log_keep_ratios(keep_ratios: torch.Tensor) -> None:
        """Log each router's keep ratio and their mean, as tensors: the training step reads
        them with its losses, so logging adds no host sync (``put_device_scalars``)."""
        ratios = keep_ratios.detach().float().flatten()
        if not ratios.numel():
            return
        values = {f"keep_ratio/router{k}": value for k, value in enumerate(ratios.unbind())}
        put_device_scalars({**values, "keep_ratio/mean": ratios.mean()})

    @staticmethod
    def postprocess(batched_inputs: list[dict], alpha: torch.Tensor, encoded: dict) -> list[dict]:
        """Per-image results of a same-size batch: alpha cropped to each image, routing maps
        (an encoder without routing gives K = 0 maps) and per-block keep ratios."""
        features = encoded["features"]
        routing = encoded.get("routing")
        if routing is None:
            routing = features.new_zeros(features.shape[0], 0, *features.shape[-2:])
        routing = routing.bool()
        results = []
        for i, item in enumerate(batched_inputs):
            h, w = item["image"].shape[-2:]
            results.append(
                {
                    "alpha": alpha[i, :, :h, :w],
                    "routing": routing[i],
                    "keep_ratio": routing[i].flatten(1).float().mean(dim=1),
                }
            )
        return results
