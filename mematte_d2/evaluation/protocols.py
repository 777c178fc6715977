"""The 8-bit PNG a prediction is saved as, per evaluation protocol; metrics are computed on it.

"native": known regions clamped by the 0 / 128 / 255 trimap thresholds, alpha x 255 rounded.
"release": as the authors' ``inference.py``: alpha set to 0 where the trimap code is exactly 0
and to 1 where it is exactly 255, then ``to_pil_image``'s float-to-byte conversion, which
truncates alpha x 255.
"""

from collections.abc import Callable

import numpy as np
import torch

from mematte_d2.utils.image_io import alpha_to_png_array
from mematte_d2.utils.trimap import clamp_known_regions


def native_prediction_png(pred: torch.Tensor, trimap: torch.Tensor) -> np.ndarray:
    """HxW float alpha and trimap (any scale) -> HxW uint8, known regions clamped, rounded."""
    return alpha_to_png_array(clamp_known_regions(pred, trimap).numpy())


def release_prediction_png(pred: torch.Tensor, trimap: torch.Tensor) -> np.ndarray:
    """HxW float alpha and HxW trimap file codes (0-255) -> HxW uint8 as the release saves it."""
    out = pred.float().clone()
    out[trimap == 0] = 0.0
    out[trimap == 255] = 1.0
    return out.mul(255).byte().numpy()


PREDICTION_PNG: dict[str, Callable[[torch.Tensor, torch.Tensor], np.ndarray]] = {
    "native": native_prediction_png,
    "release": release_prediction_png,
}
