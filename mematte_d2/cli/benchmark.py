"""Latency and peak memory of MEMatte against ViTMatte across resolutions, and of training.

    python tools/benchmark.py                          # inference, defaults below
    python tools/benchmark.py --models mematte_s --sizes 1024 2048 --repeats 5
    python tools/benchmark.py --models mematte_s --sizes 2048 --trimaps disc outline \
        --tile-skipping on off                         # decoder tiles skipped or not
    python tools/benchmark.py --train                  # training step benchmark
    python tools/benchmark.py --models mematte_s model.backbone.depth=6   # config overrides

Inference: batch 1, random weights (fixed seed, the same for every run of a model), random
image, fixed keep ratio per routed block (default 0.25). Every case runs in a fresh process:
a warm-up call, then the median of ``--repeats`` timed calls; CPU peak memory is that process's
peak resident set (VmHWM), CUDA peak memory the peak allocation. ViTMatte runs twice: with
this project's fused attention (vitmatte_s) and with the released implementation's dense
N x N attention (vitmatte_s_dense). A case whose estimated peak exceeds --max-memory is
reported as skipped instead of being run. The trimap is a disc (19% unknown) or a thin band
along a procedural subject's outline (5-15% unknown); the table gives the decoder tiles of one
call and their input area relative to the image. Training: forward, backward and AdamW step on a
random batch (default 2 x 512^2), MEMatte with and without its teacher.
Writes <output>/inference.{md,csv,png} or <output>/training.{md,csv}. Trailing ``key=value``
overrides apply to every model's config, as in the other programs.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import sys
import time
from pathlib import Path

import torch

from mematte_d2.benchmark.cases import (
    DTYPES,
    MODEL_NAMES,
    TRIMAPS,
    InferenceCase,
    TrainCase,
    load_model_config,
)
from mematte_d2.benchmark.report import (
    INFERENCE_COLUMNS,
    TRAIN_COLUMNS,
    inference_markdown,
    inference_row,
    plot_inference,
    train_markdown,
    train_row,
    write_csv,
)
from mematte_d2.benchmark.runner import run_case
from mematte_d2.inference.memory import MemoryBudget

DEFAULT_MODELS = ("mematte_s", "vitmatte_s", "vitmatte_s_dense")
DEFAULT_SIZES = (512, 1024, 2048, 4096)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mematte-benchmark", description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 1)[1],
    )
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                   help=f"model names ({', '.join(MODEL_NAMES)}) or config files")
    p.add_argument("--sizes", nargs="+", type=int, default=list(DEFAULT_SIZES),
                   help="square image sizes in pixels")
    p.add_argument("--repeats", type=int, default=3, help="timed runs after the warm-up")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                   help="CPU threads per case (default: all available)")
    p.add_argument("--keep-ratio", type=float, default=0.25,
                   help="share of tokens each routed block sends to global attention")
    p.add_argument("--tile-size", type=int,
                   help="decoder tile size (default: the config's; 0 = whole image at once)")
    p.add_argument("--trimaps", nargs="+", choices=TRIMAPS, default=["disc"],
                   help="trimap shapes: disc (19%% unknown) and/or outline (thin band, 5-15%%)")
    p.add_argument("--tile-skipping", nargs="+", choices=("on", "off"),
                   help="decode only around unknown pixels (on) or every tile (off); "
                        "default: the config's model.skip_known_tiles")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--dtypes", nargs="+", choices=DTYPES,
                   help="default: fp32 on CPU; fp32 fp16 bf16 (autocast) on CUDA")
    p.add_argument("--timeout", type=float, default=1800.0,
                   help="seconds after which a case is stopped and reported as timed out")
    p.add_argument("--max-case-seconds", type=float,
                   help="fewer timed runs (at least 1) when the warm-up shows the repeats would "
                        "take longer than this")
    p.add_argument("--max-memory", default="auto",
                   help="skip inference cases whose estimated peak memory exceeds this "
                        "(e.g. 20GB; auto = 80%% of the memory available when the case starts; "
                        "none = run everything)")
    p.add_argument("--skip", nargs="+", default=[], metavar="MODEL@SIZE",
                   help="cases not to run, reported as skipped (e.g. vitmatte_s@4096)")
    p.add_argument("--no-flops", action="store_true",
                   help="do not trace an extra call per inference case to count its GFLOPs")
    p.add_argument("--train", action="store_true",
                   help="benchmark training steps instead of inference")
    p.add_argument("--batch-size", type=int, default=2, help="training batch size")
    p.add_argument("--crop-size", type=int, default=512, help="training crop size")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and inputs")
    p.add_argument("--output", default="output/benchmark", help="output directory")
    p.add_argument("opts", nargs="*", metavar="KEY=VALUE",
                   help="config overrides applied to every model (after the options)")
    return p


_OVERRIDE = re.compile(r"[A-Za-z_][\w.]*=")


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parser.parse_args`` with the trailing ``key=value`` overrides taken as ``opts`` first,
    so that a list option before them (``--sizes 512 key=value``) does not swallow them."""
    argv = list(sys.argv[1:] if argv is None else argv)
    start = len(argv)
    while start and _OVERRIDE.match(argv[start - 1]):
        start -= 1
    args = parser.parse_args(argv[:start])
    args.opts = [*args.opts, *argv[start:]]
    return args


