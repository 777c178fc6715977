"""Test-time tiled decoding (the authors' rule): bounded decoder memory on large images.

The input is zero-padded to a multiple of the tile size and the features to the matching token
count; every tile is decoded together with ``context`` pixels of its neighbours (only where a
neighbour exists) and only the tile's own area is written to the output. Given a mask of the
pixels whose output matters, only windows covering them are decoded (a sparse cover when the
decoder's receptive radius fits in the context, else the tiles holding such pixels) and the
rest is copied from a fill tensor (at inference: the trimap's known values, which consumers
write there anyway).
"""

from collections.abc import Callable

import numpy as np
import torch

from .decode_cover import DecodeWindow, plan_cover
from .regions import RegionSource, crop_region

__all__ = [
    "check_tiling",
    "largest_window_side",
    "tile_windows",
    "tiled_decode",
    "window_size_keeps_values",
]

Decoder = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Map = torch.Tensor | RegionSource

# Rows of the needed mask read at once when finding the cells to decode.
NEEDED_STRIP_ROWS = 512


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


def largest_window_side(size: int, tile_size: int, context: int) -> int:
    """Longest side, in pixels, of any window `tiled_decode` decodes along an axis of ``size``
    pixels: that of the largest tile crop (a tile with ``context`` towards each neighbour),
    or the whole axis for ``tile_size=0``. Memory estimates rely on it."""
    if tile_size <= 0:
        return size
    return tile_size + context * min(-(-size // tile_size) - 1, 2)


def window_size_keeps_values(device: torch.device) -> bool:
    """Whether the decoder gives a pixel the same float value in windows of any size there.

    True on the CPU: oneDNN's convolutions gave each output the same value in windows of every
    size tried, and the tests compare sparse covers with whole tiles bit for bit. cuDNN may
    choose another algorithm, and so another rounding, for another window size: there only
    whole tiles are skipped, so saved predictions stay those of decoding every tile.
    """
    return device.type == "cpu"


def check_tiling(tile_size: int, context: int, stride: int) -> None:
    """Raise a ValueError unless ``tile_size`` > 0 is a multiple of ``stride`` and ``context``
    a multiple of it in [0, tile_size] (tile size 0, the whole image, needs no check)."""
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


def _needed_cells(needed: Map, cell: int) -> np.ndarray:
    """[H / cell, W / cell] bool on the host: does a cell hold a needed pixel in any image?
    Read in row strips, so a region source never builds the whole mask."""
    batch, _, height, width = needed.shape
    strip = cell * max(1, NEEDED_STRIP_ROWS // cell)
    parts = []
    for y0 in range(0, height, strip):
        window = crop_region(needed, y0, min(y0 + strip, height), 0, width)
        cells = window.reshape(batch, -1, cell, width // cell, cell)
        parts.append(cells.any(dim=4).any(dim=2).any(dim=0))
    return torch.cat(parts).cpu().numpy()


def _tile_grid(height: int, width: int, tile_size: int, context: int,
               extent: tuple[int, int]) -> list[DecodeWindow]:
    """The authors' tiles (crops clipped to ``extent``, own areas to the image), row-major."""
    rows = tile_windows(-(-height // tile_size), tile_size, context)
    cols = tile_windows(-(-width // tile_size), tile_size, context)
    return [
        DecodeWindow((y0, min(y1, extent[0]), x0, min(x1, extent[1])),
                     (oy0, min(oy1, height), ox0, min(ox1, width)))
        for y0, y1, oy0, oy1 in rows for x0, x1, ox0, ox1 in cols
    ]


def _holds_needed(window: DecodeWindow, cells: np.ndarray, cell: int) -> bool:
    y0, y1, x0, x1 = (v // cell for v in window.own)
    return bool(cells[y0:y1, x0:x1].any())


def tiled_decode(
    decoder: Decoder,
    features: torch.Tensor,
    images: Map,
    tile_size: int = 512,
    context: int = 64,
    stride: int = 16,
    needed: Map | None = None,
    fill: Map | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Decode ``features`` [B, C, H/stride, W/stride] with ``images`` [B, c, H, W] tile by tile.

    Returns [B, 1, H, W]. ``tile_size=0`` decodes the whole image in one call (one tile).
    ``images``, ``needed`` and ``fill`` may be tensors or region sources
    (``mematte_d2.modeling.regions``): only the windows of the decoded tiles are read.

    The result is that of decoding the input zero-padded to whole tiles. When the decoder
    states a ``receptive_radius`` (pixels an output can depend on, padding effects included)
    of at most ``context``, the zero padding beyond ``context`` pixels past the image cannot
    reach any output inside the image, so it is neither built nor decoded: same values, less
    work on images that are not a multiple of the tile size.

    ``needed`` (bool) and ``fill``, both [B, 1, H, W]: only pixels needed in some image of the
    batch must be decoded; the others are copied from ``fill``. With a receptive radius within
    ``context`` on a device where `window_size_keeps_values`, the decoded windows are a sparse
    cover of the needed pixels (`plan_cover`: no window side longer than `largest_window_side`),
    otherwise the tiles whose own area holds a needed pixel. Either way every decoded pixel has
    the value it has when every tile is decoded.

    ``progress(done, total)`` is called after each decoded window.
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
        out = decoder(features, crop_region(images, 0, height, 0, width))
        if progress is not None:
            progress(1, 1)
        return out
    check_tiling(tile_size, context, stride)
    radius = getattr(decoder, "receptive_radius", None)
    margin = context if radius is not None and radius <= context else None
    extent = (_padded_extent(height, -(-height // tile_size), tile_size, margin),
              _padded_extent(width, -(-width // tile_size), tile_size, margin))
    out = torch.empty(out_shape, dtype=images.dtype, device=images.device)
    if needed is None:
        windows = _tile_grid(height, width, tile_size, context, extent)
    else:
        cells = _needed_cells(needed, stride)
        if margin is not None and window_size_keeps_values(features.device):
            sides = (largest_window_side(int(height), tile_size, context),
                     largest_window_side(int(width), tile_size, context))
            windows = plan_cover(cells, int(stride), int(tile_size // stride), int(context),
                                 (int(extent[0]), int(extent[1])), sides)  # ints when traced
        else:
            windows = [window for window in _tile_grid(height, width, tile_size, context, extent)
                       if _holds_needed(window, cells, stride)]
        for y0 in range(0, height, tile_size):
            y1 = min(y0 + tile_size, height)
            out[..., y0:y1, :] = crop_region(fill, y0, y1, 0, width)
    for done, window in enumerate(windows, 1):
        y0, y1, x0, x1 = window.crop
        oy0, oy1, ox0, ox1 = window.own
        pred = decoder(
            crop_region(features, y0 // stride, y1 // stride, x0 // stride, x1 // stride),
            crop_region(images, y0, y1, x0, x1),
        )
        out[..., oy0:oy1, ox0:ox1] = pred[..., oy0 - y0 : oy1 - y0, ox0 - x0 : ox1 - x0]
        if progress is not None:
            progress(done, len(windows))
    return out
