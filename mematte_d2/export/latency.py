"""Latency of an exported model in onnxruntime against the eager model, same token budget."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from mematte_d2.inference import MattingPredictor

from .graph import eager_budget
from .onnx_export import example_inputs, run_onnx


@dataclass
class LatencyRow:
    """Median seconds per image of both runtimes at one square size, and their alpha gap."""

    size: int
    eager_seconds: float
    onnx_seconds: float
    max_abs_diff: float


def median_seconds(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    """Median wall time of ``repeats`` calls after one untimed warm-up call, and the output."""
    out = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def _eager_alpha(predictor: MattingPredictor, image, trimap, budget: dict) -> np.ndarray:
    return predictor.predict(image, trimap, tile_size=0, **budget).alpha


def compare_latency(
    predictor: MattingPredictor,
    session,
    sizes: Sequence[int],
    max_tokens: int | None = None,
    keep_ratio: float | None = None,
    repeats: int = 3,
) -> list[LatencyRow]:
    """Eager (``predictor``, whole-image decoding) against onnxruntime (``session``) on a
    random image and trimap per square size."""
    budget = eager_budget(max_tokens, keep_ratio)
    rows = []
    for size in sizes:
        image, trimap = (t[0].permute(1, 2, 0).numpy() for t in example_inputs(size, size))
        image, trimap = image.astype(np.uint8), trimap[..., 0].astype(np.uint8)
        eager, eager_alpha = median_seconds(
            partial(_eager_alpha, predictor, image, trimap, budget), repeats
        )
        onnx, onnx_alpha = median_seconds(partial(run_onnx, session, image, trimap), repeats)
        rows.append(LatencyRow(size, eager, onnx, float(np.abs(eager_alpha - onnx_alpha).max())))
    return rows


def latency_markdown(rows: Sequence[LatencyRow]) -> str:
    """A Markdown table of :func:`compare_latency` rows."""
    lines = [
        "| size | eager (s) | onnxruntime (s) | eager / onnxruntime | max abs alpha diff |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.size}x{r.size} | {r.eager_seconds:.2f} | {r.onnx_seconds:.2f} | "
            f"{r.eager_seconds / r.onnx_seconds:.2f}x | {r.max_abs_diff:.1e} |"
        )
    return "\n".join(lines)
