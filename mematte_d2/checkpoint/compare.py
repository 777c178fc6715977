"""Comparing a checkpoint's keys and shapes with a model, and naming the layout it comes from."""

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

# How many keys each section of a report lists before summarising the rest.
DEFAULT_LIST_LIMIT = 25


@dataclass
class KeyReport:
    """Differences between a checkpoint and a model's state dict."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    matched: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def format(self, limit: int | None = DEFAULT_LIST_LIMIT) -> str:
        """Human-readable listing; `limit` keys per section (None = all)."""
        lines = [
            f"{self.matched} keys match, {len(self.missing)} missing from the checkpoint, "
            f"{len(self.unexpected)} unexpected, {len(self.mismatched)} with another shape"
        ]
        rows = [
            ("missing (in the model, not in the checkpoint)", self.missing),
            ("unexpected (in the checkpoint, not in the model)", self.unexpected),
            (
                "shape mismatch (checkpoint vs model)",
                [f"{k}: {tuple(a)} vs {tuple(b)}" for k, a, b in self.mismatched],
            ),
        ]
        for title, items in rows:
            if not items:
                continue
            lines.append(f"  {title}:")
            shown = items if limit is None else items[:limit]
            lines.extend(f"    {item}" for item in shown)
            if len(shown) < len(items):
                lines.append(f"    ... and {len(items) - len(shown)} more")
        return "\n".join(lines)


def compare_state_dicts(
    checkpoint: Mapping[str, torch.Tensor], model_state: Mapping[str, torch.Tensor]
) -> KeyReport:
    """List keys missing from / unexpected in `checkpoint` and those whose shapes differ."""
    report = KeyReport()
    for key, ref in model_state.items():
        if key not in checkpoint:
            report.missing.append(key)
        elif tuple(checkpoint[key].shape) != tuple(ref.shape):
            report.mismatched.append((key, tuple(checkpoint[key].shape), tuple(ref.shape)))
        else:
            report.matched += 1
    report.unexpected = [k for k in checkpoint if k not in model_state]
    return report


def describe_layout(state: Mapping[str, torch.Tensor]) -> str:
    """Name the architecture a state dict most likely belongs to (for error messages)."""
    keys = list(state)
    if any(k.startswith("backbone.embeddings.") or ".encoder.layer." in k for k in keys):
        return (
            "a Hugging Face transformers VitMatteForImageMatting state dict "
            "(convert it with tools/convert_checkpoint.py hf)"
        )
    if any(k.startswith("backbone.routers.") for k in keys):
        return "a MEMatte checkpoint (routed ViT encoder + ViTMatte decoder)"
    if any(k.startswith("backbone.blocks.") for k in keys) and any(
        k.startswith("decoder.") for k in keys
    ):
        return (
            "a ViTMatte checkpoint (plain ViT encoder + detail-capture decoder); "
            "tools/convert_checkpoint.py vitmatte2mematte makes a MEMatte initialisation from it"
        )
    if any(k.startswith(("roi_heads.", "proposal_generator.")) for k in keys):
        return "a detectron2 detection checkpoint, not a matting model"
    sample = ", ".join(keys[:3])
    return f"a checkpoint of an unknown architecture (first keys: {sample})"
