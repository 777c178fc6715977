#!/usr/bin/env python
"""One command that shows whether every CUDA path of the project works, and how fast.

    python tools/gpu_check.py [--output gpu_check] [--only NAME ...]

Each check runs in a process of its own with its own time limit (a hang fails that check, not
the script); the whole run fits 8 minutes on one H100. Writes <output>/report.json and
<output>/report.md and exits 1 if any check failed. This process never starts CUDA: the
versions, the devices and every memory figure come from the checks' own processes. Without
CUDA it says what it skipped and exits 0. docs/gpu_check.md explains each number.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUICK = str(REPO / "configs/quick_schedules/mematte_tiny_synthetic.py")
TRAIN_NET = str(REPO / "tools/lazyconfig_train_net.py")
RESULT_PREFIX = "GPU_CHECK_RESULT "
TOTAL_SECONDS = 480  # the promise: 8 minutes on one H100


@dataclass
class Check:
    name: str
    about: str
    timeout: float
    min_gpus: int = 1
    default: bool = True  # run without --only


@dataclass
class Outcome:
    name: str
    status: str  # pass, FAIL, skipped
    seconds: float = 0.0
    numbers: dict = field(default_factory=dict)
    detail: str = ""


CHECKS = [
    Check("environment", "torch, CUDA, cuDNN, NCCL and driver versions, GPUs, TF32 flags", 45),
    Check("cuda_equals_cpu", "MEMatte-S and ViTMatte-S, fp32 TF32 off: CUDA alpha within 1e-4 "
          "of the CPU's, identical routing; tiled == whole decoding on CUDA", 60),
    Check("predictor_sizes", "MEMatte-S predictor at 2048/4096/8192^2, fp32 and fp16: time, "
          "max_memory_allocated vs estimate_peak_memory (>= measured, <= 1.5x), finite alpha",
          90),
    Check("mematte_vs_vitmatte", "MEMatte-S against dense ViTMatte-S at 2048/4096^2, fp16: "
          "memory and latency ratios", 45),
    Check("forced_oom", "a 4096^2 image under set_per_process_memory_fraction: the OOM retry "
          "ends in an alpha or the named error", 30),
    Check("sdpa_kernels", "the SDPA kernel torch picks (profiler) for routed training "
          "attention, window attention with rel-pos, and inference", 30),
    Check("train_amp", "50 fp16 AMP steps with GradScaler and 20 bf16 steps, with clipping: "
          "finite losses, loss scale, skipped steps", 45),
    Check("train_resume", "train.deterministic=True: a run killed after a checkpoint and "
          "resumed ends with the uninterrupted run's weights", 90),
    Check("gloo_training", "2-process gloo training with train.device=cpu on this machine", 60),
    Check("export", "ONNX export of a model loaded on CUDA", 30),
    Check("nccl_equals_one_process", "2-process NCCL training against 1 process with the same "
          "global batch", 90, min_gpus=2),
    Check("gpu_tests", "pytest -m gpu (only with --only gpu_tests)", 300, default=False),
]
BY_NAME = {c.name: c for c in CHECKS}


# ---------------------------------------------------------------------------------- parent
def child_command(name: str, work: Path) -> list[str]:
    """The command that runs check `name` in a fresh interpreter."""
    return [sys.executable, str(Path(__file__).resolve()), "--child", name, "--work", str(work)]


def run_check(check: Check, work: Path, timeout: float) -> Outcome:
    """Run one check in its own process; a time-out or a crash fails it."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    start = time.monotonic()
    try:
        done = subprocess.run(child_command(check.name, work), cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Outcome(check.name, "FAIL", time.monotonic() - start,
                       detail=f"timeout: no result after {timeout:.0f} s")
    seconds = time.monotonic() - start
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX):])
            status = {True: "pass", False: "FAIL", None: "skipped"}[result["passed"]]
            return Outcome(check.name, status, seconds, result.get("numbers", {}),
                           result.get("detail", ""))
    lines = [s for s in (done.stderr or done.stdout).strip().splitlines() if s.strip()]
    return Outcome(check.name, "FAIL", seconds,
                   detail=lines[-1][:300] if lines else f"exit code {done.returncode}")


