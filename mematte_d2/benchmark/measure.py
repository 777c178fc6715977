"""Child process of the benchmark: run one case and print its measurements as a JSON line.

    python -m mematte_d2.benchmark.measure '<case json>'

CPU peak memory is the process's peak resident set (VmHWM), which is why every case needs a
process of its own; on CUDA it is the peak allocation of the caching allocator.
"""

from __future__ import annotations

import copy
import json
import math
import statistics
import sys
import time

import torch
from detectron2.config import LazyConfig, instantiate

from mematte_d2.inference.memory import peak_rss_bytes

from .cases import InferenceCase, TrainCase, case_from_json, resolve_config, synthetic_pair

AUTOCAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def build_model(model: str, opts: list[str], seed: int, teacher: bool = False) -> torch.nn.Module:
    """Instantiate a model config (with overrides) with the weights of ``seed``."""
    cfg = LazyConfig.apply_overrides(LazyConfig.load(str(resolve_config(model))), list(opts))
    model_cfg = copy.deepcopy(cfg.model)
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
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return peak_rss_bytes()


def run_inference(case: InferenceCase) -> dict:
    """Warm-up call, then timed calls; latency median, peak memory and routed tokens."""
    device = torch.device(case.device)
    model = build_model(case.model, case.opts, case.seed).to(device).eval()
    if case.tile_size is not None:
        model.tile_size = case.tile_size
    image, trimap = synthetic_pair(case.size, case.seed)
    inputs = [{
        "image": torch.from_numpy(image).permute(2, 0, 1).float().to(device),
        "trimap": torch.from_numpy(trimap)[None].float().to(device),
    }]
    autocast = torch.autocast(
        device.type, dtype=AUTOCAST_DTYPES.get(case.dtype, torch.float32),
        enabled=case.dtype != "fp32",
    )
    outputs: list[dict] = []

    def call() -> None:
        with torch.no_grad(), autocast, model.routing_budget(keep_ratio=case.keep_ratio):
            outputs[:] = model(inputs)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    before = _memory_before(device)
    warmup = _timed(call, device)
    times = [_timed(call, device) for _ in range(_repeat_count(case.repeats, warmup,
                                                                  case.max_seconds))]
    routing = outputs[0]["routing"]
    return {
        "latency_s": statistics.median(times),
        "latency_min_s": min(times),
        "warmup_s": warmup,
        "timed_runs": len(times),
        "peak_memory_bytes": _peak_memory(device),
        "memory_before_bytes": before,
        "tokens_total": int(routing.shape[-2] * routing.shape[-1]),
        "tokens_routed": [int(n) for n in routing.flatten(1).sum(1).tolist()],
        "tile_size": int(model.tile_size),
    }


def _train_batch(case: TrainCase, device: torch.device) -> list[dict]:
    generator = torch.Generator().manual_seed(case.seed)
    batch = []
    for i in range(case.batch_size):
        image, trimap = synthetic_pair(case.crop_size, case.seed + i)
        alpha = torch.rand(1, case.crop_size, case.crop_size, generator=generator)
        batch.append({
            "image": torch.from_numpy(image).permute(2, 0, 1).float().to(device),
            "trimap": torch.from_numpy(trimap)[None].float().to(device),
            "alpha": alpha.to(device),
        })
    return batch


def _count(params) -> int:
    return sum(p.numel() for p in params)


def run_training(case: TrainCase) -> dict:
    """Warm-up step, then timed steps (forward, backward, AdamW step) on one random batch."""
    device = torch.device(case.device)
    model = build_model(case.model, case.opts, case.seed, teacher=case.teacher).to(device)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5)
    batch = _train_batch(case, device)

    def step() -> None:
        losses = model(batch)
        optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        optimizer.step()

    routing_modules = [m for name, m in model.backbone.named_modules()
                       if name.startswith("routers.") or name.endswith("efficient_block")]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    before = _memory_before(device)
    warmup = _timed(step, device)
    times = [_timed(step, device) for _ in range(case.repeats)]
    step_s = statistics.median(times)
    return {
        "step_s": step_s,
        "iters_per_s": 1.0 / step_s,
        "warmup_s": warmup,
        "timed_runs": len(times),
        "peak_memory_bytes": _peak_memory(device),
        "memory_before_bytes": before,
        "params_trainable": _count(trainable),
        "params_frozen": _count(p for p in model.parameters() if not p.requires_grad),
        "params_routing": _count(p for m in routing_modules for p in m.parameters()),
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
