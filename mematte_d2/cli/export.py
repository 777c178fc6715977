"""Export a MEMatte model with a fixed token budget per routed block to ONNX.

    python tools/export.py --config-file configs/Composition-1K/mematte_s_topk0.25.py \\
        --weights mematte_s.pth --format onnx --output mematte_s.onnx --keep-ratio 0.25

Inputs of the exported graph: ``image`` float32 [1, 3, H, W] (RGB, 0-255) and ``trimap``
float32 [1, 1, H, W] (0 / 128 / 255); output ``alpha`` float32 [1, 1, H, W] in [0, 1] with the
known regions set from the trimap; H and W are dynamic. Every routed block keeps exactly K
tokens: ``--max-tokens K``, or ``--keep-ratio R`` for ``ceil(R * N)`` of an image's N tokens.
The decoder runs on the whole image (no tiling). ``--benchmark 1024 2048`` then times the file
in onnxruntime against the eager model on random square images of those sizes.
Exit code 2 for a bad command line, configuration or weights file.
"""

import argparse
import sys
from pathlib import Path

FORMATS = ("onnx",)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mematte-export", description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 1)[1],
    )
    p.add_argument("--config-file", help="LazyConfig file with a `model` node, or a shipped "
                   "config name (default: the recipe of a model-zoo --weights name)")
    p.add_argument("--weights", help="checkpoint file, file:// URL or model-zoo name to load "
                   "(default: the config's initialisation)")
    p.add_argument("--format", choices=FORMATS, default="onnx", help="export format")
    p.add_argument("--output", required=True, help="file to write, e.g. mematte_s.onnx")
    p.add_argument("--max-tokens", type=int, help="tokens each routed block keeps per image")
    p.add_argument("--keep-ratio", type=float, help="share of tokens each routed block keeps")
    p.add_argument("--benchmark", type=int, nargs="+", metavar="SIZE",
                   help="time onnxruntime against eager on random SIZE x SIZE images")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per benchmark size")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads of both runtimes in the benchmark (default 1)")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, key=value")
    return p


def check_args(args: argparse.Namespace) -> None:
    """Raise a ValueError / FileNotFoundError naming the bad option (before any model work)."""
    from mematte_d2.cli.common import check_weights_option
    from mematte_d2.export.graph import check_budget
    from mematte_d2.export.onnx_export import require
    from mematte_d2.model_zoo import resolve_config_file

    try:
        check_budget(args.max_tokens, args.keep_ratio)
    except ValueError as e:
        raise ValueError(f"--max-tokens / --keep-ratio: {e}") from None
    args.config_file = resolve_config_file(args.config_file, args.weights)
    if args.weights:
        check_weights_option(args.weights)
    output = Path(args.output)
    if output.is_dir():
        raise ValueError(f"--output {output} is a directory; give a file name")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"--output {output}: folder {output.parent} does not exist")
    if args.benchmark and min(args.benchmark) < 1:
        raise ValueError(f"--benchmark sizes must be positive, got {args.benchmark}")
    if args.repeats < 1 or args.threads < 1:
        raise ValueError("--repeats and --threads must be at least 1")
    require("onnx", "--format onnx")
    if args.benchmark:
        require("onnxruntime", "--benchmark")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_args(args)
    except (FileNotFoundError, ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    import torch

    from mematte_d2.checkpoint import CheckpointError
    from mematte_d2.config import ConfigError, load_config
    from mematte_d2.export import export_onnx, onnx_session
    from mematte_d2.export.latency import compare_latency, latency_markdown
    from mematte_d2.inference import MattingPredictor

    try:
        cfg = load_config(args.config_file, args.opts)
        predictor = MattingPredictor(cfg, args.weights, device="cpu", max_memory=None)
        path = export_onnx(predictor.model, args.output, args.max_tokens, args.keep_ratio)
    except (CheckpointError, ConfigError, OSError, ValueError, TypeError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    budget = (f"--max-tokens {args.max_tokens}" if args.max_tokens is not None
              else f"--keep-ratio {args.keep_ratio}")
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB, {budget})")
    if args.benchmark:
        torch.set_num_threads(args.threads)
        rows = compare_latency(
            predictor, onnx_session(path, args.threads), args.benchmark,
            args.max_tokens, args.keep_ratio, args.repeats,
        )
        print(latency_markdown(rows))
    return 0
