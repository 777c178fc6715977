"""The model's normalised 4-channel input, built window by window from the images as given.

The input of a batch is ``[B, 4, Hp, Wp]``: RGB normalised with the pixel mean and std, the
trimap channel (0 / 0.5 / 1, or an item's "trimap_channel" verbatim), zero beyond each image
up to the padded size. In float32 at 8192 x 8192 it is 1 GB, and the float copies of an 8-bit
image and trimap made to fill it 1.3 GB more; yet inference reads it only in windows (patch
rows, decoder tiles). `MattingInputs` keeps the images as given (8-bit stays 8-bit, on the
device it lies on) and builds a window on request; `dense()` builds the whole input, for
training and for encoders that take a tensor only. A window holds the values the whole
input holds there: the same elementwise arithmetic runs on the same pixels.
"""

import torch

from mematte_d2.utils.trimap import normalize_trimap, on_255_scale

__all__ = ["MattingInputs"]


class _TrimapMap:
    """Region source of a per-pixel map of the trimap channel, ``[B, 1, Hp, Wp]``."""

    def __init__(self, inputs: "MattingInputs", fn, dtype: torch.dtype):
        self._inputs, self._fn, self.dtype = inputs, fn, dtype

    @property
    def shape(self) -> torch.Size:
        b, _, h, w = self._inputs.shape
        return torch.Size((b, 1, h, w))

    @property
    def device(self) -> torch.device:
        return self._inputs.device

    def crop(self, y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
        return self._fn(self._inputs.trimap_crop(y0, y1, x0, x1))


class MattingInputs:
    """Region source of the normalised 4-channel input of a batch of matting items.

    Args:
        batched_inputs: dicts with "image" (3xHxW, any real dtype on the 0-255 scale) and
            "trimap" (1xHxW, 0-255 codes or 0-1 values) or "trimap_channel" (1xHxW float,
            used verbatim), as ``MEMatte`` takes them.
        padded_size: (Hp, Wp), at least every image's size.
        pixel_mean, pixel_std: [3, 1, 1] float tensors on the target device.
    """

    def __init__(
        self,
        batched_inputs: list[dict],
        padded_size: tuple[int, int],
        pixel_mean: torch.Tensor,
        pixel_std: torch.Tensor,
    ):
        self._images = [item["image"] for item in batched_inputs]
        self._trimaps = [
            (item["trimap_channel"], None) if "trimap_channel" in item
            # the scale of the whole trimap, which a window's own values may not reveal
            else (item["trimap"], on_255_scale(item["trimap"]))
            for item in batched_inputs
        ]
        self._mean, self._std = pixel_mean, pixel_std
        self.shape = torch.Size((len(batched_inputs), 4, *padded_size))

    @property
    def device(self) -> torch.device:
        return self._mean.device

    @property
    def dtype(self) -> torch.dtype:
        return self._mean.dtype

    @property
    def trimap(self) -> _TrimapMap:
        """The trimap channel ``[B, 1, Hp, Wp]`` as a region source."""
        return _TrimapMap(self, lambda channel: channel, self.dtype)

    @property
    def unknown(self) -> _TrimapMap:
        """Bool map of the pixels the trimap channel marks neither 0 nor 1 (not known)."""
        return _TrimapMap(self, lambda channel: (channel != 0) & (channel != 1), torch.bool)

    def _zeros(self, channels: int, height: int, width: int) -> torch.Tensor:
        return torch.zeros(
            self.shape[0], channels, height, width, dtype=self.dtype, device=self.device
        )

    def _windows(self, y0: int, y1: int, x0: int, x1: int):
        """Per item: (index, rows, cols) of the window part inside its image, or nothing."""
        for i, image in enumerate(self._images):
            height, width = image.shape[-2:]
            inside_y, inside_x = min(y1, height) - y0, min(x1, width) - x0
            if inside_y > 0 and inside_x > 0:
                yield i, slice(y0, y0 + inside_y), slice(x0, x0 + inside_x)

    def crop(self, y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
        """The window ``[:, :, y0:y1, x0:x1]`` of the input (zero beyond each image)."""
        window = self._zeros(4, y1 - y0, x1 - x0)
        for i, rows, cols in self._windows(y0, y1, x0, x1):
            h, w = rows.stop - rows.start, cols.stop - cols.start
            rgb = window[i, :3, :h, :w]
            rgb.copy_(self._images[i][:, rows, cols], non_blocking=True)
            rgb.sub_(self._mean).div_(self._std)
            window[i, 3:, :h, :w] = self._trimap_part(i, rows, cols)
        return window

    def trimap_crop(self, y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
        """The window of the trimap channel alone, ``[B, 1, y1 - y0, x1 - x0]``."""
        window = self._zeros(1, y1 - y0, x1 - x0)
        for i, rows, cols in self._windows(y0, y1, x0, x1):
            window[i, :, : rows.stop - rows.start, : cols.stop - cols.start] = (
                self._trimap_part(i, rows, cols)
            )
        return window

    def _trimap_part(self, i: int, rows: slice, cols: slice) -> torch.Tensor:
        trimap, scale_255 = self._trimaps[i]
        part = trimap[:, rows, cols]
        if scale_255 is not None:
            # normalised where it lies (a CUDA trimap's range check would sync with the GPU)
            part = normalize_trimap(part, scale_255)
        return part.to(self.device, non_blocking=True)

    def dense(self) -> torch.Tensor:
        """The whole input ``[B, 4, Hp, Wp]``."""
        return self.crop(0, self.shape[-2], 0, self.shape[-1])
