"""Picture sheets of matting results: input, trimap, prediction, ground truth, routing maps."""

import numpy as np
import torch

from mematte_d2.inference.render import routing_overlay

__all__ = ["matting_sheet_row", "stack_rows"]


def _gray(x: torch.Tensor) -> np.ndarray:
    """1xHxW in [0, 1] -> HxWx3 uint8."""
    g = (x.detach().float().clamp(0, 1)[0].cpu().numpy() * 255).round().astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def matting_sheet_row(sample: dict, output: dict) -> np.ndarray:
    """One row (HxW'x3 uint8 RGB): image, trimap, predicted alpha, ground truth (if given),
    then one map per router tinting red the tokens it sent to global attention (the same
    overlay as ``predict --routing-overlay``)."""
    image = sample["image"].detach().float().clamp(0, 255).permute(1, 2, 0).cpu().numpy()
    image = image.round().astype(np.uint8)
    trimap = sample["trimap"].float()
    trimap = trimap / 255 if trimap.max() > 1 else trimap
    tiles = [image, _gray(trimap), _gray(output["alpha"])]
    if "alpha" in sample:
        tiles.append(_gray(sample["alpha"]))
    routing = output.get("routing")
    if routing is not None:
        tiles.extend(routing_overlay(image, routing[k : k + 1]) for k in range(len(routing)))
    gap = np.full((image.shape[0], 4, 3), 255, np.uint8)
    row = [tiles[0]]
    for tile in tiles[1:]:
        row += [gap, tile]
    return np.concatenate(row, axis=1)


def stack_rows(rows: list[np.ndarray]) -> np.ndarray:
    """Stack rows of possibly different sizes top to bottom on a white canvas."""
    width = max(r.shape[1] for r in rows)
    padded = []
    for r in rows:
        pad = np.full((r.shape[0] + 4, width, 3), 255, np.uint8)
        pad[: r.shape[0], : r.shape[1]] = r
        padded.append(pad)
    return np.concatenate(padded, axis=0)
