"""MattingTrainer: detectron2's DefaultTrainer workflow driven by a LazyConfig."""

import copy
import itertools
import logging
import weakref
from collections import OrderedDict

import torch
from detectron2.config import instantiate
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.engine import DefaultTrainer, TrainerBase, default_writers, hooks
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.solver import LRMultiplier
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger
from omegaconf import DictConfig
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.nn.parallel import DistributedDataParallel

from mematte_d2.checkpoint import (
    PeriodicCheckpointer,
    StrictCheckpointer,
    initialize_from_checkpoint,
)
from mematte_d2.evaluation import TimedModel
from mematte_d2.inference.engine import MattingInference
from mematte_d2.utils.distributed import broadcast_buffers_from_rank0

from .hooks import MattingVisualizer, unwrap_model
from .step import MattingStepRunner, training_autocast_dtype, uses_grad_scaler

__all__ = [
    "MattingTrainer",
    "bind_device",
    "check_datasets",
    "gradient_compression_hook",
    "resolve_device",
    "test_dataset_names",
    "train_dataset_names",
    "validation_dataset_name",
]

logger = logging.getLogger(__name__)


def resolve_device(cfg: DictConfig, local_rank: int | None = None,
                   local_size: int | None = None) -> torch.device:
    """``train.device`` ("cuda", "cuda:K", "cpu" or None = CUDA when available) for the
    process of `local_rank` among `local_size` on this machine (default: this process).

    With several processes per machine each one trains on its own GPU, ``cuda:<local rank>``;
    naming one GPU (``cuda:K``) is then refused, as every rank would share GPU K.
    """
    local_rank = comm.get_local_rank() if local_rank is None else local_rank
    local_size = comm.get_local_size() if local_size is None else local_size
    name = cfg.train.get("device")
    if name in (None, "auto"):
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"train.device={name!r}: use cpu, cuda or cuda:K") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"train.device={name!r} but CUDA is not available; use train.device=cpu")
    if device.type != "cuda":
        return device
    if device.index is None:
        return torch.device("cuda", local_rank)
    if local_size > 1:
        raise ValueError(
            f"train.device={name!r} names one GPU but {local_size} processes run on this "
            "machine, one per GPU; use train.device=cuda (or CUDA_VISIBLE_DEVICES)"
        )
    return device


def gradient_compression_hook(device: torch.device, amp_dtype: torch.dtype | None):
    """The DDP communication hook that all-reduces gradients in the training precision, or
    None for full-precision all-reduces.

    fp16 compression only with fp16 AMP and its GradScaler: the hook casts to fp16 before
    dividing by the world size, so gradients above 65504 become inf, which only the scaler
    turns into a skipped step (small ones underflow to 0, which its scaling prevents).
    bf16 AMP gets bf16 compression (fp32's range); fp32 training none. Both hooks run on NCCL
    and gloo.
    """
    if amp_dtype == torch.float16 and uses_grad_scaler(amp_dtype, device):
        return default_hooks.fp16_compress_hook
    if amp_dtype == torch.bfloat16:
        return default_hooks.bf16_compress_hook
    return None


def bind_device(device: torch.device) -> None:
    """Make `device` this process's current CUDA device, so that what reads the current device
    (the pin-memory thread, cuBLAS handles, NCCL, peak-memory counters) uses the model's GPU,
    also for ``train.device=cuda:K`` in a single process. No-op for the CPU."""
    if device.type == "cuda":
        torch.cuda.set_device(device)


def test_dataset_names(cfg: DictConfig) -> list[str]:
    """``dataloader.test.dataset``: one registered name or a list of names."""
    names = cfg.dataloader.test.dataset
    return [names] if isinstance(names, str) else list(names)


def check_datasets(names: list[str]) -> None:
    """Fail early when a data set is not registered or its files are missing."""
    for name in names:
        if name not in DatasetCatalog.list():
            matting = [
                n for n in DatasetCatalog.list()
                if MetadataCatalog.get(n).get("evaluator_type") == "matting"
            ]
            raise KeyError(
                f"data set {name!r} is not registered; registered matting sets: "
                f"{', '.join(sorted(matting))} (see mematte_d2.data.register_matting_dataset)"
            )
        DatasetCatalog.get(name)


