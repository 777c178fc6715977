"""MattingTrainer end to end on a tiny synthetic set: training, DDP (gradients all-reduced in the
training precision), resume, eval-only, errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import cv2
import pytest
import torch
import torch.distributed as dist
from detectron2.config import LazyConfig
from detectron2.engine import hooks
from tiny_models import (
    QUICK,
    REPO,
    TINY_TRAIN_OPTS,
    cli_env,
    register_synthetic_sets,
    tiny_in_process_opts,
)
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

from mematte_d2.checkpoint import CheckpointError
from mematte_d2.cli.train import evaluate
from mematte_d2.config import apply_overrides
from mematte_d2.data import register_evaluation_dataset
from mematte_d2.engine import MattingTrainer, gradient_compression_hook
from mematte_d2.engine import trainer as trainer_module
from mematte_d2.utils.distributed import free_port, launch

pytestmark = pytest.mark.integration

TRAIN_NET = str(REPO / "tools/lazyconfig_train_net.py")


def _cfg(output_dir: Path, *extra: str):
    return apply_overrides(LazyConfig.load(QUICK), tiny_in_process_opts(output_dir) + list(extra))


def _total_losses(output_dir: Path) -> list[float]:
    lines = (output_dir / "metrics.json").read_text().splitlines()
    return [json.loads(line)["total_loss"] for line in lines if "total_loss" in line]


def test_loss_decreases_and_teacherless_routing_trains(tiny_datasets_root, tmp_path):
    cfg = _cfg(tmp_path, "train.max_iter=60", "train.eval_period=0", "optimizer.lr=2e-3",
               "train.checkpointer.period=1000")
    trainer = MattingTrainer(cfg)
    trainer.resume_or_load(resume=False)
    results = trainer.train()
    losses = _total_losses(tmp_path)
    assert len(losses) == 60
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    assert (tmp_path / "model_final.pth").is_file()
    assert set(results["engine_tiny_test"]["matting"]) >= {"SAD", "MSE_x1e3", "Grad", "Conn",
                                                           "keep_ratio"}
    assert (tmp_path / "inference/engine_tiny_test/matting_per_image.csv").is_file()


def test_router_refiner_policy_swap_by_name(tiny_datasets_root, tmp_path):
    cfg = _cfg(
        tmp_path,
        "model.backbone.router=LocalRouter",
        "model.backbone.refiner=MLPRefiner",
        "model.backbone.routing_policy=FixedTopK",
        "train.max_iter=1",
    )
    trainer = MattingTrainer(cfg)
    backbone = trainer.model.backbone
    assert type(backbone.routers[0]).__name__ == "LocalRouter"
    assert type(backbone.blocks[1].efficient_block).__name__ == "MLPRefiner"
    assert type(backbone.routing_policy).__name__ == "FixedTopK"


def test_teacher_is_frozen_and_outside_the_optimizer(tiny_datasets_root, tmp_path):
    cfg = _cfg(tmp_path, "train.max_iter=2")
    vitmatte = LazyConfig.load(str(REPO / "configs/common/models/vitmatte_s.py"))
    cfg.model.teacher_backbone = vitmatte.model.backbone
    cfg.model.teacher_backbone.update(
        embed_dim=32, num_heads=2, depth=4, window_size=4, window_block_indexes=[0, 2],
        residual_block_indexes=[1, 3]
    )
    trainer = MattingTrainer(cfg)
    teacher = trainer.model.teacher_backbone
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    optimized = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert not any(id(p) in optimized for p in teacher.parameters())
    trainer.train()
    assert not teacher.training
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())


def _ddp_worker(output_dir: str, datasets: str, extra: tuple[str, ...]) -> None:
    register_synthetic_sets(Path(datasets) / "synthetic", "engine_tiny")
    cfg = _cfg(Path(output_dir), "train.max_iter=3", "train.eval_period=0",
               "train.checkpointer.period=1000", *extra)
    trainer = MattingTrainer(cfg)
    trainer.resume_or_load(resume=False)
    results = trainer.train()
    rank = torch.distributed.get_rank()
    params = {k: v.detach().clone() for k, v in trainer.model.module.named_parameters()}
    torch.save(params, Path(output_dir) / f"params_rank{rank}.pt")
    if rank == 0:
        final = results["engine_tiny_test"]["matting"]
        (Path(output_dir) / "final_eval.json").write_text(json.dumps(final))


@pytest.mark.parametrize("sync", ["False", "True"])  # "True": the recipe's setting
def test_two_process_training_evaluates_the_saved_model(tiny_datasets_root, tmp_path, sync):
    """Ranks keep identical weights; the end-of-training evaluation (each rank a shard of the
    test set) equals a one-process evaluation of model_final.pth, also when BatchNorm
    statistics are not synced during training (each rank then holds its own)."""
    sync_option = f"train.ddp.forward_sync_buffers={sync}"
    launch(_ddp_worker, 2, device_type="cpu",
           args=(str(tmp_path), str(tiny_datasets_root), (sync_option,)))
    rank0 = torch.load(tmp_path / "params_rank0.pt")
    rank1 = torch.load(tmp_path / "params_rank1.pt")
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)

    cfg = _cfg(tmp_path / "eval", f"train.init_checkpoint={tmp_path / 'model_final.pth'}")
    alone = evaluate(cfg)["engine_tiny_test"]["matting"]
    during = json.loads((tmp_path / "final_eval.json").read_text())
    for name in ("SAD", "MSE_x1e3", "Grad", "Conn"):
        assert during[name] == pytest.approx(alone[name], rel=1e-6, abs=1e-9), name


def _cli(args: list[str], env: dict, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, TRAIN_NET, "--config-file", QUICK, *args],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=600, **kwargs,
    )


def _cli_opts(output_dir: Path, max_iter: int) -> list[str]:
    return TINY_TRAIN_OPTS + [
        f"train.output_dir={output_dir}",
        f"train.max_iter={max_iter}",
        "train.checkpointer.period=20",
        "train.eval_period=0",
    ]


def test_resume_after_sigkill_matches_uninterrupted_run(tiny_datasets_root, tmp_path):
    env = cli_env(tiny_datasets_root)
    straight = tmp_path / "straight"
    done = _cli(_cli_opts(straight, 100), env)
    assert done.returncode == 0, done.stderr[-3000:]

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, TRAIN_NET, "--config-file", QUICK, *_cli_opts(killed, 100)],
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 600
    while not (killed / "last_checkpoint").is_file() and proc.poll() is None:
        assert time.time() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # mid-run, maybe mid-write of a later checkpoint
    proc.wait()
    assert not (killed / "model_final.pth").exists(), "the run finished before it was killed"
    resumed = _cli(["--resume", *_cli_opts(killed, 100)], env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resumed from" in resumed.stderr + resumed.stdout

    a = torch.load(straight / "model_final.pth", weights_only=False)["model"]
    b = torch.load(killed / "model_final.pth", weights_only=False)["model"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_eval_only_prints_metrics_and_bad_inputs_stop_early(tiny_datasets_root, tmp_path):
    env = cli_env(tiny_datasets_root)
    trained = tmp_path / "trained"
    run = _cli(_cli_opts(trained, 2), env)
    assert run.returncode == 0, run.stderr[-3000:]

    weights = trained / "model_final.pth"
    evaluated = _cli(
        ["--eval-only", *TINY_TRAIN_OPTS, f"train.output_dir={tmp_path / 'eval'}",
         f"train.init_checkpoint={weights}"], env
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "copypaste: SAD,MSE_x1e3,Grad,Conn" in evaluated.stderr + evaluated.stdout
    metrics_file = tmp_path / "eval/inference/synthetic_test/matting_metrics.json"
    metrics = json.loads(metrics_file.read_text())
    assert metrics["metrics"]["num_images"] == 2

    typo = _cli([*TINY_TRAIN_OPTS, "train.max_iters=5"], env)
    assert typo.returncode == 2 and "'train.max_iters' does not exist" in typo.stderr

    missing = _cli([*TINY_TRAIN_OPTS, f"train.output_dir={tmp_path / 'missing'}"],
                   cli_env(tmp_path / "nowhere"))
    assert missing.returncode == 2, missing.stderr[-2000:]
    assert f"{tmp_path / 'nowhere/synthetic/train/fg'}" in missing.stderr
    assert not (tmp_path / "missing/metrics.json").exists()


def test_checkpoint_of_another_architecture_is_refused(tiny_datasets_root, tmp_path):
    wide = MattingTrainer.build_model(_cfg(tmp_path, "model.backbone.embed_dim=64",
                                           "model.decoder.in_chans=64"))
    path = tmp_path / "wide.pth"
    torch.save({"model": wide.state_dict()}, path)
    cfg = _cfg(tmp_path / "run", f"train.init_checkpoint={path}", "train.max_iter=1")
    trainer = MattingTrainer(cfg)
    with pytest.raises(CheckpointError, match="does not fit"):
        trainer.resume_or_load(resume=False)
    assert trainer.iter == 0

    # A last checkpoint of another architecture in the output dir is refused on resume, before
    # any weight or the iteration is touched (detectron2 alone would load what fits).
    run_dir = Path(cfg.train.output_dir)
    torch.save({"model": wide.state_dict(), "iteration": 7}, run_dir / "model_0000007.pth")
    (run_dir / "last_checkpoint").write_text("model_0000007.pth")
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(CheckpointError, match="cannot resume from .*model_0000007.pth.*another"):
        trainer.resume_or_load(resume=True)
    assert trainer.iter == 0 and trainer.start_iter == 0
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_demo_job_reports_before_and_after(tiny_datasets_root, tmp_path):
    out = tmp_path / "demo"
    run = subprocess.run(
        [sys.executable, str(REPO / "tools/run_demo.py"), "--output", str(out), *TINY_TRAIN_OPTS,
         "train.max_iter=60", "train.eval_period=0", "optimizer.lr=2e-3"],
        env=cli_env(tiny_datasets_root), cwd=tmp_path, capture_output=True, text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["after_training"]["SAD"] < report["before_training"]["SAD"]
    assert "iteration 60" in run.stdout and str(out / "report_sheet.png") in run.stdout
    sheet = (out / "report_sheet.png").read_bytes()
    assert sheet.startswith(b"\x89PNG")
    assert (out / "inference/synthetic_test/matting_per_image.csv").is_file()


def test_visualizer_logs_routing_sheets(tiny_datasets_root, tmp_path):
    cfg = _cfg(tmp_path, "train.max_iter=2", "train.vis_period=1", "train.eval_period=0",
               "train.checkpointer.period=1000")
    trainer = MattingTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    sheets = sorted((tmp_path / "vis").glob("iter_*.png"))
    assert [p.name for p in sheets] == ["iter_0000001.png", "iter_0000002.png"]
    sheet = cv2.imread(str(sheets[-1]))
    routers = len(trainer.model.backbone.routers)
    # two 80 px test images; per row: image, trimap, alpha, ground truth, one map per router
    assert sheet.shape[0] == 2 * (80 + 4)
    assert sheet.shape[1] == (4 + routers) * 80 + (3 + routers) * 4
    assert list(tmp_path.glob("events.out.tfevents.*"))


def test_best_checkpoint_only_by_a_validation_set(tiny_datasets_root, tmp_path):
    """Paper recipes evaluate on the test set but never choose model_best.pth by it."""
    synthetic = tiny_datasets_root / "synthetic/test"
    for name in ("engine_tiny_val", "engine_tiny_test2"):
        register_evaluation_dataset(name, synthetic / "image", synthetic / "alpha",
                                    synthetic / "trimap")
    common = ("train.max_iter=2", "train.eval_period=1", "train.checkpointer.period=1000")
    on_test = MattingTrainer(_cfg(tmp_path / "test", *common))
    assert not any(isinstance(h, hooks.BestCheckpointer) for h in on_test._hooks)
    on_test.train()
    assert not (tmp_path / "test/model_best.pth").exists()

    validation = "train.validation_set=engine_tiny_val"
    two_test_sets = "dataloader.test.dataset=[engine_tiny_test,engine_tiny_test2]"
    validated = MattingTrainer(_cfg(tmp_path / "val", *common, validation, two_test_sets))
    results = validated.train()
    assert (tmp_path / "val/model_best.pth").is_file()
    # the test results, keyed by set name with two test sets as with one
    assert set(results) == {"engine_tiny_test", "engine_tiny_test2"}
    assert set(results["engine_tiny_test2"]["matting"]) >= {"SAD"}

    with pytest.raises(ValueError, match="train.validation_set='engine_tiny_test' is also a test"):
        MattingTrainer(_cfg(tmp_path / "bad", "train.validation_set=engine_tiny_test"))


CPU, CUDA = torch.device("cpu"), torch.device("cuda", 1)


def test_compression_follows_the_training_precision():
    assert gradient_compression_hook(CUDA, torch.float16) is default_hooks.fp16_compress_hook
    assert gradient_compression_hook(CUDA, torch.bfloat16) is default_hooks.bf16_compress_hook
    assert gradient_compression_hook(CUDA, None) is None  # fp32: no scaler, no fp16
    assert gradient_compression_hook(CPU, torch.bfloat16) is default_hooks.bf16_compress_hook
    assert gradient_compression_hook(CPU, torch.float16) is None  # no GradScaler on the CPU
    assert gradient_compression_hook(CPU, None) is None


@pytest.fixture
def one_rank_gloo_group():
    """A gloo group of this process alone, reported to the trainer as a 2-rank job."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0,
                            world_size=1)
    try:
        with mock.patch.object(trainer_module.comm, "get_world_size", return_value=2):
            yield
    finally:
        dist.destroy_process_group()


