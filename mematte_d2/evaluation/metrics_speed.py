"""Time the four matting metrics on one synthetic image with a realistic matte.

    taskset -c 0 python -m mematte_d2.evaluation.metrics_speed [--size 2000] [--repeats 3]

The matte is a smooth random shape with soft edges, the trimap marks a wide unknown band
around them, and the prediction is the matte with smooth low-frequency errors. OpenCV runs
single-threaded; pin the process to one core with taskset for a one-core figure.
"""

import argparse
import json
import sys
import time

import cv2
import numpy as np

from .metrics import (
    check_inputs,
    compute_conn,
    compute_grad,
    compute_matting_metrics,
    compute_mse,
    compute_sad,
)


def _smooth_field(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


def synthetic_case(size: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pred, alpha, trimap) uint8 HxW: soft-edged random shape, wide unknown band, noisy pred."""
    rng = np.random.default_rng(seed)
    alpha01 = 0.5 + 0.5 * np.tanh(20.0 * _smooth_field(rng, size, 8))
    alpha = np.round(alpha01 * 255).astype(np.uint8)
    soft = ((alpha > 0) & (alpha < 255)).astype(np.uint8)
    band = cv2.dilate(soft, np.ones((3, 3), np.uint8), iterations=max(1, size // 100)) > 0
    trimap = np.where(alpha >= 128, 255, 0).astype(np.uint8)
    trimap[band] = 128
    noise = 0.08 * _smooth_field(rng, size, 64)
    pred = np.round(np.clip(alpha01 + noise, 0.0, 1.0) * 255).astype(np.uint8)
    check_inputs(pred, alpha, trimap)
    return pred, alpha, trimap


def time_metrics(size: int = 2000, repeats: int = 3, seed: int = 0) -> dict:
    """Best-of-`repeats` seconds of each metric and of compute_matting_metrics on one image."""
    pred, alpha, trimap = synthetic_case(size, seed)
    timed = {
        "SAD": compute_sad, "MSE": compute_mse, "Grad": compute_grad, "Conn": compute_conn,
        "all": compute_matting_metrics,
    }
    result = {"size": f"{size}x{size}", "unknown_fraction": float(np.mean(trimap == 128))}
    for name, fn in timed.items():
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            fn(pred, alpha, trimap)
            best = min(best, time.perf_counter() - start)
        result[f"{name}_seconds"] = round(best, 4)
    result["metrics"] = compute_matting_metrics(pred, alpha, trimap)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    cv2.setNumThreads(1)
    print(json.dumps(time_metrics(args.size, args.repeats, args.seed), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
