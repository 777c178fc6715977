"""Alpha mattes (and optional cutouts, composites, routing overlays) for files or folders.

    python tools/predict.py --config-file configs/Composition-1K/mematte_s_topk0.25.py \\
        --weights mematte_s.pth --input photos/ --trimap trimaps/ --output out/ --cutout

Instead of trimaps, --mask DIR (or a file, or "alpha" for each RGBA input's own alpha channel)
gives coarse masks from which a trimap is derived (mematte_d2.utils.trimap_from_mask).
Trimap values other than 0 / 128 / 255 (anti-aliased drawing) are snapped to these codes, one
line per file saying how many pixels; --strict-trimap refuses such trimaps instead.

Writes <stem>_alpha.png (8-bit, or 16-bit with --alpha-16bit), and on request
<stem>_trimap.png (the trimap used), <stem>_cutout.png (RGBA with estimated foreground
colours), <stem>_composite.png and <stem>_routing.png, each written to a temporary file then
renamed (never through a symbolic link). An image that fails for any reason (unreadable,
above --max-pixels, trimap or mask missing, of another size, trimap not 0/128/255 with
--strict-trimap, non-finite prediction, a write error) is reported by name and the others are
processed; the exit code is then 1. Bad options, configuration or weights stop the command
before any image is read, with exit code 2.

A data set on several GPUs, CPU processes or machines (docs/inference.md): ``--num-gpus N
[--num-machines M --machine-rank R --dist-url tcp://HOST:PORT]`` starts the ranks with the
training's launch; rank r mattes images r, r + N*M, ... of the sorted list
(mematte_d2.inference.batch) and rank 0 prints one summary. ``--skip-existing`` passes over
images whose outputs all exist, so a stopped run resumes where it was.
"""

import argparse
import os
import sys
import time
from datetime import timedelta
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mematte_d2.checkpoint import CheckpointError
from mematte_d2.cli.common import OneLineErrorParser, check_writable, checked, tolerant_output
from mematte_d2.inference.batch import gather_reports, run_shard, shard, summarize
from mematte_d2.inference.file_pairs import Job, list_images, pair_with_trimaps
from mematte_d2.inference.memory import (
    AUTO_BUDGET_FRACTION,
    MemoryBudgetError,
    available_memory,
    format_bytes,
)
from mematte_d2.inference.options import (
    MIN_MEMORY_BUDGET,
    TILE_STRIDE,
    check_band_radius,
    check_max_memory,
    check_max_pixels,
    check_tile_size,
    check_token_cap,
)
from mematte_d2.inference.render import (
    composite,
    estimate_foreground,
    make_cutout,
    routing_overlay,
)
from mematte_d2.modeling.routing import check_keep_ratio
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
from mematte_d2.utils.trimap import codes_on_255_scale, snap_trimap, trimap_codes
from mematte_d2.utils.trimap_from_mask import (
    DEFAULT_BAND_FRACTION,
    check_band_fraction,
    check_threshold,
    describe_trivial_trimap,
    trimap_from_mask,
)

# How long a rank may wait in a collective (the final gather waits for the slowest rank, which
# --skip-existing can leave with most of the work); a dead rank is found by the launch's
# heartbeat long before.
COLLECTIVE_TIMEOUT = timedelta(hours=24)


def _positive(value: int) -> int:
    if value < 1:
        raise ValueError(f"must be >= 1, got {value}")
    return value


def _non_negative(value: int) -> int:
    if value < 0:
        raise ValueError(f"must be >= 0, got {value}")
    return value


def check_output_dir(output: str) -> Path:
    """The --output folder, created; a ValueError naming it when it cannot hold new files."""
    out_dir = Path(output)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--output {output}: exists and is not a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--output {output}: cannot write there ({e.strerror or e})") from e
    check_writable(out_dir, f"--output {output}")
    return out_dir


