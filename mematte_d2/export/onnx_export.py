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

The file is written through the project's atomic writer: a symbolic link at the output is
replaced, never followed, and an earlier export stays whole until the new one is complete.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from mematte_d2.modeling import MEMatte
from mematte_d2.utils.atomic import atomic_write

from .graph import FixedBudgetMatting

logger = logging.getLogger(__name__)

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


def require(module: str, purpose: str) -> None:
    """Raise an ImportError naming the ``export`` extra when `module` is not installed."""
    if importlib.util.find_spec(module) is None:
        raise ImportError(f"{purpose} needs the {module} package, which is not installed: "
                          "pip install mematte_d2[export]")


def _on_cpu(model: MEMatte) -> MEMatte:
    """`model` itself when its parameters are on the CPU, else a CPU copy (logged): the trace
    runs on CPU example inputs, and moving the caller's model would change it under them."""
    devices = {p.device for p in model.parameters()} | {b.device for b in model.buffers()}
    if devices <= {torch.device("cpu")}:
        return model
    import copy

    logger.info("Exporting a CPU copy of the model (its weights are on %s)",
                ", ".join(sorted(map(str, devices))))
    return copy.deepcopy(model).cpu()


def export_onnx(
    model: MEMatte,
    output: str | Path,
    max_tokens: int | None = None,
    keep_ratio: float | None = None,
    opset_version: int = OPSET_VERSION,
) -> Path:
    """Write ``model`` with a fixed token budget to ``output`` (atomically).

    The export runs on the CPU: a model on another device is copied there first (logged).
    """
    require("onnx", "ONNX export")
    graph = FixedBudgetMatting(_on_cpu(model), max_tokens=max_tokens,
                               keep_ratio=keep_ratio).eval()
    axes = {2: "height", 3: "width"}
    output = Path(output)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # Shape checks of the modeling code become constants (see the module docstring); the
        # exporter's deprecation notices are about itself (see docs/export.md).
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            graph,
            example_inputs(*EXAMPLE_SIZE),
            buffer,
            dynamo=False,
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            opset_version=opset_version,
            dynamic_axes={name: axes for name in (*INPUT_NAMES, OUTPUT_NAME)},
        )
    serialized = _declare_output_shape(buffer.getvalue())
    atomic_write(output, lambda f: f.write(serialized))
    return output


def _declare_output_shape(serialized: bytes) -> bytes:
    """The model with ``alpha``'s full shape [1, 1, height, width] (the exporter's shape
    inference loses the batch size on the way through top-k, gather and scatter)."""
    import onnx

    model = onnx.load_from_string(serialized)
    dims = next(v for v in model.graph.output if v.name == OUTPUT_NAME).type.tensor_type.shape.dim
    for dim, size in zip(dims, (1, 1, "height", "width")):
        if isinstance(size, int):
            dim.dim_value = size
        else:
            dim.dim_param = size
    onnx.checker.check_model(model)
    return model.SerializeToString()


def onnx_session(path: str | Path, threads: int | None = None):
    """An onnxruntime CPU inference session of an exported model (``threads``: intra-op)."""
    require("onnxruntime", "Running an exported model")
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
