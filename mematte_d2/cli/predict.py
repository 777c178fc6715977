"""Alpha mattes (and optional cutouts, composites, routing overlays) for files or folders.

    python tools/predict.py --config-file configs/Composition-1K/mematte_s_topk0.25.py \\
        --weights mematte_s.pth --input photos/ --trimap trimaps/ --output out/ --cutout

Instead of trimaps, --mask DIR (or a file, or "alpha" for each RGBA input's own alpha channel)
gives coarse masks from which a trimap is derived (mematte_d2.utils.trimap_from_mask).

Writes <stem>_alpha.png (8-bit, or 16-bit with --alpha-16bit), and on request
<stem>_trimap.png (the trimap used), <stem>_cutout.png (RGBA with estimated foreground
colours), <stem>_composite.png and <stem>_routing.png, each written to a temporary file then
renamed (never through a symbolic link). An image that fails for any reason (unreadable,
above --max-pixels, trimap or mask missing, of another size, trimap not 0/128/255 without
--snap-trimap, non-finite prediction, a write error) is reported by name and the others are
processed; the exit code is then 1. Bad options, configuration or weights stop the command
before any image is read, with exit code 2.
"""

import argparse
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mematte_d2.checkpoint import CheckpointError
from mematte_d2.cli.common import OneLineErrorParser, checked, describe_error
from mematte_d2.inference.inputs import Job, list_images, pair_with_trimaps
from mematte_d2.inference.memory import format_bytes, parse_memory_size
from mematte_d2.inference.options import check_max_pixels, check_tile_size
from mematte_d2.inference.render import (
    composite,
    estimate_foreground,
    make_cutout,
    routing_overlay,
)
from mematte_d2.modeling.routing import check_keep_ratio, check_max_tokens
from mematte_d2.utils.image_io import (
    MAX_PIXELS,
    ImageReadError,
    alpha_to_png_array,
    read_alpha_channel,
    read_image,
    read_mask,
    read_trimap,
    to_float01,
    to_uint8,
    write_png,
)
from mematte_d2.utils.trimap import trimap_codes
from mematte_d2.utils.trimap_from_mask import (
    DEFAULT_BAND_FRACTION,
    check_band_fraction,
    check_radius,
    check_threshold,
    trimap_from_mask,
)


def check_output_dir(output: str) -> Path:
    """The --output folder, created; a ValueError naming it when it cannot hold new files."""
    out_dir = Path(output)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--output {output}: exists and is not a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as e:
        raise ValueError(f"--output {output}: cannot write there ({e.strerror or e})") from e
    return out_dir


def build_parser() -> argparse.ArgumentParser:
    p = OneLineErrorParser(
        prog="mematte-predict",
        description="Predict alpha mattes from images and trimaps with a MEMatte/ViTMatte model.",
    )
    p.add_argument("--config-file", required=True, help="LazyConfig file with a `model` node")
    p.add_argument("--weights", help="checkpoint file or model-zoo name "
                                     "(default: the config's initialisation)")
    p.add_argument("--input", required=True, help="image file, directory or glob (quote it)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--trimap", help="trimap file, or directory matched by stem")
    source.add_argument("--mask", help="coarse mask file, or directory matched by stem, or "
                                       "'alpha' for each input's own alpha channel; a trimap is "
                                       "derived from it (see --mask-*)")
    p.add_argument("--mask-threshold", default=0.5,
                   type=checked(float, partial(check_threshold, name="mask threshold")),
                   help="mask values >= this (0-1 scale) are foreground (default 0.5)")
    p.add_argument("--mask-soft-low",
                   type=checked(float, partial(check_threshold, name="soft low")),
                   help="soft masks: values <= this are background, values between this and "
                        "--mask-threshold unknown (default: below the threshold is background)")
    p.add_argument("--mask-erode", type=checked(int, partial(check_radius, name="erode")),
                   help="pixels of the unknown band inside the mask's edge "
                        "(default: --mask-band of the shorter side)")
    p.add_argument("--mask-dilate", type=checked(int, partial(check_radius, name="dilate")),
                   help="pixels of the unknown band outside the mask's edge (default: as erode)")
    p.add_argument("--mask-band", type=checked(float, check_band_fraction),
                   default=DEFAULT_BAND_FRACTION,
                   help="default band half-width as a fraction of the image's shorter side "
                        f"(default {DEFAULT_BAND_FRACTION})")
    p.add_argument("--save-trimap", action="store_true", help="write the trimap used")
    p.add_argument("--output", required=True, help="output directory (created if missing)")
    p.add_argument("--max-tokens", type=checked(int, check_max_tokens),
                   help="cap of tokens per routed block and image (>= 1)")
    p.add_argument("--keep-ratio", type=checked(float, check_keep_ratio),
                   help="share of tokens each routed block keeps, in (0, 1]")
    p.add_argument(
        "--max-memory",
        default="auto",
        help="memory budget choosing the token cap, e.g. 8GB (default auto: 80%% of free memory)",
    )
    p.add_argument("--tile-size", type=checked(int, check_tile_size),
                   help="decoder tile size in pixels (0 = whole image)")
    p.add_argument("--max-pixels", type=checked(int, check_max_pixels), default=MAX_PIXELS,
                   help="refuse images whose header claims more pixels, before decoding "
                        f"(default {MAX_PIXELS})")
    p.add_argument("--snap-trimap", action="store_true",
                   help="map trimap values to 0/128/255 (<85, >=170 known) instead of "
                        "refusing trimaps with other values")
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
    names = {"alpha": True, "trimap": args.save_trimap, "cutout": args.cutout,
             "composite": bool(args.background), "routing": args.routing_overlay}
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