def _ddp_cfg(**ddp):
    cfg = LazyConfig.load("configs/common/train.py")
    cfg.train.ddp.update(ddp)
    return cfg


@pytest.mark.parametrize("amp_dtype, hook", [
    (torch.bfloat16, default_hooks.bf16_compress_hook), (None, None)])
def test_gloo_ddp_registers_the_hook_and_large_gradients_stay_finite(one_rank_gloo_group,
                                                                      amp_dtype, hook):
    model = torch.nn.Linear(2, 1, bias=False)
    with mock.patch.object(torch.nn.parallel.DistributedDataParallel, "register_comm_hook",
                           autospec=True,
                           side_effect=torch.nn.parallel.DistributedDataParallel
                           .register_comm_hook) as register:
        wrapped = MattingTrainer._wrap_ddp(_ddp_cfg(), model, amp_dtype)
    assert [c.kwargs["hook"] for c in register.call_args_list] == ([hook] if hook else [])
    wrapped(torch.full((1, 2), 1e5)).sum().backward()  # a gradient fp16 cannot hold (>65504)
    assert torch.isfinite(model.weight.grad).all()
    torch.testing.assert_close(model.weight.grad, torch.full((1, 2), 1e5), rtol=1e-2, atol=0)


def test_the_old_fp16_key_is_refused_by_name():
    with pytest.raises(ValueError, match="train.ddp.fp16_compression .*grad_compression"):
        MattingTrainer._wrap_ddp(_ddp_cfg(fp16_compression=True), torch.nn.Linear(1, 1))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp_dtype", [torch.float16, torch.bfloat16])
def test_nccl_ddp_all_reduces_in_the_amp_dtype(amp_dtype):
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0,
                            world_size=1)
    try:
        with mock.patch.object(trainer_module.comm, "get_world_size", return_value=2):
            model = torch.nn.Linear(2, 1, bias=False).cuda()
            wrapped = MattingTrainer._wrap_ddp(_ddp_cfg(), model, amp_dtype)
        with torch.autocast("cuda", amp_dtype):
            wrapped(torch.full((1, 2), 0.5, device="cuda")).sum().backward()
        assert model.weight.grad.dtype == torch.float32
        torch.testing.assert_close(model.weight.grad.cpu(), torch.full((1, 2), 0.5))
    finally:
        dist.destroy_process_group()
