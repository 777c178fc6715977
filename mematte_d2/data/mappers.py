"""Dataset mappers: turn a dataset dict into the model's input dict (see MEMatte's I/O contract).

MattingTrainMapper composes a training sample from fg / alpha / bg files with the release's
(GCA-Matting's) training transforms; MattingTestMapper reads an evaluation sample at full
resolution.
"""

from collections.abc import Callable, Sequence

import numpy as np
import torch

from .reading import check_same_size, read_alpha, read_foreground, read_rgb, read_trimap_codes
from .release_protocol import (
    read_release_image,
    read_release_trimap,
    release_padded_size,
    release_trimap_channel,
)
from .transforms import release_train_transforms

__all__ = ["MattingTestMapper", "MattingTrainMapper"]


def _chw(array: np.ndarray) -> torch.Tensor:
    """HxW or HxWxC numpy array -> CxHxW float32 tensor."""
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1), dtype=np.float32))


class MattingTrainMapper:
    """Map a composition dict {"fg_file", "alpha_file", "bg_file", "image_id"} to
    {"image": 3xSxS 0-255, "trimap": 1xSxS 0/128/255, "alpha": 1xSxS [0, 1], "image_id"}.

    Each call draws a fresh numpy Generator from numpy's global RNG, which detectron2 seeds per
    process and per data loader worker: identical seeds give identical samples.

    Args:
        dataset_names: the set(s) the second foregrounds are drawn from (names or dicts);
            None leaves that step out of the default pipeline.
        crop_size: S, the side of the training crops of the default pipeline.
        transforms: the steps to apply instead of
            :func:`~mematte_d2.data.transforms.release_train_transforms`; they must end with
            "image", "trimap" and "alpha" of equal size in the sample.
    """

    def __init__(self, *, dataset_names: str | Sequence[str] | Sequence[dict] | None,
                 crop_size: int = 512, transforms: Sequence[Callable] | None = None):
        if crop_size < 1:
            raise ValueError(f"crop_size must be positive, got {crop_size}")
        self.crop_size = crop_size
        self.transforms = (release_train_transforms(dataset_names, crop_size)
                           if transforms is None else list(transforms))

    def __call__(self, dataset_dict: dict) -> dict:
        rng = np.random.default_rng(np.random.randint(0, 2**31, size=4))
        fg, alpha = read_foreground(dataset_dict["fg_file"], dataset_dict["alpha_file"])
        sample = {"fg": fg, "alpha": alpha, "bg": read_rgb(dataset_dict["bg_file"])}
        for transform in self.transforms:
            sample = transform(sample, rng)
        missing = [k for k in ("image", "trimap", "alpha") if k not in sample]
        if missing:
            raise KeyError(f"the training transforms produced no {missing} for "
                           f"{dataset_dict['fg_file']}; end them with GenerateTrimap and "
                           "Composite")
        return {
            "image": _chw(sample["image"]),
            "trimap": _chw(sample["trimap"]),
            "alpha": _chw(sample["alpha"]),
            "image_id": dataset_dict["image_id"],
        }


class MattingTestMapper:
    """Map an evaluation dict to the full-resolution {"image" 3xHxW 0-255, "trimap" 1xHxW,
    "alpha" 1xHxW [0, 1], "file_name", "image_id", "height", "width", "protocol"}.

    Nothing is resized; image, alpha and trimap must have the same size.

    Args:
        protocol: "native" reads with OpenCV (EXIF rotation applied) and gives the trimap as
            0 / 128 / 255 codes, encoded 0 / 0.5 / 1 by the model. "release" reproduces the
            authors' ``inference.py`` (see :mod:`~mematte_d2.data.release_protocol`): PIL
            decoding, the trimap file's own codes, the trimap channel as codes / 255
            ("trimap_channel") and their padding rule ("padded_size"). The evaluator reads
            "protocol" to quantise the prediction as that protocol saves it.
    """

    PROTOCOLS = ("native", "release")

    def __init__(self, protocol: str = "native"):
        if protocol not in self.PROTOCOLS:
            raise ValueError(
                f"MattingTestMapper: protocol must be one of {self.PROTOCOLS}, got {protocol!r}"
            )
        self.protocol = protocol

    def __call__(self, dataset_dict: dict) -> dict:
        files = {key: dataset_dict[key] for key in ("file_name", "alpha_file", "trimap_file")}
        if self.protocol == "release":
            image = read_release_image(files["file_name"])
            trimap = read_release_trimap(files["trimap_file"])
        else:
            image = read_rgb(files["file_name"])
            trimap = read_trimap_codes(files["trimap_file"])
        alpha = read_alpha(files["alpha_file"])
        check_same_size({files["file_name"]: image, files["alpha_file"]: alpha,
                         files["trimap_file"]: trimap})
        h, w = alpha.shape
        if (dataset_dict.get("height", h), dataset_dict.get("width", w)) != (h, w):
            raise ValueError(
                f"{files['file_name']}: the data set says {dataset_dict['height']}x"
                f"{dataset_dict['width']} but the file is {h}x{w} (HxW)"
            )
        sample = {
            "image": _chw(image),
            "trimap": _chw(trimap),
            "alpha": _chw(alpha),
            "file_name": files["file_name"],
            "image_id": dataset_dict["image_id"],
            "height": h,
            "width": w,
            "protocol": self.protocol,
        }
        if self.protocol == "release":
            sample["trimap_channel"] = release_trimap_channel(trimap)
            sample["padded_size"] = release_padded_size(h, w)
        return sample