def _trimap_of(job: Job, image_shape: tuple[int, ...], args) -> np.ndarray:
    """The job's 0/128/255 trimap: read from its file, or derived from its mask."""
    if args.mask == "alpha":
        source, name = read_alpha_channel(job.image, args.max_pixels), f"alpha of {job.image.name}"
    elif args.mask:
        source, name = read_mask(job.trimap, args.max_pixels), f"mask {job.trimap.name}"
    else:
        source, name = read_trimap(job.trimap, args.max_pixels), f"trimap {job.trimap.name}"
    if source.shape != image_shape[:2]:
        raise ValueError(f"{name} is {source.shape[0]}x{source.shape[1]}, "
                         f"image is {image_shape[0]}x{image_shape[1]} (HxW)")
    try:
        if args.mask:
            return trimap_from_mask(source, threshold=args.mask_threshold,
                                    soft_low=args.mask_soft_low, erode=args.mask_erode,
                                    dilate=args.mask_dilate, band_fraction=args.mask_band)
        return trimap_codes(source, snap=args.snap_trimap)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: {e}") from e


def _process(job: Job, predictor, out_dir: Path, args, background01) -> str:
    image = read_image(job.image, args.max_pixels)
    trimap = _trimap_of(job, image.shape, args)
    image_u8 = to_uint8(image)
    start = time.perf_counter()
    result = predictor.predict(
        image_u8, trimap, args.max_tokens, args.keep_ratio, args.tile_size
    )
    seconds = time.perf_counter() - start
    paths = _output_paths(job, out_dir, args)
    bits = 16 if args.alpha_16bit else 8
    write_png(paths["alpha"], alpha_to_png_array(result.alpha, bits))
    if "trimap" in paths:
        write_png(paths["trimap"], trimap)
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
        out_dir = check_output_dir(args.output)
        images, passed_over = list_images(args.input, skip_outputs_in=out_dir)
        for path, reason in passed_over:
            print(f"skipped {path}: {reason}", file=sys.stderr)
        if not images:
            raise FileNotFoundError(f"--input {args.input}: no image files found")
        if args.mask == "alpha":
            jobs = [Job(image, None) for image in images]
        elif args.mask:
            jobs = pair_with_trimaps(images, args.mask, kind="mask")
        else:
            jobs = pair_with_trimaps(images, args.trimap)
        if args.mask_soft_low is not None and args.mask_soft_low >= args.mask_threshold:
            raise ValueError(f"--mask-soft-low {args.mask_soft_low} must be below "
                             f"--mask-threshold {args.mask_threshold}")
        protected = {p.resolve() for job in jobs for p in (job.image, job.trimap) if p}
        if args.background:
            protected.add(Path(args.background).resolve())
        _check_outputs(jobs, out_dir, args, protected)
        background01 = (
            to_float01(read_image(args.background, args.max_pixels)) if args.background else None
        )
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
    failures: list[tuple[Path, str]] = []
    with tqdm(jobs, desc="matting", unit="img") as bar:
        for job in bar:
            if job.error:
                failures.append((job.image, job.error))
                bar.write(f"FAILED {job.image}: {job.error}")
                continue
            try:
                summary = _process(job, predictor, out_dir, args, background01)
            except Exception as e:  # one bad file must not stop the batch
                failures.append((job.image, describe_error(e)))
                bar.write(f"FAILED {job.image}: {describe_error(e)}")
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