def build_parser() -> argparse.ArgumentParser:
    p = OneLineErrorParser(
        prog="mematte-predict",
        description="Predict alpha mattes from images and trimaps with a MEMatte/ViTMatte model.",
    )
    p.add_argument("--config-file", help="LazyConfig file with a `model` node, or a shipped "
                   "config name (default: the recipe of a model-zoo --weights name)")
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
    p.add_argument("--mask-erode", type=checked(int, partial(check_band_radius, name="erode")),
                   help="pixels of the unknown band inside the mask's edge "
                        "(default: --mask-band of the shorter side)")
    p.add_argument("--mask-dilate", type=checked(int, partial(check_band_radius, name="dilate")),
                   help="pixels of the unknown band outside the mask's edge (default: as erode)")
    p.add_argument("--mask-band", type=checked(float, check_band_fraction),
                   default=DEFAULT_BAND_FRACTION,
                   help="default band half-width as a fraction of the image's shorter side "
                        f"(default {DEFAULT_BAND_FRACTION})")
    p.add_argument("--save-trimap", action="store_true", help="write the trimap used")
    p.add_argument("--output", required=True, help="output directory (created if missing)")
    p.add_argument("--max-tokens", type=checked(int, check_token_cap),
                   help="cap of tokens per routed block and image (>= 1)")
    p.add_argument("--keep-ratio", type=checked(float, check_keep_ratio),
                   help="share of tokens each routed block keeps, in (0, 1]")
    p.add_argument(
        "--max-memory",
        default="auto",
        type=checked(str, check_max_memory),
        help="memory budget choosing the token cap, e.g. 8GB (default auto: 80%% of free memory)",
    )
    p.add_argument("--tile-size", type=checked(int, check_tile_size),
                   help="decoder tile size in pixels (0 = whole image)")
    p.add_argument("--max-pixels", type=checked(int, check_max_pixels), default=MAX_PIXELS,
                   help="refuse images whose header claims more pixels, before decoding "
                        f"(default {MAX_PIXELS})")
    p.add_argument("--strict-trimap", action="store_true",
                   help="refuse trimaps with values other than 0/128/255 instead of snapping "
                        "them (< 85 background, >= 170 foreground, else unknown)")
    p.add_argument("--alpha-16bit", action="store_true", help="write 16-bit alpha and cutout PNGs")
    p.add_argument("--cutout", action="store_true", help="write an RGBA cutout")
    p.add_argument("--background", help="image to composite the foreground onto")
    p.add_argument("--routing-overlay", action="store_true", help="write the routing map overlay")
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                   help="fp32 (default), or autocast to bf16 (CPU/CUDA) or fp16 (CUDA only)")
    p.add_argument("--skip-existing", action="store_true",
                   help="pass over images whose outputs all exist (resume a stopped run)")
    scale = p.add_argument_group("a data set on several processes or machines (see docs)")
    scale.add_argument("--num-gpus", type=checked(int, _positive), default=1,
                       help="processes on this machine, one per GPU (or CPU processes with "
                            "--device cpu); the sorted images are split between all of them")
    scale.add_argument("--num-machines", type=checked(int, _positive), default=1)
    scale.add_argument("--machine-rank", type=checked(int, _non_negative), default=0,
                       help="this machine's index, 0 .. --num-machines - 1")
    scale.add_argument("--dist-url", default="auto",
                       help="tcp://HOST:PORT of machine 0 (needed with several machines)")
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
            codes = trimap_from_mask(source, threshold=args.mask_threshold,
                                     soft_low=args.mask_soft_low, erode=args.mask_erode,
                                     dilate=args.mask_dilate, band_fraction=args.mask_band)
            note = describe_trivial_trimap(codes)
            note = note and f"warning: {name}: {note}"
        elif args.strict_trimap:
            codes, note = trimap_codes(source, snap=False), ""
        else:
            codes, snapped = snap_trimap(codes_on_255_scale(source))
            note = snapped and (f"{name}: {snapped} pixels snapped to 0/128/255 (< 85 background,"
                                " >= 170 foreground, else unknown; --strict-trimap refuses)")
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: {e}") from e
    if note:
        tqdm.write(note, file=sys.stderr)
    return codes


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


def _jobs(args) -> tuple[list[Job], Path, np.ndarray | None]:
    """The checked inputs, then the created --output folder and the background: all before
    any model is built. Raises FileNotFoundError / ValueError / ImageReadError."""
    if args.mask_soft_low is not None and args.mask_soft_low >= args.mask_threshold:
        raise ValueError(f"--mask-soft-low {args.mask_soft_low} must be below "
                         f"--mask-threshold {args.mask_threshold}")
    images, passed_over = list_images(args.input, skip_outputs_in=Path(args.output))
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
    background01 = (
        to_float01(read_image(args.background, args.max_pixels)) if args.background else None
    )
    out_dir = check_output_dir(args.output)
    protected = {p.resolve() for job in jobs for p in (job.image, job.trimap) if p}
    if args.background:
        protected.add(Path(args.background).resolve())
    _check_outputs(jobs, out_dir, args, protected)
    return jobs, out_dir, background01


