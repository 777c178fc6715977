"""Engine pieces on their own: overrides, schedule, layer decay, resumable loader, step runner."""

import itertools
from unittest import mock

import pytest
import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.utils.events import EventStorage

from mematte_d2.config import ConfigKeyError, apply_overrides
from mematte_d2.data.resumable import build_resumable_train_loader
from mematte_d2.engine import MattingStepRunner, ViTLayerDecay, warmup_multistep

MODEL_CFG = "configs/common/models/mematte_s.py"


def test_overrides_accept_known_keys_and_none():
    cfg = LazyConfig.load(MODEL_CFG)
    apply_overrides(
        cfg,
        [
            "model.backbone.router=LocalRouter",
            "model.backbone.keep_ratio=0.4",
            "model.backbone.max_tokens=None",
            "model.teacher_backbone=None",
        ],
    )
    assert cfg.model.backbone.router == "LocalRouter"
    assert cfg.model.backbone.keep_ratio == pytest.approx(0.4)
    assert cfg.model.backbone.max_tokens is None
    assert cfg.model.teacher_backbone is None


def test_override_of_a_target_argument_the_config_left_at_default():
    cfg = LazyConfig.load(MODEL_CFG)
    apply_overrides(cfg, ["model.backbone.inference_keep_ratio=0.3"])
    assert cfg.model.backbone.inference_keep_ratio == pytest.approx(0.3)


@pytest.mark.parametrize(
    "override, named",
    [
        ("model.backbone.keep_ration=0.3", "model.backbone.keep_ration"),
        ("model.bakbone.router=LTRM", "model.bakbone"),
        ("model.tile_size.x=3", "model.tile_size"),
        ("model.tile_size", "model.tile_size"),
    ],
)
def test_unknown_override_keys_are_named(override, named):
    cfg = LazyConfig.load(MODEL_CFG)
    with pytest.raises(ConfigKeyError, match=named.replace(".", r"\.")):
        apply_overrides(cfg, [override])


def test_schedule_follows_max_iter():
    sched = warmup_multistep(1000, [0.5, 0.8], [1.0, 0.1, 0.01], warmup_iters=100)
    assert sched(0.0) == pytest.approx(0.001)
    assert sched(0.2) == pytest.approx(1.0)
    assert sched(0.6) == pytest.approx(0.1)
    assert sched(0.9) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="milestones"):
        warmup_multistep(1000, [0.8, 0.5], [1.0, 0.1, 0.01])
    with pytest.raises(ValueError, match="values"):
        warmup_multistep(1000, [0.5], [1.0, 0.1, 0.01])
    assert warmup_multistep(1, [0.5, 0.6], [1.0, 0.1, 0.01], warmup_iters=0)(0.0) == 1.0


def test_layer_decay_groups_of_the_recipe():
    # the recipe ties the layer decay to its student: 12 blocks
    cfg = LazyConfig.load("configs/Composition-1K/mematte_s_topk0.25.py")
    model = torch.nn.Module()
    model.backbone = torch.nn.Module()
    model.backbone.pos_embed = torch.nn.Parameter(torch.zeros(1, 4, 8))
    model.backbone.blocks = torch.nn.ModuleList([torch.nn.Linear(8, 8) for _ in range(12)])
    model.backbone.norm = torch.nn.LayerNorm(8)
    model.decoder = torch.nn.Linear(8, 1)
    model.teacher_backbone = torch.nn.Linear(8, 8).requires_grad_(False)
    cfg.optimizer.params.model = model
    opt = instantiate(cfg.optimizer)
    groups = {id(p): g for g in opt.param_groups for p in g["params"]}
    base = 5e-4
    assert groups[id(model.backbone.pos_embed)]["lr"] == pytest.approx(base * 0.65**13)
    assert groups[id(model.backbone.pos_embed)]["weight_decay"] == 0
    assert groups[id(model.backbone.blocks[11].weight)]["lr"] == pytest.approx(base * 0.65)
    assert groups[id(model.backbone.blocks[0].weight)]["lr"] == pytest.approx(base * 0.65**12)
    assert groups[id(model.backbone.norm.weight)]["weight_decay"] == 0
    assert groups[id(model.decoder.weight)]["lr"] == pytest.approx(base)
    assert groups[id(model.decoder.weight)]["weight_decay"] == pytest.approx(0.1)
    assert id(model.teacher_backbone.weight) not in groups
    with pytest.raises(ValueError, match="decay_rate"):
        ViTLayerDecay(12, 1.5)



