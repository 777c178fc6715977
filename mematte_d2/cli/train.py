"""Train or evaluate from a LazyConfig with detectron2's command line and ``launch`` (DDP)."""

import os
import sys

from detectron2.engine import default_argument_parser
from detectron2.utils import comm

from mematte_d2.checkpoint import CheckpointError, load_matting_weights
from mematte_d2.config import ConfigError, load_config
from mematte_d2.engine import (
    MattingTrainer,
    bind_device,
    check_datasets,
    resolve_device,
    test_dataset_names,
)
from mematte_d2.engine.setup import check_determinism_settings, setup_job
from mematte_d2.model_zoo import resolve_config_file
from mematte_d2.utils.determinism import prepare_cublas_workspace
from mematte_d2.utils.distributed import launch, restart_count, torchrun_rank

EPILOG = """
Examples:
  Train MEMatte-S on Composition-1K with 2 GPUs from ViTMatte-S weights:
    %(prog)s --config-file configs/Composition-1K/mematte_s_topk0.25.py --num-gpus 2 \\
        train.init_checkpoint=/path/to/ViTMatte_S_Com.pth
  Evaluate a checkpoint:
    %(prog)s --config-file configs/Composition-1K/mematte_s_topk0.25.py --eval-only \\
        train.init_checkpoint=output/comp1k_mematte_s_topk0.25/model_final.pth
  With train.device=cpu (or without CUDA), --num-gpus N starts N CPU processes (gloo).
  Two machines (run on each, with its rank; HOST is machine 0's address):
    %(prog)s --config-file ... --num-gpus 2 --num-machines 2 --machine-rank 0|1 \
        --dist-url tcp://HOST:29500
  Under torchrun (as cluster launchers start jobs), without --num-gpus / --num-machines;
  with --max-restarts, a restarted job resumes from the last good checkpoint:
    torchrun --nnodes 2 --nproc-per-node 8 --max-restarts 3 --rdzv-backend c10d \
        --rdzv-endpoint HOST:29500 tools/lazyconfig_train_net.py --config-file ...
"""


def evaluate(cfg) -> dict:
    """``--eval-only``: build the model, load ``train.init_checkpoint`` strictly, evaluate."""
    if not cfg.train.get("init_checkpoint"):
        raise ValueError("--eval-only needs weights: add train.init_checkpoint=/path/to/model.pth")
    check_datasets(test_dataset_names(cfg))
    bind_device(resolve_device(cfg))
    model = MattingTrainer.build_model(cfg)
    load_matting_weights(model, cfg.train.init_checkpoint)
    model.eval()
    return MattingTrainer.test(cfg, model)


def main(args):
    cfg = load_config(args.config_file, args.opts)
    setup_job(cfg, args)
    if args.eval_only:
        return evaluate(cfg)
    trainer = MattingTrainer(cfg)
    # A job torchrun restarted (--max-restarts) goes on from its last good checkpoint.
    trainer.resume_or_load(resume=args.resume or restart_count() > 0)
    return trainer.train()


def run(argv: list[str] | None = None) -> int:
    parser = default_argument_parser(epilog=EPILOG)
    args = parser.parse_args(argv)
    if not args.config_file:
        parser.error("--config-file is required")
    # A file, or a shipped config by name (an installed wheel has no configs/ folder).
    args.config_file = resolve_config_file(args.config_file)
    # A bad file, key, value or device stops here, before any process starts or config.yaml
    # is written.
    cfg = load_config(args.config_file, args.opts)
    place = torchrun_rank()
    device = resolve_device(cfg, local_rank=place.local_rank if place else 0,
                            local_size=place.local_world_size if place else args.num_gpus)
    check_determinism_settings(cfg)
    if cfg.train.get("deterministic", False):
        prepare_cublas_workspace()  # before any process starts CUDA; the workers inherit it
    launch(
        main,
        args.num_gpus,
        device_type=device.type,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
        gpu=device.index if device.type == "cuda" and args.num_gpus == 1 else None,
    )
    return 0


def cli(argv: list[str] | None = None) -> int:
    """Console entry point: errors in the setup print one line instead of a traceback."""
    try:
        return run(argv)
    except (ConfigError, CheckpointError, FileNotFoundError, KeyError, ValueError) as exc:
        if os.environ.get("MEMATTE_TRACEBACK"):
            raise
        if comm.is_main_process():
            print(f"error: {exc}\n(set MEMATTE_TRACEBACK=1 for the traceback)", file=sys.stderr)
        return 2