def select(only: list[str] | None) -> list[Check]:
    if not only:
        return [c for c in CHECKS if c.default]
    names = [n for item in only for n in item.split(",") if n]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise SystemExit(f"gpu_check: unknown check(s) {unknown}; known: {', '.join(BY_NAME)}")
    return [BY_NAME["environment"]] + [BY_NAME[n] for n in names if n != "environment"]


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    return str(value)


def write_report(outcomes: list[Outcome], output: Path) -> tuple[Path, Path]:
    """report.json (every number) and report.md (a table, then each check's numbers)."""
    output.mkdir(parents=True, exist_ok=True)
    passed = all(o.status != "FAIL" for o in outcomes)
    data = {"passed": passed, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "checks": [asdict(o) for o in outcomes]}
    json_path = output / "report.json"
    json_path.write_text(json.dumps(data, indent=2) + "\n")
    lines = ["# GPU check", "", f"{'All checks passed' if passed else 'FAILED'}; {data['date']}; "
             "what each number means: docs/gpu_check.md", "",
             "| check | result | seconds | detail |", "|---|---|---|---|"]
    lines += [f"| {o.name} | {o.status} | {o.seconds:.1f} | {o.detail} |" for o in outcomes]
    for o in outcomes:
        if o.numbers:
            lines += ["", f"## {o.name}", ""]
            lines += [f"- {key}: {_cell(value)}" for key, value in o.numbers.items()]
    md_path = output / "report.md"
    md_path.write_text("\n".join(lines) + "\n")
    return json_path, md_path


def main(argv: list[str] | None = None) -> int:
    listing = "\n".join(f"  {c.name:<24} {c.about}" + (f" [{c.min_gpus}+ GPUs]"
                                                        if c.min_gpus > 1 else "")
                        for c in CHECKS)
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog="checks:\n" + listing,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="gpu_check", help="report folder (default gpu_check)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run these checks only")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return run_child(args.child, Path(args.work))
    checks = select(args.only)
    output = Path(args.output)
    deadline = time.monotonic() + TOTAL_SECONDS
    with tempfile.TemporaryDirectory(prefix="mematte_gpu_check_") as work:
        environment = run_check(checks[0], Path(work), checks[0].timeout)
        outcomes = [environment]
        print(f"gpu_check: environment {environment.status} {_cell(environment.numbers)}",
              flush=True)
        gpus = environment.numbers.get("cuda_devices", 0) if environment.status == "pass" else 0
        for check in checks[1:]:
            left = deadline - time.monotonic()
            if environment.status != "pass":
                outcome = Outcome(check.name, "skipped", detail="the environment check failed")
            elif gpus < check.min_gpus:
                outcome = Outcome(check.name, "skipped", detail=(
                    "no CUDA device" if not gpus else f"needs {check.min_gpus} GPUs, {gpus} here"))
            elif left < 5:
                outcome = Outcome(check.name, "FAIL", detail="no time left of the 8 minutes")
            else:
                outcome = run_check(check, Path(work), min(check.timeout, left))
            outcomes.append(outcome)
            print(f"gpu_check: {check.name} {outcome.status} ({outcome.seconds:.1f} s) "
                  f"{outcome.detail}", flush=True)
    json_path, md_path = write_report(outcomes, output)
    if environment.status == "pass" and not gpus:
        skipped = ", ".join(o.name for o in outcomes if o.status == "skipped")
        print(f"gpu_check: no CUDA device here; skipped {skipped}")
    print(f"gpu_check: wrote {json_path} and {md_path}")
    return 0 if all(o.status != "FAIL" for o in outcomes) else 1