def _draw_mapper(item: dict) -> dict:
    """A mapper drawing from the global RNGs, as augmentations do."""
    return {"id": item["id"], "noise": torch.rand(1).item()}


def _batches(loader, start_iter: int, count: int) -> list:
    loader.batch_sampler.start_iter = start_iter
    return [[(s["id"], s["noise"]) for s in batch] for batch in itertools.islice(loader, count)]


@pytest.mark.parametrize("workers", [0, 2])
def test_resumable_loader_restarts_exactly(workers):
    dicts = [{"id": i} for i in range(7)]
    loader = build_resumable_train_loader(dicts, _draw_mapper, 3, num_workers=workers, seed=5)
    full = _batches(loader, 0, 6)
    resumed = _batches(build_resumable_train_loader(dicts, _draw_mapper, 3, workers, 5), 4, 2)
    assert resumed == full[4:]
    assert all(len(b) == 3 for b in full)
    other = _batches(build_resumable_train_loader(dicts, _draw_mapper, 3, workers, 6), 0, 6)
    assert other != full


def test_resumable_loader_rejects_uneven_batches():
    with pytest.raises(ValueError, match="total_batch_size"):
        build_resumable_train_loader([{"id": 0}], _draw_mapper, 0)


class _NoisyModel(torch.nn.Module):
    """Loss uses the global torch RNG like Gumbel routing does."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(3))

    def forward(self, batch):
        noise = torch.rand(3)
        return {"loss": ((self.w - noise) ** 2).sum() * len(batch)}


def _run_steps(model, start: int, stop: int, clip=None):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    runner = MattingStepRunner(
        model, itertools.repeat([{}]), opt, seed=3, device=torch.device("cpu"),
        clip_grad_norm=clip,
    )
    with EventStorage(start) as storage:
        for it in range(start, stop):
            runner.iter = storage.iter = it
            runner.run_step()
    return model.w.detach().clone()


def test_step_runner_noise_depends_on_iteration_only():
    straight = _run_steps(_NoisyModel(), 0, 4)
    model = _NoisyModel()
    _run_steps(model, 0, 2)
    torch.manual_seed(1234)  # whatever happened in between must not matter
    torch.rand(10)
    assert torch.equal(_run_steps(model, 2, 4), straight)


def test_step_runner_clips_and_stops_on_nan():
    model = _NoisyModel()
    before = model.w.detach().clone()
    after = _run_steps(model, 0, 1, clip=1e-3)
    assert (after - before).norm() <= 0.1 * 1e-3 + 1e-7

    class _Nan(_NoisyModel):
        def forward(self, batch):
            return {"loss_bad": self.w.sum() * float("nan")}

    with pytest.raises(FloatingPointError, match="loss_bad"):
        _run_steps(_Nan(), 0, 1)


def test_training_precision_as_released_and_fp32_on_cpu(caplog):
    from mematte_d2.engine.step import training_autocast_dtype

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    recipe = LazyConfig.load("configs/common/train.py").train.amp
    assert training_autocast_dtype(recipe, cuda) == torch.float16  # the release's AMP
    with caplog.at_level("INFO", logger="mematte_d2.engine.step"):
        assert training_autocast_dtype(recipe, cpu) is None
    assert [r.message for r in caplog.records] == [
        "train.amp: float16 autocast needs CUDA; training in float32 on the CPU"
    ]
    bf16 = {"enabled": True, "precision": "bfloat16"}
    with mock.patch.object(torch.cuda, "get_device_capability", return_value=(8, 0)):
        assert training_autocast_dtype(bf16, cpu) == training_autocast_dtype(bf16, cuda)
    assert training_autocast_dtype(bf16, cpu) == torch.bfloat16
    assert training_autocast_dtype({"enabled": False, "precision": "float16"}, cuda) is None
    for bad in ("int8", "fp32"):
        with pytest.raises(ValueError, match="train.amp.precision"):
            training_autocast_dtype({"enabled": True, "precision": bad}, cpu)


def test_bf16_refused_on_gpus_that_only_emulate_it():
    from mematte_d2.engine.step import training_autocast_dtype
    from mematte_d2.utils.precision import autocast_dtype

    def capability(device=None):  # GPU 0 an A100, the run's GPU 1 a V100 (bf16 emulated only)
        return (7, 0) if device is not None and torch.device(device).index == 1 else (8, 0)

    cuda = torch.device("cuda", 1)
    with mock.patch.multiple(torch.cuda, get_device_capability=capability,
                             current_device=mock.Mock(return_value=0),
                             is_bf16_supported=mock.Mock(return_value=True),
                             get_device_name=mock.Mock(return_value="Tesla V100")):
        with pytest.raises(ValueError, match="precision='bf16': Tesla V100 has no native bf"):
            autocast_dtype("bf16", cuda)
        with pytest.raises(ValueError, match="train.amp.precision='bfloat16': Tesla V100"):
            training_autocast_dtype({"enabled": True, "precision": "bfloat16"}, cuda)
        assert autocast_dtype("fp16", cuda) == torch.float16


def test_step_runner_scales_fp16_gradients_on_cuda_only():
    model = _NoisyModel()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def runner(device, dtype):
        return MattingStepRunner(model, iter([]), opt, seed=0, device=torch.device(device),
                                 amp_dtype=dtype)

    assert runner("cpu", None).grad_scaler is None
    assert runner("cpu", torch.bfloat16).grad_scaler is None
    assert runner("cuda", torch.bfloat16).grad_scaler is None
    scaled = runner("cuda", torch.float16)
    assert isinstance(scaled.grad_scaler, torch.amp.GradScaler)
    assert "grad_scaler" in scaled.state_dict()


def test_sheet_routing_maps_place_tokens_on_their_patches_when_the_size_is_not_aligned():
    from mematte_d2.engine.visualize import matting_sheet_row

    h = w = 40  # padded to 48: a 3 x 3 token grid whose last row and column are cut
    sample = {"image": torch.full((3, h, w), 200.0), "trimap": torch.full((1, h, w), 128.0)}
    routing = torch.zeros(1, 3, 3, dtype=torch.bool)
    routing[0, 2, 2] = True  # the patch of pixels 32-47, of which 32-39 are in the image
    output = {"alpha": torch.zeros(1, h, w), "routing": routing}
    row = matting_sheet_row(sample, output)
    overlay = row[:, -w:]  # the last tile: the routing map
    assert (overlay[32:, 32:] != overlay[0, 0]).all()  # tinted
    assert (overlay[:32, :] == overlay[0, 0]).all() and (overlay[:, :32] == overlay[0, 0]).all()


def test_config_yaml_is_written_whole_and_never_through_a_link(tmp_path):
    from mematte_d2.engine.setup import save_config

    cfg = LazyConfig.load("configs/quick_schedules/mematte_tiny_synthetic.py")
    target = tmp_path / "elsewhere.yaml"
    target.write_text("keep me")
    (tmp_path / "config.yaml").symlink_to(target)
    path = save_config(cfg, tmp_path)
    assert not path.is_symlink() and target.read_text() == "keep me"
    assert LazyConfig.load(str(path)).train.max_iter == cfg.train.max_iter
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "elsewhere.yaml"]
