"""ONNX export of :class:`~mematte_d2.export.graph.FixedBudgetMatting` and running the result.

Uses torch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``), deprecated
since torch 2.9 but present and working in the pinned 2.14.1. The default, torch.export-based
path (``dynamo=True``) needs the ``onnxscript`` package, which is not a dependency, and would
meet the modeling code's Python branches on sizes (padding, chunking) as guards on symbolic H
and W; it was not tried. The tracer records the shape arithmetic as graph operations, and the
one data-dependent size, the token count K of each routed block, reaches ONNX ``TopK`` as a
tensor computed from the input's shape. Branches that only check shapes (true for any valid
input) become constants; the trace runs on a small example input, below every chunking
threshold of the eager code, so the graph processes whole tensors.

The graph: inputs ``image`` float32 ``[1, 3, H, W]`` (RGB, 0-255) and ``trimap`` float32
``[1, 1, H, W]`` (0 / 128 / 255), output ``alpha`` float32 ``[1, 1, H, W]``; H and W dynamic.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from mematte_d2.modeling import MEMatte

from .graph import FixedBudgetMatting

INPUT_NAMES = ("image", "trimap")
OUTPUT_NAME = "alpha"
OPSET_VERSION = 17
# Trace input size: not a multiple of the padding or window sizes, small enough that no
# size-dependent chunking of the eager code is taken.
EXAMPLE_SIZE = (100, 140)


def example_inputs(height: int, width: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A random RGB image [1, 3, H, W] (0-255) and a trimap [1, 1, H, W] with all three codes."""
    generator = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (1, 3, height, width), generator=generator).float()
    trimap = torch.full((1, 1, height, width), 128.0)
    trimap[..., : height // 4, :] = 0.0
    trimap[..., height - height // 4 :, :] = 255.0
    return image, trimap


def export_onnx(
    model: MEMatte,
    output: str | Path,
    max_tokens: int | None = None,
    keep_ratio: float | None = None,
    opset_version: int = OPSET_VERSION,
) -> Path:
    """Write ``model`` (eval mode, on the CPU) with a fixed token budget to ``output``."""
    graph = FixedBudgetMatting(model, max_tokens=max_tokens, keep_ratio=keep_ratio).eval()
    axes = {2: "height", 3: "width"}
    output = Path(output)
    with warnings.catch_warnings(), torch.no_grad():
        # Shape checks of the modeling code become constants (see the module docstring); the
        # exporter's deprecation notices are about itself (see docs/export.md).
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            graph,
            example_inputs(*EXAMPLE_SIZE),
            str(output),
            dynamo=False,
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            opset_version=opset_version,
            dynamic_axes={name: axes for name in (*INPUT_NAMES, OUTPUT_NAME)},
        )
    _declare_output_shape(output)
    return output


def _declare_output_shape(path: Path) -> None:
    """Write ``alpha``'s full shape [1, 1, height, width] into the file (the exporter's shape
    inference loses the batch size on the way through top-k, gather and scatter)."""
    import onnx

    model = onnx.load(str(path))
    dims = next(v for v in model.graph.output if v.name == OUTPUT_NAME).type.tensor_type.shape.dim
    for dim, size in zip(dims, (1, 1, "height", "width")):
        if isinstance(size, int):
            dim.dim_value = size
        else:
            dim.dim_param = size
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def onnx_session(path: str | Path, threads: int | None = None):
    """An onnxruntime CPU inference session of an exported model (``threads``: intra-op)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(session, image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """HxW float32 alpha from an HxWx3 uint8 RGB image and an HxW uint8 trimap."""
    feeds = {
        "image": np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32),
        "trimap": np.ascontiguousarray(trimap[None, None], dtype=np.float32),
    }
    return session.run([OUTPUT_NAME], feeds)[0][0, 0]
