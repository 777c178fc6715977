"""Child process of the benchmark: run one case and print its measurements as a JSON line.

    python -m mematte_d2.benchmark.measure '<case json>'

CPU peak memory is the process's peak resident set (VmHWM), which is why every case needs a
process of its own; on CUDA it is the peak allocation of the caching allocator.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import statistics
import sys
import time

import numpy as np
import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.utils.events import EventStorage

from mematte_d2.engine.step import MattingStepRunner, training_autocast_dtype
from mematte_d2.inference.engine import MattingInference
from mematte_d2.inference.memory import (
    MemoryBudget,
    estimate_peak_memory,
    format_bytes,
    model_dims,
    token_grid,
)
from mematte_d2.modeling.routing import RoutingBudget
from mematte_d2.utils.precision import autocast, autocast_dtype
from mematte_d2.utils.process_memory import current_rss_bytes, peak_rss_bytes

from .cases import (
    RECIPE_TRAIN_CONFIG,
    InferenceCase,
    TrainCase,
    case_from_json,
    load_model_config,
    synthetic_pair,
)
from .flops import count_gflops
from .saved_memory import SavedTensorMeter


def build_model(model: str, opts: list[str], seed: int, teacher: bool = False) -> torch.nn.Module:
    """Instantiate a model config (with overrides) with the weights of ``seed``."""
    model_cfg = copy.deepcopy(load_model_config(model, opts).model)
    if not teacher and "teacher_backbone" in model_cfg:
        model_cfg.teacher_backbone = None
    torch.manual_seed(seed)
    return instantiate(model_cfg)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return peak_rss_bytes()


def _timed(fn, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _repeat_count(case_repeats: int, first: float, max_seconds: float | None) -> int:
    """Timed runs after the warm-up: ``case_repeats``, fewer (at least 1) when the warm-up
    shows they would not fit ``max_seconds``."""
    if max_seconds is None or first <= 0:
        return case_repeats
    return max(1, min(case_repeats, math.floor((max_seconds - first) / first)))


def _memory_before(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    return current_rss_bytes()


def estimated_peak(engine: MattingInference, case: InferenceCase) -> int:
    """``estimate_peak_memory`` of the case: its size, keep ratio and the engine's tile size."""
    dims = model_dims(engine.model)
    gh, gw = token_grid(case.size, case.size, dims.patch_size, dims.size_divisibility)
    max_tokens = math.ceil(case.keep_ratio * gh * gw)
    return estimate_peak_memory(case.size, case.size, dims, max_tokens,
                                tile_size=engine.tile_size).total


class DecoderCallCounter:
    """Counts the decoder's calls (windows) and the input pixels they decode while active."""

    def __init__(self, decoder: torch.nn.Module):
        self.decoder = decoder
        self.calls = self.pixels = 0

    def _record(self, module, args) -> None:
        self.calls += 1
        self.pixels += args[1].shape[-2] * args[1].shape[-1]

    def __enter__(self) -> DecoderCallCounter:
        self._hook = self.decoder.register_forward_pre_hook(self._record)
        return self

    def __exit__(self, *exc) -> None:
        self._hook.remove()


def run_inference(case: InferenceCase) -> dict:
    """Warm-up call, then timed calls; latency median, peak memory, routed tokens, and the
    decoder calls and pixels of one call (the warm-up's).

    Not run (status "skipped: ...") when the estimated peak exceeds ``case.max_memory_bytes``.
    """
    device = torch.device(case.device)
    model = build_model(case.model, case.opts, case.seed).to(device).eval()
    engine = MattingInference(model, tile_size=case.tile_size,
                              skip_known_tiles=case.skip_known_tiles)
    budget = RoutingBudget(keep_ratio=case.keep_ratio)
    estimate = estimated_peak(engine, case)
    limit = case.max_memory_bytes
    if limit is None and case.max_memory is not None:
        limit = MemoryBudget(case.max_memory, device).bytes()
    if limit is not None and estimate > limit:
        return {
            "status": f"skipped: estimated peak {format_bytes(estimate)} > limit "
                      f"{format_bytes(limit)}",
            "estimated_peak_bytes": estimate,
        }
    image, trimap = synthetic_pair(case.size, case.seed, case.trimap)
    # 8-bit, on the host, as the predictor gives them: the model builds its float input by parts
    inputs = [{
        "image": torch.from_numpy(image).permute(2, 0, 1),
        "trimap": torch.from_numpy(trimap)[None],
    }]
    amp = autocast(autocast_dtype(case.dtype, device, setting="dtype"), device)
    outputs: list[dict] = []

    def call() -> None:
        with amp:
            outputs[:] = engine(inputs, budget)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    before = _memory_before(device)
    with DecoderCallCounter(model.decoder) as decoded:
        warmup = _timed(call, device)
    times = [_timed(call, device) for _ in range(_repeat_count(case.repeats, warmup,
                                                                  case.max_seconds))]
    routing = outputs[0]["routing"]
    peak = _peak_memory(device)
    gflops = None
    if case.count_flops:
        with amp:
            gflops = count_gflops(engine, inputs[0]["image"], inputs[0]["trimap"], budget)
    return {
        "latency_s": statistics.median(times),
        "latency_min_s": min(times),
        "warmup_s": warmup,
        "timed_runs": len(times),
        "peak_memory_bytes": peak,
        "memory_before_bytes": before,
        "gflops": gflops,
        "tokens_total": int(routing.shape[-2] * routing.shape[-1]),
        "tokens_routed": [int(n) for n in routing.flatten(1).sum(1).tolist()],
        "tile_size": engine.tile_size,
        "skip_known_tiles": engine.skip_known_tiles,
        "unknown_fraction": float(np.mean(trimap == 128)),
        "decoder_calls": decoded.calls,
        "decoded_pixels": decoded.pixels,
        "estimated_peak_bytes": estimate,
    }


