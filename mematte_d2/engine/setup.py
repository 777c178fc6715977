"""The start of a training or evaluation job: loggers, environment record, seeds, config.yaml.

detectron2's ``default_setup`` does these steps too, but writes ``config.yaml`` in place, so an
interrupted or failing save leaves a truncated file (and follows a symbolic link named like it).
Here the config is saved through :func:`mematte_d2.utils.atomic.atomic_write`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch
from detectron2.config import LazyConfig
from detectron2.utils import comm
from detectron2.utils.collect_env import collect_env_info
from detectron2.utils.env import seed_all_rng
from detectron2.utils.logger import setup_logger
from omegaconf import DictConfig

from mematte_d2.utils.atomic import atomic_write
from mematte_d2.utils.determinism import enable_determinism

__all__ = ["check_determinism_settings", "save_config", "setup_job"]


def save_config(cfg: DictConfig, output_dir: str | os.PathLike) -> Path:
    """Write ``cfg`` as ``<output_dir>/config.yaml``, complete or not at all."""
    with tempfile.TemporaryDirectory(dir=output_dir, prefix=".config-") as scratch:
        draft = os.path.join(scratch, "config.yaml")
        LazyConfig.save(cfg, draft)
        text = Path(draft).read_bytes()
    return atomic_write(Path(output_dir) / "config.yaml", lambda f: f.write(text))


def setup_job(cfg: DictConfig, args: argparse.Namespace) -> None:
    """Loggers writing to ``train.output_dir`` (detectron2's, fvcore's and this package's), the
    environment and command line in the log, ``config.yaml`` on the main process, a seed per
    rank (``train.seed + rank``; a random one when negative), ``train.deterministic`` and
    ``train.cudnn_benchmark`` for training."""
    output_dir = cfg.train.output_dir
    rank = comm.get_rank()
    if comm.is_main_process():
        os.makedirs(output_dir, exist_ok=True)
    for name in ("fvcore", "mematte_d2", "detectron2"):
        logger = setup_logger(output_dir, distributed_rank=rank, name=name)
    logger.info("Rank %d of %d processes", rank, comm.get_world_size())
    logger.info("Environment info:\n%s", collect_env_info())
    logger.info("Command line arguments: %s", args)
    if comm.is_main_process():
        logger.info("Full config saved to %s", save_config(cfg, output_dir))
    seed = cfg.train.get("seed", -1)
    seed_all_rng(None if seed is None or seed < 0 else seed + rank)
    check_determinism_settings(cfg)
    if cfg.train.get("deterministic", False):
        enable_determinism()
    elif not getattr(args, "eval_only", False):
        torch.backends.cudnn.benchmark = bool(cfg.train.get("cudnn_benchmark", False))


def check_determinism_settings(cfg: DictConfig) -> None:
    """Refuse ``train.deterministic`` with ``train.cudnn_benchmark`` (timing-picked kernels)."""
    if cfg.train.get("deterministic", False) and cfg.train.get("cudnn_benchmark", False):
        raise ValueError("train.deterministic=True and train.cudnn_benchmark=True: cuDNN "
                         "benchmarking picks kernels by timing; set train.cudnn_benchmark=False")
