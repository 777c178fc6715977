"""Key mappings from released weights to this project's parameter layout.

Two conversions:

* `hf_vitmatte_to_d2`: a Hugging Face transformers `VitMatteForImageMatting` state dict to the
  ViTMatte layout used here (`backbone.*`, `decoder.*`, as in the official ViTMatte release).
  The tensors are copied unchanged: transformers' VitDet computes the same function (qkv packed
  as [3, heads, head_dim] rows, LayerNorm eps 1e-6 from its config, the 1 + 14x14 position
  table resized bicubically to the token grid, decomposed relative positions, channel
  LayerNorms in the residual bottleneck; the decoder concatenates [detail, upsampled] like
  ViTMatte). Only names differ. Its image processor normalises RGB with mean = std = 0.5, while
  this project (and the official release) uses ImageNet statistics; feed the same 4-channel
  tensor to both and the alphas agree (tests/cli/test_convert_checkpoint.py).
* `vitmatte_to_mematte`: a ViTMatte checkpoint to a MEMatte initialisation. The student
  (`backbone.*`) is a copy without the global blocks' relative-position tables (MEMatte's global
  blocks have none); `teacher_backbone.*` is a full copy of the ViTMatte encoder; the decoder is
  copied. The routers (`backbone.routers.*`) and the LTRMs (`backbone.blocks.{i}.efficient_block.*`)
  do not exist in ViTMatte: they keep the model's own initialisation (`fill_missing_from`).
"""

import re
from collections.abc import Iterable, Mapping

import torch

_HF_LAYER = r"^backbone\.encoder\.layer\.(\d+)\."
_WB = r"(weight|bias)$"
# (pattern, replacement) applied in order to each Hugging Face key; every key must match one.
_HF_RULES: tuple[tuple[str, str], ...] = (
    (r"^backbone\.embeddings\.position_embeddings$", "backbone.pos_embed"),
    (r"^backbone\.embeddings\.projection\." + _WB, r"backbone.patch_embed.proj.\1"),
    (_HF_LAYER + r"attention\.(qkv|proj)\." + _WB, r"backbone.blocks.\1.attn.\2.\3"),
    (_HF_LAYER + r"attention\.(rel_pos_[hw])$", r"backbone.blocks.\1.attn.\2"),
    (_HF_LAYER + r"(norm[12])\." + _WB, r"backbone.blocks.\1.\2.\3"),
    (_HF_LAYER + r"mlp\.(fc[12])\." + _WB, r"backbone.blocks.\1.mlp.\2.\3"),
    (_HF_LAYER + r"residual\.((?:conv|norm)[123])\." + _WB, r"backbone.blocks.\1.residual.\2.\3"),
    (r"^decoder\.convstream\.convs\.(\d+)\.conv\.", r"decoder.convstream.convs.\1.conv."),
    (r"^decoder\.convstream\.convs\.(\d+)\.batch_norm\.", r"decoder.convstream.convs.\1.bn."),
    (r"^decoder\.fusion_blocks\.(\d+)\.conv\.conv\.", r"decoder.fusion_blks.\1.conv.conv."),
    (r"^decoder\.fusion_blocks\.(\d+)\.conv\.batch_norm\.", r"decoder.fusion_blks.\1.conv.bn."),
    (r"^decoder\.matting_head\.matting_convs\.(\d+)\.", r"decoder.matting_head.matting_convs.\1."),
)
_HF_IGNORED = re.compile(r"\.position_ids$")
_PATCH_TABLE = 1 + 14 * 14  # class token + 224/16 grid, the size pos_embed is stored at


class ConversionError(ValueError):
    """A state dict does not have the layout a conversion expects."""


def is_hf_vitmatte(state: Mapping[str, torch.Tensor]) -> bool:
    """True when the keys look like transformers' VitMatteForImageMatting."""
    return any(k.startswith("backbone.encoder.layer.") for k in state)


def hf_vitmatte_to_d2(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a transformers VitMatteForImageMatting state dict to the ViTMatte layout here."""
    if not is_hf_vitmatte(state):
        raise ConversionError(
            "not a Hugging Face VitMatteForImageMatting state dict "
            "(no 'backbone.encoder.layer.*' keys)"
        )
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state.items():
        if _HF_IGNORED.search(key):
            continue
        for pattern, repl in _HF_RULES:
            new_key, n = re.subn(pattern, repl, key)
            if n:
                out[new_key] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise ConversionError(f"keys with no mapping to this layout: {', '.join(unknown)}")
    if "backbone.pos_embed" not in out:
        # use_absolute_position_embeddings=False: a zero table adds nothing, like no table.
        dim = out["backbone.patch_embed.proj.weight"].shape[0]
        out["backbone.pos_embed"] = torch.zeros(1, _PATCH_TABLE, dim)
    return out


def _block_indices(state: Mapping[str, torch.Tensor], part: str) -> set[int]:
    pattern = re.compile(rf"^backbone\.blocks\.(\d+)\.{part}\.")
    return {int(m.group(1)) for k in state if (m := pattern.match(k))}


def global_block_indices(state: Mapping[str, torch.Tensor]) -> list[int]:
    """Global-attention blocks of a ViTMatte encoder: those followed by a residual bottleneck."""
    return sorted(_block_indices(state, "residual"))


def vitmatte_to_mematte(
    state: Mapping[str, torch.Tensor], global_blocks: Iterable[int] | None = None
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """MEMatte initialisation from a ViTMatte state dict; returns (state, dropped student keys).

    `global_blocks` defaults to the blocks carrying a residual bottleneck (2, 5, 8, 11 in ViT-S/B).
    """
    if is_hf_vitmatte(state):
        state = hf_vitmatte_to_d2(state)
    if any(k.startswith(("backbone.routers.", "teacher_backbone.")) for k in state):
        raise ConversionError("already a MEMatte checkpoint (it has routers or a teacher)")
    if not _block_indices(state, "attn"):
        raise ConversionError("not a ViTMatte state dict: no 'backbone.blocks.{i}.attn.*' keys")
    globals_ = sorted(global_blocks) if global_blocks is not None else global_block_indices(state)
    if not globals_:
        raise ConversionError(
            "cannot tell the global-attention blocks (no residual bottlenecks): pass them"
        )
    dropped = {f"backbone.blocks.{i}.attn.rel_pos_{a}" for i in globals_ for a in "hw"}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("backbone."):
            out["teacher_" + key] = value.clone()
            if key not in dropped:
                out[key] = value.clone()
        elif key.startswith("decoder."):
            out[key] = value.clone()
        else:
            raise ConversionError(f"unexpected key {key!r} in a ViTMatte state dict")
    return out, sorted(k for k in dropped if k in state)


def fill_missing_from(
    state: dict[str, torch.Tensor], model_state: Mapping[str, torch.Tensor]
) -> list[str]:
    """Add the model's own (freshly initialised) tensors for keys `state` lacks; returns them."""
    added = [k for k in model_state if k not in state]
    for key in added:
        state[key] = model_state[key].detach().clone()
    return added
