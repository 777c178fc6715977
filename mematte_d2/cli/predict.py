"""Alpha mattes (and optional cutouts, composites, routing overlays) for files or folders.

    python tools/predict.py --config-file configs/Composition-1K/mematte_s_topk0.25.py \\
        --weights mematte_s.pth --input photos/ --trimap trimaps/ --output out/ --cutout

Writes <stem>_alpha.png (8-bit, or 16-bit with --alpha-16bit), and on request
<stem>_cutout.png (RGBA with estimated foreground colours), <stem>_composite.png and
<stem>_routing.png. Images that cannot be read or whose trimap is missing or of another size
are reported by name and skipped; the exit code is 1 when any image failed (2 for a bad
configuration, weights file or command line).
"""

import argparse
import sys
import time
from pathlib import Path

from tqdm import tqdm

from mematte_d2.checkpoint import CheckpointError
from mematte_d2.inference.inputs import Job, list_images, pair_with_trimaps
from mematte_d2.inference.io import (
    ImageReadError,
    alpha_to_png_array,
    read_image,
    read_trimap,
    to_float01,
    to_uint8,
    write_png,
)
from mematte_d2.inference.memory import MemoryBudgetError, format_bytes, parse_memory_size
from mematte_d2.inference.render import (
    composite,
    estimate_foreground,
    make_cutout,
    routing_overlay,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mematte-predict",
        description="Predict alpha mattes from images and trimaps with a MEMatte/ViTMatte model.",
    )
    p.add_argument("--config-file", required=True, help="LazyConfig file with a `model` node")
    p.add_argument("--weights", help="checkpoint to load (default: the config's initialisation)")
    p.add_argument("--input", required=True, help="image file, directory or glob (quote it)")
    p.add_argument("--trimap", required=True, help="trimap file, or directory matched by stem")
    p.add_argument("--output", required=True, help="output directory (created if missing)")
    p.add_argument("--max-tokens", type=int, help="cap of tokens per routed block and image")
    p.add_argument("--keep-ratio", type=float, help="share of tokens each routed block keeps")
    p.add_argument(
        "--max-memory",
        default="auto",
        help="memory budget choosing the token cap, e.g. 8GB (default auto: 80%% of free memory)",
    )
    p.add_argument("--tile-size", type=int, help="decoder tile size in pixels (0 = whole image)")
    p.add_argument("--alpha-16bit", action="store_true", help="write 16-bit alpha and cutout PNGs")
    p.add_argument("--cutout", action="store_true", help="write an RGBA cutout")
    p.add_argument("--background", help="image to composite the foreground onto")
    p.add_argument("--routing-overlay", action="store_true", help="write the routing map overlay")
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                   help="fp32 (default), or autocast to bf16 (CPU/CUDA) or fp16 (CUDA only)")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, key=value")
    return p


def _output_paths(job: Job, out_dir: Path, args) -> dict[str, Path]:
    names = {"alpha": True, "cutout": args.cutout, "composite": bool(args.background),
             "routing": args.routing_overlay}
    return {kind: out_dir / f"{job.image.stem}_{kind}.png" for kind, on in names.items() if on}


def _check_outputs(jobs: list[Job], out_dir: Path, args, protected: set[Path]) -> None:
    """Mark jobs whose outputs would overwrite an input or another job's output."""
    claimed: dict[Path, Path] = {}
    for job in jobs:
        if job.error:
            continue
        for path in _output_paths(job, out_dir, args).values():
            resolved = path.resolve()
            if resolved in protected:
                job.error = f"output {path} would overwrite an input file; choose another --output"
            elif resolved in claimed:
                job.error = f"output {path} is also written for {claimed[resolved].name}"
            else:
                claimed[resolved] = job.image


def _process(job: Job, predictor, out_dir: Path, args, background01) -> str:
    image = read_image(job.image)
    trimap = read_trimap(job.trimap)
    if trimap.shape != image.shape[:2]:
        raise ValueError(
            f"trimap {job.trimap.name} is {trimap.shape[0]}x{trimap.shape[1]}, "
            f"image is {image.shape[0]}x{image.shape[1]} (HxW)"
        )
    image_u8 = to_uint8(image)
    start = time.perf_counter()
    result = predictor.predict(
        image_u8, trimap, args.max_tokens, args.keep_ratio, args.tile_size
    )
    seconds = time.perf_counter() - start
    paths = _output_paths(job, out_dir, args)
    bits = 16 if args.alpha_16bit else 8
    write_png(paths["alpha"], alpha_to_png_array(result.alpha, bits))
    if "cutout" in paths or "composite" in paths:
        fg = estimate_foreground(to_float01(image), result.alpha)
        if "cutout" in paths:
            write_png(paths["cutout"], make_cutout(fg, result.alpha, bits))
        if "composite" in paths:
            write_png(paths["composite"], composite(fg, result.alpha, background01))
    if "routing" in paths:
        write_png(paths["routing"], routing_overlay(image_u8, result.routing))
    return f"{seconds:.2f} s, {result.summary()}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        parse_memory_size(args.max_memory)
        out_dir = Path(args.output)
        images = list_images(args.input, skip_outputs_in=out_dir)
        if not images:
            raise FileNotFoundError(f"--input {args.input}: no image files found")
        jobs = pair_with_trimaps(images, args.trimap)
        protected = {p.resolve() for job in jobs for p in (job.image, job.trimap) if p}
        if args.background:
            protected.add(Path(args.background).resolve())
        _check_outputs(jobs, out_dir, args, protected)
        background01 = to_float01(read_image(args.background)) if args.background else None
    except (FileNotFoundError, ValueError, ImageReadError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    import torch

    from mematte_d2.config import load_config
    from mematte_d2.inference.predictor import MattingPredictor

    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda given but CUDA is not available", file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.config_file, args.opts)
        predictor = MattingPredictor(
            cfg, args.weights, device=args.device, max_memory=args.max_memory,
            precision=args.precision,
        )
    except (CheckpointError, FileNotFoundError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    if predictor.memory_budget is not None:
        print(f"memory budget: {format_bytes(predictor.memory_budget.bytes())}")
    out_dir.mkdir(parents=True, exist_ok=True)
    failures: list[tuple[Path, str]] = []
    with tqdm(jobs, desc="matting", unit="img") as bar:
        for job in bar:
            if job.error:
                failures.append((job.image, job.error))
                bar.write(f"FAILED {job.image}: {job.error}")
                continue
            try:
                summary = _process(job, predictor, out_dir, args, background01)
            except (ImageReadError, ValueError, TypeError, MemoryBudgetError, OSError) as e:
                failures.append((job.image, str(e)))
                bar.write(f"FAILED {job.image}: {e}")
                continue
            bar.set_postfix_str(summary)
            bar.write(f"{job.image.name}: {summary}")
    done = len(jobs) - len(failures)
    print(f"{done} of {len(jobs)} images written to {out_dir}")
    if failures:
        print(f"{len(failures)} failed:", file=sys.stderr)
        for path, reason in failures:
            print(f"  {path}: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
