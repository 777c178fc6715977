"""Picture sheets of matting results: input, trimap, prediction, ground truth, routing maps."""

import cv2
import numpy as np
import torch

__all__ = ["matting_sheet_row", "stack_rows"]


def _gray(x: torch.Tensor) -> np.ndarray:
    """1xHxW in [0, 1] -> HxWx3 uint8."""
    g = (x.detach().float().clamp(0, 1)[0].cpu().numpy() * 255).round().astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def _routing_overlay(image: np.ndarray, routed: torch.Tensor) -> np.ndarray:
    """Tint the tokens sent to global attention red over a darkened copy of the image."""
    h, w = image.shape[:2]
    mask = routed.detach().cpu().numpy().astype(np.uint8)
    mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
    out = (image.astype(np.float32) * 0.45).astype(np.uint8)
    out[mask] = (0.5 * image[mask] + 0.5 * np.array([255, 40, 40])).astype(np.uint8)
    return out


def matting_sheet_row(sample: dict, output: dict) -> np.ndarray:
    """One row (HxW'x3 uint8 RGB): image, trimap, predicted alpha, ground truth (if given),
    then one map per router showing which tokens went to global attention."""
    image = sample["image"].detach().float().clamp(0, 255).permute(1, 2, 0).cpu().numpy()
    image = image.round().astype(np.uint8)
    trimap = sample["trimap"].float()
    trimap = trimap / 255 if trimap.max() > 1 else trimap
    tiles = [image, _gray(trimap), _gray(output["alpha"])]
    if "alpha" in sample:
        tiles.append(_gray(sample["alpha"]))
    routing = output.get("routing")
    if routing is not None:
        tiles.extend(_routing_overlay(image, routing[k]) for k in range(routing.shape[0]))
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