def _train_batch(case: TrainCase, device: torch.device) -> list[dict]:
    """A batch as the training loader gives it: float32 CxHxW tensors on the host, pinned for
    a CUDA run (the model copies them to the GPU in each step, as in real training)."""
    generator = torch.Generator().manual_seed(case.seed)
    batch = []
    for i in range(case.batch_size):
        image, trimap = synthetic_pair(case.crop_size, case.seed + i)
        alpha = torch.rand(1, case.crop_size, case.crop_size, generator=generator)
        batch.append({
            "image": torch.from_numpy(image).permute(2, 0, 1).float().contiguous(),
            "trimap": torch.from_numpy(trimap)[None].float(),
            "alpha": alpha,
        })
    if device.type == "cuda":
        batch = [{k: v.pin_memory() for k, v in item.items()} for item in batch]
    return batch


def train_precision(case: TrainCase, device: torch.device) -> tuple[torch.dtype | None,
                                                                    float | None]:
    """(autocast dtype, gradient-clipping norm) of the case: the recipe's ``train.amp`` and
    ``train.clip_grad`` as the trainer reads them, or the named dtype without clipping."""
    if case.precision == "recipe":
        recipe = LazyConfig.load(str(RECIPE_TRAIN_CONFIG)).train
        clip = recipe.get("clip_grad", {})
        return (training_autocast_dtype(recipe.amp, device),
                clip.get("max_norm") if clip.get("enabled", False) else None)
    return autocast_dtype(case.precision, device, setting="precision"), None


def _count(params) -> int:
    return sum(p.numel() for p in params)


def run_training(case: TrainCase) -> dict:
    """Warm-up step, then timed steps (forward, backward, AdamW step) on one random batch, by
    the trainer's step runner: the case's autocast, GradScaler and clipping (``train_precision``)
    and a host batch the model copies to the device in every step, as in real training.

    ``saved_by_routing_bytes``: what the routers' and token refiners' forwards keep for backward
    in one step (their activation memory); ``saved_by_global_blocks_bytes``: the same for the
    global-attention blocks (MEMatte's routed blocks, refiners included; ViTMatte's global ones).
    """
    device = torch.device(case.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    amp_dtype, clip = train_precision(case, device)
    model = build_model(case.model, case.opts, case.seed, teacher=case.teacher).to(device)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5)
    runner = MattingStepRunner(model, itertools.repeat(_train_batch(case, device)), optimizer,
                               seed=case.seed, device=device, amp_dtype=amp_dtype,
                               clip_grad_norm=clip)
    storage = EventStorage(0)

    def step() -> None:
        with storage:
            runner.run_step()
        runner.iter = storage.iter = runner.iter + 1

    routing_modules = [m for name, m in model.backbone.named_modules()
                       if name.startswith("routers.") or name.endswith("efficient_block")]
    global_blocks = [b for b in model.backbone.blocks if getattr(b, "window_size", 0) <= 0]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    before = _memory_before(device)
    meter = SavedTensorMeter({"routing": routing_modules, "global_blocks": global_blocks})
    with meter:
        warmup = _timed(step, device)
    times = [_timed(step, device) for _ in range(case.repeats)]
    step_s = statistics.median(times)
    return {
        "amp_dtype": str(amp_dtype).removeprefix("torch.") if amp_dtype else "float32",
        "grad_scaler": runner.grad_scaler is not None,
        "step_s": step_s,
        "iters_per_s": 1.0 / step_s,
        "warmup_s": warmup,
        "timed_runs": len(times),
        "peak_memory_bytes": _peak_memory(device),
        "memory_before_bytes": before,
        "params_trainable": _count(trainable),
        "params_frozen": _count(p for p in model.parameters() if not p.requires_grad),
        "params_routing": _count(p for m in routing_modules for p in m.parameters()),
        "saved_by_routing_bytes": meter.bytes["routing"],
        "saved_by_global_blocks_bytes": meter.bytes["global_blocks"],
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m mematte_d2.benchmark.measure '<case json>'", file=sys.stderr)
        return 2
    case = case_from_json(argv[0])
    torch.set_num_threads(case.threads)
    result = run_inference(case) if isinstance(case, InferenceCase) else run_training(case)
    print("BENCHMARK_RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
