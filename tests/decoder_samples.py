"""A narrow detail-capture decoder shared by decoder tests (imported by module name)."""

import torch

from mematte_d2.modeling import DetailCapture


def small_decoder(in_chans: int = 8, dtype: torch.dtype = torch.float32) -> DetailCapture:
    """8-channel decoder in eval mode with non-trivial BatchNorm statistics, so that zero
    padding and tile borders show in its output."""
    decoder = DetailCapture(in_chans, convstream_out=(8, 8, 8), fusion_out=(8, 8, 8, 8))
    decoder = decoder.to(dtype).eval()
    with torch.no_grad():
        for module in decoder.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return decoder