def _check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for model in args.models:
        try:
            load_model_config(model, args.opts)  # the model name, then the overrides
        except ValueError as e:
            p.error(str(e))
    if args.max_memory.lower() != "none":
        try:
            MemoryBudget(args.max_memory, torch.device("cpu"))
        except ValueError as e:
            p.error(f"--max-memory: {e}")
    if any(s <= 0 or s % 32 for s in args.sizes):
        p.error(f"--sizes must be positive multiples of 32, got {args.sizes}")
    if args.repeats < 1 or args.threads < 1:
        p.error("--repeats and --threads must be >= 1")
    if not 0.0 < args.keep_ratio <= 1.0:
        p.error(f"--keep-ratio must be in (0, 1], got {args.keep_ratio}")
    if args.tile_size is not None and args.tile_size < 0:
        p.error("--tile-size must be >= 0")
    for skip in args.skip:
        if "@" not in skip:
            p.error(f"--skip entries look like MODEL@SIZE, got {skip!r}")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available")


def _environment(args: argparse.Namespace, device: str) -> list[str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [
        f"- command: `{' '.join(shlex.quote(a) for a in sys.argv)}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}; torch {torch.__version__}; "
        f"device {device}; CPU {cpu} ({os.cpu_count()} logical CPUs), {args.threads} threads",
        f"- weights: random (seed {args.seed}); every case in a fresh process; "
        f"warm-up call + median of {args.repeats} timed calls",
    ]
    if hasattr(os, "getloadavg"):
        lines.append(f"- load average at start: {os.getloadavg()[0]:.2f}; the table gives it per "
                     f"case (a load above {args.threads} means other work competed for the CPUs "
                     "and latencies are inflated)")
    return lines


def _inference_cases(args: argparse.Namespace, device: str) -> list[InferenceCase]:
    dtypes = args.dtypes or (["fp32"] if device == "cpu" else list(DTYPES))
    skipping = [None] if args.tile_skipping is None else [s == "on" for s in args.tile_skipping]
    return [
        InferenceCase(model=model, size=size, device=device, dtype=dtype,
                      keep_ratio=args.keep_ratio, tile_size=args.tile_size,
                      skip_known_tiles=skip, trimap=trimap, threads=args.threads,
                      repeats=args.repeats, seed=args.seed, max_seconds=args.max_case_seconds,
                      count_flops=not args.no_flops, opts=list(args.opts))
        for model in args.models for size in args.sizes for dtype in dtypes
        for trimap in args.trimaps for skip in skipping
    ]


def _train_cases(args: argparse.Namespace, device: str) -> list[TrainCase]:
    cases = []
    for model in args.models:
        model_cfg = load_model_config(model, args.opts).model
        has_teacher = model_cfg.get("teacher_backbone", None) is not None
        for teacher in ((True, False) if has_teacher else (False,)):
            cases.append(TrainCase(model=model, teacher=teacher, batch_size=args.batch_size,
                                   crop_size=args.crop_size, device=device, threads=args.threads,
                                   repeats=args.repeats, seed=args.seed, opts=list(args.opts)))
    return cases


def run(args: argparse.Namespace) -> int:
    device = args.device if args.device != "auto" else (
        "cuda" if torch.cuda.is_available() else "cpu")
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    header = _environment(args, device)
    rows: list[dict] = []
    if args.train:
        cases, to_row, stem = _train_cases(args, device), train_row, "training"
        header.append(f"- training step: forward + backward + AdamW by the trainer's step runner "
                      f"with the recipe's AMP (configs/common/train.py), batch "
                      f"{args.batch_size} x {args.crop_size}^2 random crops on the host; "
                      "routing as in training")
    else:
        cases, to_row, stem = _inference_cases(args, device), inference_row, "inference"
        tile = "the config's" if args.tile_size is None else args.tile_size
        header.append(f"- batch 1; keep ratio {args.keep_ratio} per routed block "
                      f"(`RoutingBudget(keep_ratio=...)`); decoder tile size {tile}")
    skipped = set(args.skip)
    # the child reads the budget: this process never starts CUDA (a context costs ~0.5 GB of
    # the GPU the measured child runs on)
    budget = None if args.train or args.max_memory.lower() == "none" else args.max_memory
    for i, case in enumerate(cases, 1):
        name = f"{case.model}@{getattr(case, 'size', '')}"
        if name in skipped:
            result = {"status": "skipped (--skip)"}
        else:
            if budget is not None:
                case.max_memory = budget
            result = run_case(case, timeout=args.timeout)
        rows.append(to_row(case, result))
        _report_progress(i, len(cases), rows[-1])
        _write(rows, out_dir, stem, header, args.train)
    print(f"wrote {out_dir / stem}.md and .csv" + ("" if args.train else " and .png"))
    return 0


def _report_progress(i: int, n: int, row: dict) -> None:
    what = row["model"] + (f" {row['size']}^2 {row['dtype']} {row['trimap']} trimap, skip "
                           f"{row['skip_known_tiles']}, {row['decoder_calls']} decoder calls"
                           if "size" in row else f" teacher={row['teacher']}")
    speed = (f"{row['latency_s']} s" if "latency_s" in row else f"{row['iters_per_s']} it/s")
    print(f"[{i}/{n}] {what}: {row['status']}, {speed}, peak {row['peak_memory_gb']} GB",
          flush=True)


def _write(rows: list[dict], out_dir: Path, stem: str, header: list[str], train: bool) -> None:
    table = train_markdown(rows) if train else inference_markdown(rows)
    title = "Training benchmark" if train else "Inference benchmark"
    (out_dir / f"{stem}.md").write_text(f"# {title}\n\n" + "\n".join(header) + f"\n\n{table}\n")
    write_csv(rows, out_dir / f"{stem}.csv", TRAIN_COLUMNS if train else INFERENCE_COLUMNS)
    if not train:
        plot_inference(rows, out_dir / f"{stem}.png", title=f"{title} ({rows[0]['device']})")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_args(parser, argv)
    _check_args(parser, args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