# ---------------------------------------------------------------------------------- child
def run_child(name: str, work: Path) -> int:
    """Run check `name` here and print its result line: passed (True/False/None = skipped),
    numbers, detail."""
    try:
        passed, numbers, detail = CHILD_CHECKS[name](work)
    except Exception as exc:  # the check failed: say how, in its report line
        passed, numbers, detail = False, {}, f"{type(exc).__name__}: {str(exc)[:300]}"
    print(RESULT_PREFIX + json.dumps({"passed": passed, "numbers": numbers, "detail": detail},
                                     default=str), flush=True)
    return 0


def _environment(work: Path):
    import torch

    numbers = {"torch": torch.__version__, "cuda_available": torch.cuda.is_available(),
               "cuda_devices": torch.cuda.device_count() if torch.cuda.is_available() else 0}
    if not numbers["cuda_available"]:
        return True, numbers, "no CUDA device: the CUDA checks are skipped"
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        smi = []
    numbers.update({
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "nccl": ".".join(map(str, torch.cuda.nccl.version())),
        "driver": smi[0] if smi else "unknown (no nvidia-smi)",
        "gpus": [f"{torch.cuda.get_device_name(i)} ({torch.cuda.get_device_properties(i).total_memory / 2**30:.0f} GiB, sm{''.join(map(str, torch.cuda.get_device_capability(i)))})"  # noqa: E501
                 for i in range(torch.cuda.device_count())],
        "tf32_matmul": torch.backends.cuda.matmul.fp32_precision,
        "tf32_cudnn_conv": torch.backends.cudnn.conv.fp32_precision,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    })
    return True, numbers, ""


def _model_cfg(name: str, opts=()):
    from mematte_d2 import model_zoo
    from mematte_d2.config import load_config

    base, extra = (name[:-6], ["model.backbone.attention_impl='dense'"]) if name.endswith(
        "_dense") else (name, [])
    return load_config(model_zoo.get_config_file(f"common/models/{base}.py"), [*extra, *opts])


def _predictor(name: str, device: str, precision: str = "fp32", opts=(), like=None):
    """MattingPredictor with seeded random weights (or `like`'s), no memory budget."""
    import torch

    from mematte_d2.inference import MattingPredictor

    torch.manual_seed(0)
    predictor = MattingPredictor(_model_cfg(name, opts), device=device, precision=precision,
                                 max_memory=None)
    if like is not None:
        predictor.model.load_state_dict(like.model.state_dict())
    return predictor


@functools.lru_cache(maxsize=4)
def _pair(size: int, seed: int = 0):
    """A random uint8 image and a disc trimap (made once per size: 8192^2 takes seconds)."""
    from mematte_d2.benchmark.cases import synthetic_pair

    return synthetic_pair(size, seed)


def _tf32_off():
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def _cuda_equals_cpu(work: Path):
    import numpy as np

    _tf32_off()
    image, trimap = _pair(512)
    numbers, ok = {}, True
    for name in ("mematte_s", "vitmatte_s"):
        cpu = _predictor(name, "cpu")
        cuda = _predictor(name, "cuda", like=cpu)
        a, b = cpu.predict(image, trimap), cuda.predict(image, trimap)
        diff = float(np.abs(a.alpha - b.alpha).max())
        routing_diff = int((a.routing != b.routing).sum())
        numbers[f"{name}_max_alpha_diff"] = diff
        numbers[f"{name}_routing_tokens_differing"] = routing_diff
        ok &= diff <= 1e-4 and routing_diff == 0
    big, big_trimap = _pair(1024, seed=1)
    whole = cuda.predict(big, big_trimap, tile_size=0).alpha
    tiled = cuda.predict(big, big_trimap, tile_size=256).alpha
    numbers["tiled_vs_whole_max_alpha_diff"] = float(np.abs(whole - tiled).max())
    ok &= numbers["tiled_vs_whole_max_alpha_diff"] <= 1e-4
    return ok, numbers, "" if ok else "a difference above 1e-4 or differing routing"


def _measure(predictor, image, trimap, **kw):
    """(seconds, peak bytes) of one synchronised predict call, and its result."""
    import torch

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = predictor.predict(image, trimap, **kw)
    torch.cuda.synchronize()
    return time.perf_counter() - start, torch.cuda.max_memory_allocated(), result


