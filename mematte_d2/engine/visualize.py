"""Picture sheets of matting results: input, trimap, prediction, ground truth, routing maps."""

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from mematte_d2.inference.render import routing_overlay

__all__ = ["label_tile", "matting_sheet_row", "stack_rows", "titled_sheet"]

GAP = 4  # white pixels between tiles and rows
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_SCALE, _THICKNESS, _LINE = 0.5, 1, 18  # text size and line height in pixels


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


def _wrap(text: str, width: int) -> list[str]:
    """Split text into lines no wider than `width` pixels in the sheet's font."""
    lines: list[str] = []
    for word in text.split():
        trial = f"{lines[-1]} {word}" if lines else word
        if lines and cv2.getTextSize(trial, _FONT, _SCALE, _THICKNESS)[0][0] <= width:
            lines[-1] = trial
        else:
            lines.append(word)
    return lines


def _text_band(texts: Sequence[str], widths: Sequence[int], lines: int) -> np.ndarray:
    """A white band with each text wrapped and drawn black in its column."""
    band = np.full((lines * _LINE + GAP, sum(widths) + GAP * (len(widths) - 1), 3), 255, np.uint8)
    x = 0
    for text, width in zip(texts, widths, strict=True):
        for i, line in enumerate(_wrap(text, width)[:lines]):
            cv2.putText(band, line, (x + 2, (i + 1) * _LINE - 5), _FONT, _SCALE, (0, 0, 0),
                        _THICKNESS, cv2.LINE_AA)
        x += width + GAP
    return band


def label_tile(tile: np.ndarray, text: str) -> np.ndarray:
    """A copy of an HxWx3 uint8 tile with `text` in white on black at its top-left corner."""
    out = tile.copy()
    (w, h), base = cv2.getTextSize(text, _FONT, _SCALE, _THICKNESS)
    out[: h + base + 4, : w + 4] = 0
    cv2.putText(out, text, (2, h + 2), _FONT, _SCALE, (255, 255, 255), _THICKNESS, cv2.LINE_AA)
    return out


def titled_sheet(
    titles: Sequence[str], rows: Sequence[Sequence[np.ndarray]], caption: str = ""
) -> np.ndarray:
    """A grid of HxWx3 uint8 tiles under a header band with one title per column, and the
    caption (wrapped) in a band below; a column is as wide as its widest tile."""
    if any(len(row) != len(titles) for row in rows):
        raise ValueError(f"every row needs one tile per title ({len(titles)})")
    widths = [max(row[c].shape[1] for row in rows) for c in range(len(titles))]
    header_lines = max(len(_wrap(t, w)) for t, w in zip(titles, widths, strict=True))
    bands = [_text_band(titles, widths, header_lines)]
    for row in rows:
        band = np.full((max(t.shape[0] for t in row) + GAP, bands[0].shape[1], 3), 255, np.uint8)
        x = 0
        for tile, width in zip(row, widths, strict=True):
            band[: tile.shape[0], x : x + tile.shape[1]] = tile
            x += width + GAP
        bands.append(band)
    if caption:
        full = [bands[0].shape[1]]
        bands.append(_text_band([caption], full, len(_wrap(caption, full[0]))))
    return np.concatenate(bands, axis=0)
