"""``mematte-app``: serve the matting web app for one model.

    mematte-app --config-file configs/Composition-1K/mematte_s_topk0.25.py \\
        --weights MEMatte-S-Composition-1K            # then open http://127.0.0.1:7860

Without --config-file and --weights it serves the model ``make demo`` trained
(output/demo/model_final.pth with its config.yaml), when that exists. It listens on 127.0.0.1
unless --host says otherwise, reads only what a browser uploads, and writes its downloads in a
temporary folder it removes on exit. Bad options, configuration or weights stop it before it
serves, with exit code 2.
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import sys
import tempfile
from pathlib import Path

from mematte_d2.cli.common import OneLineErrorParser, checked
from mematte_d2.inference.options import check_max_pixels
from mematte_d2.utils.image_io import MAX_PIXELS

# Where `make demo` (mematte_d2/cli/demo.py, --output default) leaves its trained model.
DEMO_OUTPUT = Path("output/demo")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineErrorParser(prog="mematte-app", description=__doc__.splitlines()[0].strip("`: "))
    p.add_argument("--config-file", help="LazyConfig file with a `model` node (default: the "
                                         f"demo's {DEMO_OUTPUT / 'config.yaml'})")
    p.add_argument("--weights", help="checkpoint file or model-zoo name (default: the demo's "
                                     f"{DEMO_OUTPUT / 'model_final.pth'})")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    p.add_argument("--max-pixels", type=checked(int, check_max_pixels), default=MAX_PIXELS,
                   help=f"largest upload read, width x height (default {MAX_PIXELS})")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, key=value")
    return p


def model_files(config_file: str | None, weights: str | None) -> tuple[str, str | None]:
    """(config, weights) to serve: the ones given (a config by file or shipped name, or the
    recipe of a model-zoo weights name), else the demo's trained model."""
    from mematte_d2.model_zoo import CHECKPOINTS, resolve_config_file

    if config_file or (weights and weights in CHECKPOINTS):
        try:
            return resolve_config_file(config_file, weights), weights
        except FileNotFoundError as e:
            raise ValueError(str(e)) from e
    demo_config, demo_weights = DEMO_OUTPUT / "config.yaml", DEMO_OUTPUT / "model_final.pth"
    if weights is None and demo_config.is_file() and demo_weights.is_file():
        return str(demo_config), str(demo_weights)
    raise ValueError(
        "--config-file is required (no trained demo model in "
        f"{DEMO_OUTPUT}/: run `make demo`, or give --config-file and --weights)"
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config_file, weights = model_files(args.config_file, args.weights)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    import torch

    from mematte_d2.checkpoint import CheckpointError
    from mematte_d2.config import load_config
    from mematte_d2.inference.predictor import MattingPredictor

    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda given but CUDA is not available", file=sys.stderr)
        return 2
    try:
        predictor = MattingPredictor(load_config(config_file, args.opts), weights,
                                     device=args.device)
    except (CheckpointError, FileNotFoundError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    from .handler import MattingApp
    from .ui import build_blocks, launch

    workdir = tempfile.mkdtemp(prefix="mematte-app-")
    atexit.register(shutil.rmtree, workdir, True)
    app = MattingApp(predictor, workdir, args.max_pixels)
    name = Path(config_file).name + (f" + {Path(weights).name}" if weights else "")
    print(f"serving {name} on {predictor.device} at http://{args.host}:{args.port}", flush=True)
    launch(build_blocks(app, name), args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
