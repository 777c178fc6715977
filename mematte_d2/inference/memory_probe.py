"""Measure the peak resident memory of single predictions and set it beside the estimate.

    python -m mematte_d2.inference.memory_probe --config-file configs/common/models/mematte_s.py \\
        --sizes 512x512,1024x1024 --max-tokens 1000 [--tile-size 512] [opts key=value]

Each measurement runs in a fresh Python process (peak RSS only ever grows within a process),
with a randomly initialised model and a random image whose trimap is all unknown.
"""

import argparse
import json
import subprocess
import sys

from mematte_d2.config import ConfigError, load_config

from .memory import format_bytes


def _measure_here(config_file: str, opts: list[str], height: int, width: int,
                  max_tokens: int | None, tile_size: int | None) -> dict:
    import numpy as np
    import torch

    from mematte_d2.utils.process_memory import peak_rss_bytes

    from .memory import estimate_peak_memory, model_dims
    from .predictor import MattingPredictor

    torch.manual_seed(0)
    cfg = load_config(config_file, opts)
    predictor = MattingPredictor(cfg, device="cpu", max_memory=None)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    trimap = np.full((height, width), 128, np.uint8)
    before = peak_rss_bytes()
    result = predictor.predict(image, trimap, max_tokens=max_tokens, tile_size=tile_size)
    tile = predictor.engine.tile_size if tile_size is None else tile_size
    routed = result.routing.flatten(1).sum(1) if result.routing.numel() else torch.zeros(1)
    estimate = estimate_peak_memory(height, width, model_dims(predictor.model), max_tokens, tile)
    return {
        "size": f"{height}x{width}",
        "max_tokens": max_tokens,
        "max_routed": int(routed.max().item()),
        "tile_size": tile,
        "rss_before_call": before,
        "peak_rss": peak_rss_bytes(),
        "estimate": estimate.total,
        "estimate_fixed": estimate.fixed,
    }


def measure(config_file: str, opts: list[str], height: int, width: int,
            max_tokens: int | None = None, tile_size: int | None = None) -> dict:
    """Run one prediction in a fresh interpreter and return its peak RSS and the estimate."""
    args = [sys.executable, "-m", "mematte_d2.inference.memory_probe",
            "--config-file", config_file, "--child", "--sizes", f"{height}x{width}"]
    if max_tokens is not None:
        args += ["--max-tokens", str(max_tokens)]
    if tile_size is not None:
        args += ["--tile-size", str(tile_size)]
    out = subprocess.run(args + opts, capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"memory probe failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config-file", required=True)
    p.add_argument("--sizes", default="512x512", help="comma-separated HxW list")
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--tile-size", type=int)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("opts", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    if args.child:
        (h, w), = sizes
        row = _measure_here(args.config_file, args.opts, h, w, args.max_tokens, args.tile_size)
        print(json.dumps(row))
        return 0
    try:  # a bad config or override is refused here, not once per child
        load_config(args.config_file, args.opts)
    except (ConfigError, FileNotFoundError) as e:
        p.exit(2, f"error: {e}\n")
    header = ("size", "cap", "routed", "tile", "RSS before", "peak RSS", "estimate")
    print("{:>11} {:>6} {:>6} {:>5} {:>10} {:>10} {:>10} ratio".format(*header))
    for h, w in sizes:
        r = measure(args.config_file, args.opts, h, w, args.max_tokens, args.tile_size)
        print(f"{r['size']:>11} {str(r['max_tokens']):>6} {r['max_routed']:>6} "
              f"{r['tile_size']:>5} {format_bytes(r['rss_before_call']):>10} "
              f"{format_bytes(r['peak_rss']):>10} "
              f"{format_bytes(r['estimate']):>10} {r['estimate'] / r['peak_rss']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