def _predictor_sizes(work: Path):
    import numpy as np

    from mematte_d2.inference import estimate_peak_memory, model_dims
    from mematte_d2.inference.memory import token_grid

    numbers, failures = {}, []
    for precision in ("fp32", "fp16"):
        predictor = _predictor("mematte_s", "cuda", precision)
        _measure(predictor, *_pair(512), keep_ratio=0.25)  # warm-up (cuDNN, allocator)
        for size in (2048, 4096, 8192):
            image, trimap = _pair(size)
            seconds, peak, result = _measure(predictor, image, trimap, keep_ratio=0.25)
            gh, gw = token_grid(size, size)
            estimate = estimate_peak_memory(size, size, model_dims(predictor.model),
                                            math.ceil(0.25 * gh * gw),
                                            tile_size=predictor.engine.tile_size).total
            key = f"{precision}_{size}"
            numbers[key] = {"seconds": seconds, "peak_gib": peak / 2**30,
                            "estimate_gib": estimate / 2**30, "estimate_over_peak": estimate / peak,
                            "alpha_finite": bool(np.isfinite(result.alpha).all())}
            if not (peak <= estimate <= 1.5 * peak and numbers[key]["alpha_finite"]):
                failures.append(key)
    return not failures, numbers, (f"estimate outside [peak, 1.5 peak] or alpha not finite: "
                                   f"{failures}" if failures else "")


def _mematte_vs_vitmatte(work: Path):
    import torch

    from mematte_d2.inference.memory import MemoryBudgetError

    numbers = {}
    predictors = {name: _predictor(name, "cuda", "fp16") for name in ("mematte_s",
                                                                        "vitmatte_s_dense")}
    for predictor in predictors.values():
        _measure(predictor, *_pair(512))
    for size in (2048, 4096):
        image, trimap = _pair(size)
        row = {}
        for name, predictor in predictors.items():
            try:
                seconds, peak, _ = _measure(predictor, image, trimap)
                row[name] = {"seconds": seconds, "peak_gib": peak / 2**30}
            except (torch.OutOfMemoryError, MemoryBudgetError) as exc:
                row[name] = {"out_of_memory": str(exc).splitlines()[0][:120]}
            torch.cuda.empty_cache()
        mem, vit = row["mematte_s"], row["vitmatte_s_dense"]
        if "seconds" in vit:
            row["memory_ratio_vitmatte_over_mematte"] = vit["peak_gib"] / mem["peak_gib"]
            row["latency_ratio_vitmatte_over_mematte"] = vit["seconds"] / mem["seconds"]
        numbers[str(size)] = row
    return True, numbers, ""


def _forced_oom(work: Path):
    import numpy as np
    import torch

    from mematte_d2.inference.memory import MemoryBudgetError

    predictor = _predictor("mematte_s", "cuda")
    total = torch.cuda.get_device_properties(0).total_memory
    limit = 3 * 2**30
    torch.cuda.set_per_process_memory_fraction(limit / total)
    image, trimap = _pair(4096)
    try:
        result = predictor.predict(image, trimap)
    except MemoryBudgetError as exc:  # the named error after the retries
        return True, {"limit_gib": 3, "outcome": type(exc).__name__}, str(exc)[:200]
    retried = result.max_tokens is not None
    return True, {"limit_gib": 3, "outcome": "alpha", "retried": retried,
                  "final_max_tokens": result.max_tokens,
                  "alpha_finite": bool(np.isfinite(result.alpha).all())}, ""


