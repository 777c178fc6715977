"""Test-time tiled decoding (the authors' rule): bounded decoder memory on large images.

The input is zero-padded to a multiple of the tile size and the features to the matching token
count; every tile is decoded together with ``context`` pixels of its neighbours (only where a
neighbour exists) and only the tile's own area is written to the output. Given a mask of the
pixels whose output matters, tiles whose own area holds none of them are not decoded but copied
from a fill tensor (at inference: the trimap's known values, which consumers write there anyway).
"""

from collections.abc import Callable

import torch

from .regions import RegionSource, crop_region

__all__ = ["tile_windows", "tiled_decode"]

Decoder = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Map = torch.Tensor | RegionSource


def tile_windows(num_tiles: int, tile_size: int, context: int) -> list[tuple[int, int, int, int]]:
    """Along one axis: (crop_start, crop_end, own_start, own_end) in pixels for every tile.

    The crop extends ``context`` pixels beyond the tile on each side that has a neighbour.
    """
    windows = []
    for i in range(num_tiles):
        own_start, own_end = i * tile_size, (i + 1) * tile_size
        crop_start = own_start - context if i > 0 else own_start
        crop_end = own_end + context if i < num_tiles - 1 else own_end
        windows.append((crop_start, crop_end, own_start, own_end))
    return windows


def _check_tiling(tile_size: int, context: int, stride: int) -> None:
    if tile_size <= 0 or tile_size % stride:
        raise ValueError(f"tile_size must be a positive multiple of {stride}, got {tile_size}")
    if context < 0 or context % stride or context > tile_size:
        raise ValueError(
            f"tile_context must be a multiple of {stride} in [0, tile_size={tile_size}], "
            f"got {context}"
        )


def _padded_extent(size: int, num_tiles: int, tile_size: int, margin: int | None) -> int:
    """How far the crops of one axis reach: whole tiles, or only ``margin`` pixels beyond the
    image when the decoder cannot see further than that."""
    whole = num_tiles * tile_size
    return whole if margin is None else min(whole, size + margin)


def _check_skip_inputs(needed, fill, shape: tuple[int, ...]) -> None:
    if (needed is None) != (fill is None):
        raise ValueError("tiled_decode: give both needed and fill, or neither")
    if needed is None:
        return
    for name, source in (("needed", needed), ("fill", fill)):
        if tuple(source.shape) != shape:
            raise ValueError(
                f"tiled_decode: {name} must have shape {shape} (the output's), "
                f"got {tuple(source.shape)}"
            )
    if isinstance(needed, torch.Tensor) and needed.dtype != torch.bool:
        raise ValueError(f"tiled_decode: needed must be a bool mask, got {needed.dtype}")


def _tiles_with_needed_pixels(
    needed: Map | None, row_windows: list, col_windows: list
) -> list[list[bool]]:
    """Per tile: does its own area hold a needed pixel in any image (all True without a mask)?
    One device-to-host copy for all tiles, not one synchronisation per tile."""
    if needed is None:
        return [[True] * len(col_windows) for _ in row_windows]
    flags = torch.stack([
        crop_region(needed, oy0, oy1, ox0, ox1).any()
        for _, _, oy0, oy1 in row_windows for _, _, ox0, ox1 in col_windows
    ])
    flat = flags.tolist()
    return [flat[i * len(col_windows) : (i + 1) * len(col_windows)]
            for i in range(len(row_windows))]


def tiled_decode(
    decoder: Decoder,
    features: torch.Tensor,
    images: Map,
    tile_size: int = 512,
    context: int = 64,
    stride: int = 16,
    needed: Map | None = None,
    fill: Map | None = None,
) -> torch.Tensor:
    """Decode ``features`` [B, C, H/stride, W/stride] with ``images`` [B, c, H, W] tile by tile.

    Returns [B, 1, H, W]. ``tile_size=0`` decodes the whole image in one call (one tile).
    ``images``, ``needed`` and ``fill`` may be tensors or region sources
    (``mematte_d2.modeling.regions``): only the windows of the decoded tiles are read.

    ``needed`` (bool) and ``fill``, both [B, 1, H, W]: a tile whose own area has no needed
    pixel in any image of the batch is not decoded; its output is copied from ``fill``. Every
    decoded tile keeps its crop, so decoded values are those of decoding every tile.

    The result is that of decoding the input zero-padded to whole tiles. When the decoder
    states a ``receptive_radius`` (pixels an output can depend on, padding effects included)
    of at most ``context``, the zero padding beyond ``context`` pixels past the image cannot
    reach any output inside the image, so it is neither built nor decoded: same values, less
    work on images that are not a multiple of the tile size.
    """
    height, width = images.shape[-2:]
    if (features.shape[-2] * stride, features.shape[-1] * stride) != (height, width):
        raise ValueError(
            f"tiled_decode: image size {(height, width)} must be {stride} x the feature size "
            f"{tuple(features.shape[-2:])}"
        )
    out_shape = (images.shape[0], 1, height, width)
    _check_skip_inputs(needed, fill, out_shape)
    if tile_size == 0:
        if needed is not None and not crop_region(needed, 0, height, 0, width).any():
            return crop_region(fill, 0, height, 0, width).clone()
        return decoder(features, crop_region(images, 0, height, 0, width))
    _check_tiling(tile_size, context, stride)
    rows, cols = -(-height // tile_size), -(-width // tile_size)
    radius = getattr(decoder, "receptive_radius", None)
    margin = context if radius is not None and radius <= context else None
    padded_h = _padded_extent(height, rows, tile_size, margin)
    padded_w = _padded_extent(width, cols, tile_size, margin)
    out = torch.empty(out_shape, dtype=images.dtype, device=images.device)
    row_windows = [(y0, min(y1, padded_h), oy0, min(oy1, height))
                   for y0, y1, oy0, oy1 in tile_windows(rows, tile_size, context)]
    col_windows = [(x0, min(x1, padded_w), ox0, min(ox1, width))
                   for x0, x1, ox0, ox1 in tile_windows(cols, tile_size, context)]
    decode = _tiles_with_needed_pixels(needed, row_windows, col_windows)
    for i, (y0, y1, oy0, oy1) in enumerate(row_windows):
        for j, (x0, x1, ox0, ox1) in enumerate(col_windows):
            if not decode[i][j]:
                out[..., oy0:oy1, ox0:ox1] = crop_region(fill, oy0, oy1, ox0, ox1)
                continue
            pred = decoder(
                crop_region(features, y0 // stride, y1 // stride, x0 // stride, x1 // stride),
                crop_region(images, y0, y1, x0, x1),
            )
            out[..., oy0:oy1, ox0:ox1] = pred[..., oy0 - y0 : oy1 - y0, ox0 - x0 : ox1 - x0]
    return out
