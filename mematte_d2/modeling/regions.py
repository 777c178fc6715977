"""Windows of large maps, read from a tensor or built on request by a region source.

At inference the model reads its full-resolution input only in windows: the encoder's patch
embedding row strip by row strip, the decoder tile by tile. A `RegionSource` builds such a
window when asked (``mematte_d2.modeling.model_inputs.MattingInputs`` does so from 8-bit images),
so no full-resolution float copy has to exist; `crop_region` reads a window of either kind.
"""

from typing import Protocol, runtime_checkable

import torch

__all__ = ["RegionSource", "crop_region"]


@runtime_checkable
class RegionSource(Protocol):
    """A ``[B, C, H, W]`` map whose windows are built on request, as tensors of ``dtype`` on
    ``device``."""

    @property
    def shape(self) -> torch.Size: ...

    @property
    def dtype(self) -> torch.dtype: ...

    @property
    def device(self) -> torch.device: ...

    def crop(self, y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
        """The window ``[..., y0:y1, x0:x1]``, zero where it passes the bottom or right edge."""
        ...


def crop_region(
    source: torch.Tensor | RegionSource, y0: int, y1: int, x0: int, x1: int
) -> torch.Tensor:
    """Window ``[..., y0:y1, x0:x1]`` of a tensor or region source, zero beyond its bottom and
    right edges (as if zero-padded there). A window inside a tensor is a view, not a copy."""
    if not isinstance(source, torch.Tensor):
        return source.crop(y0, y1, x0, x1)
    height, width = source.shape[-2:]
    if y1 <= height and x1 <= width:
        return source[..., y0:y1, x0:x1]
    window = source.new_zeros((*source.shape[:-2], y1 - y0, x1 - x0))
    inside_y, inside_x = max(0, min(y1, height) - y0), max(0, min(x1, width) - x0)
    window[..., :inside_y, :inside_x] = source[..., y0 : y0 + inside_y, x0 : x0 + inside_x]
    return window