def _sdpa_ops(fn) -> dict:
    """Counts of the scaled-dot-product-attention ops (kernels picked) while running fn."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    counts: dict[str, int] = {}
    for event in prof.events():
        if "scaled_dot_product" in event.name or "flash_attention" in event.name or \
                "efficient_attention" in event.name or "cudnn_attention" in event.name:
            counts[event.name] = counts.get(event.name, 0) + 1
    return counts


def _small_training_model(opts=()):
    import torch
    from detectron2.config import instantiate

    from mematte_d2.config import load_config

    torch.manual_seed(0)
    cfg = load_config(QUICK, ["model.backbone.pretrain_img_size=256", *opts])
    return instantiate(cfg.model).cuda().train()


def _host_batch(size: int, n: int = 2) -> list[dict]:
    import torch

    batch = []
    for i in range(n):
        image, trimap = _pair(size, seed=i)
        batch.append({"image": torch.from_numpy(image).permute(2, 0, 1).float().pin_memory(),
                      "trimap": torch.from_numpy(trimap)[None].float().pin_memory(),
                      "alpha": torch.rand(1, size, size).pin_memory()})
    return batch


def _sdpa_kernels(work: Path):
    import torch

    model = _small_training_model()
    batch = _host_batch(256)

    def train_step():
        with torch.autocast("cuda", torch.float16):
            losses = model(batch)
        sum(losses.values()).backward()

    window = next(b for b in model.backbone.blocks if getattr(b, "window_size", 0) > 0)
    captured = {}

    def capture(module, args):  # keeps the block's first input; returns None: input unchanged
        captured.setdefault("x", args[0])

    hook = window.register_forward_pre_hook(capture)
    train_step()
    hook.remove()

    def window_step():
        with torch.autocast("cuda", torch.float16):
            out = window(captured["x"].detach().requires_grad_())
        out.float().sum().backward()

    predictor = _predictor("mematte_s", "cuda", "fp16")
    image, trimap = _pair(1024)
    numbers = {"routed_training_step": _sdpa_ops(train_step),
               "window_attention_rel_pos": _sdpa_ops(window_step),
               "inference_1024": _sdpa_ops(lambda: predictor.predict(image, trimap))}
    return True, numbers, ""


def _train_amp(work: Path):
    import itertools

    import torch
    from detectron2.utils.events import EventStorage

    from mematte_d2.engine import MattingStepRunner

    numbers, ok = {}, True
    for dtype, steps in ((torch.float16, 50), (torch.bfloat16, 20)):
        model = _small_training_model()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], 1e-4)
        runner = MattingStepRunner(model, itertools.repeat(_host_batch(256)), optimizer, seed=0,
                                   device=torch.device("cuda"), amp_dtype=dtype,
                                   clip_grad_norm=1.0)
        losses, skipped = [], 0
        with EventStorage(0) as storage:
            for it in range(steps):
                runner.iter = storage.iter = it
                scale = runner.grad_scaler.get_scale() if runner.grad_scaler else None
                runner.run_step()
                losses.append(storage.latest()["total_loss"][0])
                if runner.grad_scaler and runner.grad_scaler.get_scale() < scale:
                    skipped += 1
        name = str(dtype).removeprefix("torch.")
        numbers[name] = {"steps": steps, "first_loss": losses[0], "last_loss": losses[-1],
                         "losses_finite": all(map(math.isfinite, losses)),
                         "skipped_steps": skipped,
                         "loss_scale": runner.grad_scaler.get_scale() if runner.grad_scaler
                         else None}
        ok &= numbers[name]["losses_finite"] and skipped < steps // 2
    return ok, numbers, ""


def _synthetic_env(work: Path) -> dict:
    """Environment of a training command on a small synthetic set (written once)."""
    from mematte_d2.data.synthetic import generate_synthetic_dataset

    root = work / "datasets"
    if not (root / "synthetic").exists():
        generate_synthetic_dataset(root / "synthetic", num_train=8, num_bg=4, num_test=2,
                                   size=256, test_size=256, seed=0)
    return dict(os.environ, MEMATTE_DATASETS=str(root))


# The synthetic crops are 128 px: a position table of that grid, so that no interpolation
# (whose CUDA backward has no deterministic kernel, docs/determinism.md) runs in training.
_TRAIN_OPTS = ["model.backbone.pretrain_img_size=128", "train.eval_period=0",
               "train.vis_period=0", "train.log_period=5", "dataloader.train.num_workers=0"]


def _train(args: list[str], env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, TRAIN_NET, "--config-file", QUICK, *args], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"training command failed: {done.stderr.strip().splitlines()[-1:]}")
    return done


def _weights(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def _max_weight_diff(a: dict, b: dict) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a if a[k].numel())


def _train_resume(work: Path):
    import signal

    env = _synthetic_env(work)
    opts = [*_TRAIN_OPTS, "train.device=cuda", "train.deterministic=True", "train.max_iter=20",
            "train.checkpointer.period=8"]
    straight, killed = work / "resume_straight", work / "resume_killed"
    _train([*opts, f"train.output_dir={straight}"], env)
    proc = subprocess.Popen([sys.executable, TRAIN_NET, "--config-file", QUICK, *opts,
                             f"train.output_dir={killed}"], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (killed / "last_checkpoint").is_file() and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    interrupted = not (killed / "model_final.pth").exists()
    _train(["--resume", *opts, f"train.output_dir={killed}"], env)
    a, b = _weights(straight / "model_final.pth"), _weights(killed / "model_final.pth")
    equal = a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
    numbers = {"interrupted_before_the_end": interrupted, "weights_equal": equal,
               "max_weight_diff": 0.0 if equal else _max_weight_diff(a, b)}
    return equal and interrupted, numbers, "" if equal else "resumed weights differ"


def _gloo_training(work: Path):
    env = _synthetic_env(work)
    out = work / "gloo"
    start = time.monotonic()
    _train(["--num-gpus", "2", *_TRAIN_OPTS, "train.device=cpu", "train.max_iter=6",
            "train.checkpointer.period=100", f"train.output_dir={out}"], env)
    return (out / "model_final.pth").is_file(), {"seconds": time.monotonic() - start}, ""


def _nccl_equals_one_process(work: Path):
    env = _synthetic_env(work)
    opts = [*_TRAIN_OPTS, "train.device=cuda", "train.deterministic=True", "train.max_iter=6",
            "train.checkpointer.period=100", "dataloader.train.total_batch_size=4",
            "train.reference_world_size=0"]
    _train(["--num-gpus", "1", *opts, f"train.output_dir={work / 'one'}"], env)
    _train(["--num-gpus", "2", *opts, f"train.output_dir={work / 'two'}"], env)
    diff = _max_weight_diff(_weights(work / "one/model_final.pth"),
                            _weights(work / "two/model_final.pth"))
    # BatchNorm statistics come from each rank's half batch: close, not bit-identical
    return diff <= 1e-2, {"max_weight_diff": diff}, ""


def _export(work: Path):
    from mematte_d2.export import export_onnx

    predictor = _predictor("mematte_s", "cuda")
    path = export_onnx(predictor.model, work / "mematte_s.onnx", keep_ratio=0.25)
    return path.is_file(), {"onnx_mib": path.stat().st_size / 2**20,
                            "model_device": str(next(predictor.model.parameters()).device)}, ""


def _gpu_tests(work: Path):
    done = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p",
                           "no:cacheprovider", str(REPO / "tests")], cwd=REPO,
                          capture_output=True, text=True)
    last = (done.stdout.strip().splitlines() or ["no output"])[-1]
    return done.returncode == 0, {"summary": last}, ""


CHILD_CHECKS: dict[str, Callable] = {
    "environment": _environment, "cuda_equals_cpu": _cuda_equals_cpu,
    "predictor_sizes": _predictor_sizes, "mematte_vs_vitmatte": _mematte_vs_vitmatte,
    "forced_oom": _forced_oom, "sdpa_kernels": _sdpa_kernels, "train_amp": _train_amp,
    "train_resume": _train_resume, "gloo_training": _gloo_training, "export": _export,
    "nccl_equals_one_process": _nccl_equals_one_process, "gpu_tests": _gpu_tests,
}


if __name__ == "__main__":
    sys.exit(main())