def validation_dataset_name(cfg: DictConfig) -> str | None:
    """``train.validation_set``: the set ``model_best.pth`` is chosen on (None: no choice).

    A test set is refused: choosing checkpoints by test scores is not model selection.
    """
    name = cfg.train.get("validation_set")
    if name and name in test_dataset_names(cfg):
        raise ValueError(
            f"train.validation_set={name!r} is also a test set (dataloader.test.dataset): "
            "choosing checkpoints by test scores is not model selection; name a held-out set"
        )
    return name or None


def train_dataset_names(cfg: DictConfig) -> list[str]:
    """``dataloader.train.dataset``: one registered name or a list of names."""
    names = cfg.dataloader.train.get("dataset")
    return [names] if isinstance(names, str) else list(names or [])


def _instantiate_with(node: DictConfig, **changes):
    """instantiate(node) with some arguments replaced, leaving the config unchanged."""
    saved = {k: node[k] for k in changes if k in node}
    try:
        for key, value in changes.items():
            node[key] = value
        return instantiate(node)
    finally:
        for key in changes:
            if key in saved:
                node[key] = saved[key]
            else:
                del node[key]


class MattingTrainer(DefaultTrainer):
    """DefaultTrainer's public API (build_* classmethods, resume_or_load, train, test) on a
    LazyConfig with the keys of ``configs/common/train.py``.

    Differences from DefaultTrainer: the step runner (seeded per iteration, AMP, clipping),
    a resumable data stream, strict checkpoint checks, matting hooks. Every public method of
    DefaultTrainer that reads the config is overridden for the LazyConfig keys.
    """

    def __init__(self, cfg: DictConfig):
        TrainerBase.__init__(self)
        cfg = self.auto_scale_workers(cfg, comm.get_world_size())
        if not logging.getLogger("detectron2").isEnabledFor(logging.INFO):
            setup_logger()
        validation = validation_dataset_name(cfg)
        extra = [validation] if validation else []
        check_datasets(train_dataset_names(cfg) + test_dataset_names(cfg) + extra)
        self.device = resolve_device(cfg)
        bind_device(self.device)
        amp_dtype = training_autocast_dtype(cfg.train.get("amp", {}), self.device)
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        # Pinned host batches, so the host-to-GPU copies of the inputs do not block the step.
        data_loader.pin_memory = self.device.type == "cuda"
        model = self._wrap_ddp(cfg, model, amp_dtype)
        clip = cfg.train.get("clip_grad", {})
        self._trainer = MattingStepRunner(
            model,
            data_loader,
            optimizer,
            seed=self.seed_of(cfg),
            device=self.device,
            amp_dtype=amp_dtype,
            clip_grad_norm=clip.get("max_norm") if clip.get("enabled", False) else None,
        )
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = StrictCheckpointer(
            model, cfg.train.output_dir, trainer=weakref.proxy(self)
        )
        self.start_iter = 0
        self.max_iter = cfg.train.max_iter
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    @staticmethod
    def auto_scale_workers(cfg: DictConfig, num_workers: int) -> DictConfig:
        """`cfg` for `num_workers` processes when it was written for
        ``train.reference_world_size`` of them (0 or None: `cfg` unchanged), as DefaultTrainer
        does for yacs configs: the batch per process stays, so the total batch and the learning
        rate scale with the ratio and iteration counts (schedule, warmup, evaluation,
        checkpoints, visualisation) inversely. Returns a scaled copy."""
        reference = cfg.train.get("reference_world_size") or 0
        if reference in (0, num_workers):
            return cfg
        batch = cfg.dataloader.train.total_batch_size
        if batch % reference:
            raise ValueError(f"dataloader.train.total_batch_size={batch} is not divisible by "
                             f"train.reference_world_size={reference}")
        ratio = num_workers / reference
        cfg = copy.deepcopy(cfg)
        cfg.dataloader.train.total_batch_size = batch // reference * num_workers
        cfg.optimizer.lr = cfg.optimizer.lr * ratio
        for node, key in ((cfg.train, "max_iter"), (cfg.train, "eval_period"),
                          (cfg.train, "vis_period"), (cfg.train.checkpointer, "period"),
                          (cfg.get("lr_multiplier", {}), "warmup_iters")):
            if node.get(key):
                node[key] = max(1, round(node[key] / ratio))
        cfg.train.reference_world_size = num_workers
        logger.info("Scaled the config from %d to %d processes: total batch %d, lr %g, "
                    "max_iter %d", reference, num_workers, cfg.dataloader.train.total_batch_size,
                    cfg.optimizer.lr, cfg.train.max_iter)
        return cfg

    def build_writers(self) -> list:
        """detectron2's default writers (console, metrics.json, TensorBoard) in
        ``train.output_dir``."""
        return default_writers(self.cfg.train.output_dir, self.max_iter)

    @staticmethod
    def seed_of(cfg: DictConfig) -> int:
        """``train.seed``, or one random seed shared by all ranks when it is negative."""
        seed = cfg.train.get("seed", -1)
        return seed if seed is not None and seed >= 0 else comm.shared_random_seed()

    @staticmethod
    def _wrap_ddp(cfg: DictConfig, model: torch.nn.Module,
                  amp_dtype: torch.dtype | None = None) -> torch.nn.Module:
        """DistributedDataParallel with ``train.ddp``'s options (a single process: `model`).

        ``grad_compression`` all-reduces gradients in the training precision `amp_dtype`
        (``gradient_compression_hook``); in fp32 it does nothing.
        """
        ddp = dict(cfg.train.get("ddp", {}))
        for old, new in (("broadcast_buffers", "forward_sync_buffers"),
                         ("fp16_compression", "grad_compression")):
            if old in ddp:
                raise ValueError(f"train.ddp.{old} is no longer read; use train.ddp.{new}")
        grad_compression = ddp.pop("grad_compression", False)
        if comm.get_world_size() == 1:
            return model
        device = next(model.parameters()).device
        on_cuda = device.type == "cuda"
        wrapped = DistributedDataParallel(
            model, device_ids=[device.index] if on_cuda else None, **ddp
        )
        hook = gradient_compression_hook(device, amp_dtype) if grad_compression else None
        if hook is not None:
            wrapped.register_comm_hook(state=None, hook=hook)
            logger.info("DDP all-reduces gradients with %s", hook.__name__)
        return wrapped

    # ------------------------------------------------------------------ checkpoints
    def resume_or_load(self, resume: bool = True) -> None:
        """Resume from the newest checkpoint of ``train.output_dir`` that loads when asked
        (StrictCheckpointer.resume_latest: unreadable ones are skipped and logged; none
        loading is an error), else start from ``train.init_checkpoint`` (if set). Weights that
        do not fit raise before training."""
        model = unwrap_model(self.model)
        path = self.checkpointer.resume_latest() if resume else None
        if path is not None:
            self.start_iter = self.iter + 1
            logger.info("Resumed from %s at iteration %d", path, self.start_iter)
        elif self.cfg.train.get("init_checkpoint"):
            initialize_from_checkpoint(model, self.cfg.train.init_checkpoint)
            if comm.get_world_size() > 1:  # every rank loaded the same file; keep them in sync
                comm.synchronize()
        sampler = getattr(self.data_loader, "batch_sampler", None)
        if hasattr(sampler, "start_iter"):
            sampler.start_iter = self.start_iter

    # ------------------------------------------------------------------ builders
    @classmethod
    def build_model(cls, cfg: DictConfig) -> torch.nn.Module:
        model = instantiate(cfg.model)
        model.to(resolve_device(cfg))
        logger.info("Model:\n%s", model)
        return model

    @classmethod
    def build_optimizer(cls, cfg: DictConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
        cfg.optimizer.params.model = model
        try:
            return instantiate(cfg.optimizer)
        finally:
            cfg.optimizer.params.model = None

    @classmethod
    def build_lr_scheduler(cls, cfg: DictConfig, optimizer: torch.optim.Optimizer):
        return LRMultiplier(optimizer, instantiate(cfg.lr_multiplier), cfg.train.max_iter)

    @classmethod
    def build_train_loader(cls, cfg: DictConfig):
        """``dataloader.train``; a loader ``seed`` left at None takes ``train.seed``."""
        node = cfg.dataloader.train
        seed = cfg.train.get("seed", -1)
        if "seed" in node and node.seed is None and seed is not None and seed >= 0:
            return _instantiate_with(node, seed=seed)
        return instantiate(node)

    @classmethod
    def build_test_loader(cls, cfg: DictConfig, dataset_name: str):
        return _instantiate_with(cfg.dataloader.test, dataset=dataset_name)

    @classmethod
    def build_evaluator(cls, cfg: DictConfig, dataset_name: str, output_dir: str | None = None):
        output_dir = output_dir or f"{cfg.train.output_dir}/inference/{dataset_name}"
        return _instantiate_with(
            cfg.dataloader.evaluator, dataset_name=dataset_name, output_dir=output_dir
        )

    @classmethod
    def test(cls, cfg: DictConfig, model: torch.nn.Module, evaluators=None) -> OrderedDict:
        """Evaluate `model` on every ``dataloader.test.dataset``; returns results keyed by set
        name, with one test set as with several (so logged keys read ``<set>/matting/SAD``)."""
        names = test_dataset_names(cfg)
        if evaluators is not None and len(evaluators) != len(names):
            raise ValueError(f"{len(evaluators)} evaluators for {len(names)} test sets")
        results = OrderedDict()
        for i, name in enumerate(names):
            results[name] = cls.evaluate_on(
                cfg, model, name, evaluators[i] if evaluators is not None else None
            )
        return results

    @classmethod
    def evaluate_on(cls, cfg: DictConfig, model: torch.nn.Module, dataset_name: str,
                    evaluator=None) -> OrderedDict:
        """Evaluate `model` on one registered set (each rank takes a shard of it), through the
        inference engine, as the predictor runs it."""
        evaluator = evaluator or cls.build_evaluator(cfg, dataset_name)
        results = inference_on_dataset(
            TimedModel(MattingInference(model)), cls.build_test_loader(cfg, dataset_name),
            evaluator,
        )
        if comm.is_main_process():
            logger.info("Evaluation results for %s in csv format:", dataset_name)
            print_csv_format(results)
        return results

    def evaluate_during_training(self) -> dict:
        """Evaluation of the model as rank 0 holds it, i.e. as its checkpoints hold it.

        Each rank updates its BatchNorm statistics on its own batches, so before evaluating
        every rank takes rank 0's buffers; the unwrapped model is evaluated (DDP's forward
        would sync buffers per call, which hangs when the ranks' shards differ in length).
        Returns the test results per set, plus the validation set's when one is set.
        """
        model = unwrap_model(self.model)
        broadcast_buffers_from_rank0(model)
        self._last_eval_results = self.test(self.cfg, model)
        validation = validation_dataset_name(self.cfg)
        if validation is None:
            return self._last_eval_results
        return {
            **self._last_eval_results,
            validation: self.evaluate_on(self.cfg, model, validation),
        }

    def build_hooks(self) -> list:
        cfg = self.cfg
        period = cfg.train.get("eval_period", 0)
        main = comm.is_main_process()

        ret = [hooks.IterationTimer(), hooks.LRScheduler()]
        if main:
            ckpt = cfg.train.checkpointer
            ret.append(
                PeriodicCheckpointer(
                    self.checkpointer, ckpt.period, max_to_keep=ckpt.get("max_to_keep")
                )
            )
        ret.append(hooks.EvalHook(period, self.evaluate_during_training))
        validation = validation_dataset_name(cfg)
        if main and period > 0 and validation:
            ret.append(hooks.BestCheckpointer(
                period, self.checkpointer, f"{validation}/matting/SAD", "min"
            ))
        vis_period = cfg.train.get("vis_period", 0)
        if main and vis_period > 0:
            loader = self.build_test_loader(cfg, test_dataset_names(cfg)[0])
            samples = list(itertools.islice((b[0] for b in loader), cfg.train.get("vis_images", 2)))
            ret.append(MattingVisualizer(vis_period, samples, cfg.train.output_dir))
        if main:
            ret.append(hooks.PeriodicWriter(self.build_writers(),
                                            period=cfg.train.get("log_period", 20)))
        return ret

    def train(self):
        """Run training; returns the last evaluation results (if any evaluation ran)."""
        TrainerBase.train(self, self.start_iter, self.max_iter)
        return getattr(self, "_last_eval_results", None)