def _predictor(args, device: str | None, max_memory: str | int):
    """The model of --config-file / --weights, with the options checked against it."""
    from mematte_d2.config import load_config
    from mematte_d2.inference.predictor import MattingPredictor
    from mematte_d2.model_zoo import resolve_config_file

    cfg = load_config(resolve_config_file(args.config_file, args.weights), args.opts)
    predictor = MattingPredictor(cfg, args.weights, device=device, max_memory=max_memory,
                                 precision=args.precision)
    context = getattr(predictor.model, "tile_context", 0)
    if args.tile_size and args.tile_size < context:
        raise ValueError(f"--tile-size {args.tile_size} is smaller than the model's tile "
                         f"context of {context} pixels")
    if max_memory != "auto":
        try:  # the smallest image: a budget that does not even fit it fits none
            predictor.token_cap(TILE_STRIDE, TILE_STRIDE, args.tile_size)
        except MemoryBudgetError as e:
            raise ValueError(f"--max-memory {format_bytes(max_memory)} fits no image: "
                             f"{e}") from e
    return predictor


def _rank_main(args, jobs: list[Job], out_dir: Path, background01, status=None) -> int:
    """One rank of the run (the only one without --num-gpus): build the model, matte this
    rank's share of `jobs`, gather every rank's report; rank 0 prints the summary. Returns
    (and, in a launched process, stores in `status`) 2 if any rank could not set up, 1 if
    any file failed, else 0."""
    import torch
    from detectron2.utils import comm

    tolerant_output()
    rank, world = comm.get_rank(), comm.get_world_size()
    device, max_memory = args.device, args.max_memory
    if world > 1 and _device_type(args) == "cuda":
        device = f"cuda:{comm.get_local_rank()}"
    elif world > 1:  # CPU processes share this machine's cores and memory
        local = comm.get_local_size()
        if "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))
        if max_memory == "auto":
            share = AUTO_BUDGET_FRACTION * available_memory(torch.device("cpu")) / local
            max_memory = max(MIN_MEMORY_BUDGET, int(share))
    predictor, setup_error = None, None
    try:
        predictor = _predictor(args, device, max_memory)
    except (CheckpointError, FileNotFoundError, ValueError, KeyError) as e:
        setup_error = str(e)
    ranks_of: dict[str, list[str]] = {}
    for r, error in enumerate(comm.all_gather(setup_error)):
        if error:
            ranks_of.setdefault(error, []).append(str(r))
    if ranks_of:
        if rank == 0:
            for error, ranks in ranks_of.items():
                where = f" (rank {', '.join(ranks)})" if world > 1 else ""
                print(f"error: {error}{where}", file=sys.stderr)
        code = 2
    else:
        if rank == 0 and predictor.memory_budget is not None:
            print(f"memory budget: {format_bytes(predictor.memory_budget.bytes())}")
        report = run_shard(
            shard(jobs, rank, world),
            partial(_process, predictor=predictor, out_dir=out_dir, args=args,
                    background01=background01),
            lambda job: list(_output_paths(job, out_dir, args).values()),
            skip_existing=args.skip_existing, rank=rank,
        )
        reports = gather_reports(report)
        if rank == 0:
            out, err = summarize(reports, out_dir)
            print(out)
            if err:
                print(err, file=sys.stderr)
        code = 1 if any(r.failures for r in reports) else 0
    if status is not None:  # every rank has the same code: it is computed from gathered data
        status.value = code
    return code


def _device_type(args) -> str:
    import torch

    if args.device:
        return args.device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _lost_rank(e: Exception, args) -> str:
    """One line naming the rank of a launched process that died or raised."""
    rank = args.machine_rank * args.num_gpus + e.error_index
    last = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
    return f"rank {rank} (pid {e.error_pid}) stopped the run: {last}"


def main(argv: list[str] | None = None) -> int:
    tolerant_output()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.machine_rank >= args.num_machines:
        parser.error(f"--machine-rank {args.machine_rank} must be below --num-machines "
                     f"{args.num_machines}")
    if args.num_machines > 1 and args.dist_url == "auto":
        parser.error("--num-machines > 1 needs --dist-url tcp://HOST:PORT (machine 0's)")
    try:
        jobs, out_dir, background01 = _jobs(args)
    except (FileNotFoundError, ValueError, ImageReadError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda given but CUDA is not available", file=sys.stderr)
        return 2
    if args.num_gpus * args.num_machines == 1:
        return _rank_main(args, jobs, out_dir, background01)

    import torch.multiprocessing as mp
    from torch.multiprocessing.spawn import ProcessException

    from mematte_d2.utils.distributed import launch

    status = mp.get_context("spawn").RawValue("i", 0)  # no lock: a killed rank leaks none
    try:
        launch(_rank_main, args.num_gpus, device_type=_device_type(args),
               num_machines=args.num_machines, machine_rank=args.machine_rank,
               dist_url=args.dist_url, args=(args, jobs, out_dir, background01, status),
               timeout=COLLECTIVE_TIMEOUT)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ProcessException as e:
        print(f"error: {_lost_rank(e, args)}", file=sys.stderr)
        return 1
    return status.value


if __name__ == "__main__":
    sys.exit(main())
