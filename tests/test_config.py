"""One override dialect: load_config refuses bad keys, types and values; every CLI uses it."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from mematte_d2 import model_zoo
from mematte_d2.cli import benchmark, convert_checkpoint, demo, export, predict, train
from mematte_d2.config import ConfigError, ConfigKeyError, load_config
from mematte_d2.inference import memory_probe
from mematte_d2.modeling import MEMatte

QUICK = model_zoo.get_config_file("quick_schedules/mematte_tiny_synthetic.py")
MODEL = model_zoo.get_config_file("common/models/mematte_s.py")


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.max_iter=abc", "train.max_iter=abc: expected an integer"),
        ("train.amp.enabled=1", "expected a bool"),
        ("optimizer.lr=fast", "expected a number"),
        ("model.backbone.max_tokens=many", r"declared int \| None"),  # default None: annotation
        ("model.backbone.window_block_indexes=[0,2.5]", "item 2.5 is not an integer"),
        ("model.backbone.depth=[4]", "expected an integer"),
        ("model.decoder=3", "is a config node"),
        ("model.backbone=None", "model.backbone is a required part"),
        ("train.max_iter=None", "train.max_iter cannot be None"),
        ("train.checkpointer.period=0", r"train.checkpointer.period must be >= 1, got 0"),
        ("train.clip_grad.max_norm=0", r"must be > 0"),
        ("train.eval_period=-5", r"must be >= 0"),
        ("train.max_iter=[1", "cannot read the value"),
    ],
)
def test_wrong_types_and_values_are_refused_with_the_key_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(QUICK, [override])


def test_unknown_keys_list_config_keys_and_target_arguments():
    with pytest.raises(ConfigKeyError) as info:
        load_config(QUICK, ["model.backbone.nope=1"])
    text = str(info.value)
    assert "'model.backbone.nope' does not exist" in text
    assert "keep_ratio" in text and "inference_keep_ratio" in text  # config key, RoutedViT arg


@pytest.mark.parametrize("spelling", ["None", "null"])
def test_none_is_read_once_in_the_loader(spelling):
    cfg = load_config(MODEL, [f"model.teacher_backbone={spelling}",
                              f"model.backbone.max_tokens={spelling}"])
    assert cfg.model.teacher_backbone is None and cfg.model.backbone.max_tokens is None
    cfg = load_config(QUICK, [f"train.checkpointer.max_to_keep={spelling}"])
    assert cfg.train.checkpointer.max_to_keep is None


def test_accepted_values_keep_their_meaning():
    cfg = load_config(QUICK, [
        "train.output_dir=2024",  # a folder named 2024, not the number
        "model.backbone.keep_ratio=1",  # an integer where the config has a float
        "model.backbone.max_tokens=7",
        "model.backbone.inference_keep_ratio=0.3",  # a RoutedViT argument the config leaves out
        "train.amp.enabled=true",
        "model.backbone.window_block_indexes=[0,2]",
    ])
    assert cfg.train.output_dir == "2024"
    assert cfg.model.backbone.keep_ratio == 1 and cfg.model.backbone.max_tokens == 7
    assert cfg.model.backbone.inference_keep_ratio == pytest.approx(0.3)
    assert cfg.train.amp.enabled is True
    assert list(cfg.model.backbone.window_block_indexes) == [0, 2]


def test_missing_config_file_is_named():
    with pytest.raises(FileNotFoundError, match="no_such.py"):
        load_config("no_such.py")


def test_the_model_does_not_parse_strings_for_none():
    from mematte_d2.modeling import DetailCapture, RoutedViT

    with pytest.raises(TypeError, match="teacher_backbone must be an nn.Module or None"):
        MEMatte(backbone=RoutedViT(embed_dim=32, num_heads=2, depth=2, window_size=4,
                                   window_block_indexes=[0], residual_block_indexes=[1]),
                decoder=DetailCapture(in_chans=32), teacher_backbone="None")


# ------------------------------------------------------------------------- every entry point
class _ModelBuilt(BaseException):
    """Raised by a model constructor in these tests; no CLI handler catches it."""


@pytest.fixture
def no_model_building(monkeypatch):
    def refuse(self, *args, **kwargs):
        raise _ModelBuilt("a model was built before the override was checked")

    monkeypatch.setattr(MEMatte, "__init__", refuse)


def _exit_code(main, argv) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse's parser.error / parser.exit
        return e.code


def _predict_inputs(tmp: Path) -> list[str]:
    cv2.imwrite(str(tmp / "a.png"), np.zeros((32, 32, 3), np.uint8))
    cv2.imwrite(str(tmp / "a_trimap.png"), np.full((32, 32), 128, np.uint8))
    return ["--input", str(tmp / "a.png"), "--trimap", str(tmp / "a_trimap.png"),
            "--output", str(tmp / "out")]


def _entry_points(tmp: Path) -> dict:
    return {
        "train": (train.cli, ["--config-file", QUICK, f"train.output_dir={tmp / 'train'}"]),
        "demo": (demo.main, ["--output", str(tmp / "demo")]),
        "predict": (predict.main, ["--config-file", MODEL, *_predict_inputs(tmp)]),
        "convert_checkpoint": (convert_checkpoint.main,
                               ["check", str(tmp / "absent.pth"), "--config-file", MODEL]),
        "benchmark": (benchmark.main, ["--models", "mematte_s", "--output", str(tmp / "b")]),
        "memory_probe": (memory_probe.main, ["--config-file", MODEL]),
        "export": (export.main, ["--config-file", MODEL, "--format", "onnx", "--keep-ratio",
                                 "0.25", "--output", str(tmp / "m.onnx")]),
    }


@pytest.mark.parametrize(
    "cli", ["train", "demo", "predict", "convert_checkpoint", "benchmark", "memory_probe",
            "export"]
)
def test_every_cli_refuses_an_unknown_key_before_building_a_model(
    cli, tmp_path, capsys, no_model_building
):
    main, argv = _entry_points(tmp_path)[cli]
    assert _exit_code(main, argv + ["model.backbone.nope=1"]) == 2
    err = capsys.readouterr().err
    assert "model.backbone.nope" in err and "known here: depth, embed_dim" in err


@pytest.mark.parametrize("override", ["train.max_iter=abc", "train.checkpointer.period=0"])
@pytest.mark.parametrize("cli", ["train", "demo"])
def test_training_entry_points_refuse_bad_values_and_write_no_config(
    cli, override, tmp_path, capsys, no_model_building
):
    main, argv = _entry_points(tmp_path)[cli]
    assert _exit_code(main, argv + [override]) == 2
    assert override.split("=")[0] in capsys.readouterr().err
    assert not list(tmp_path.rglob("config.yaml"))


def test_a_list_replaces_a_string_only_where_the_target_takes_a_sequence():
    cfg = load_config(QUICK, ["dataloader.test.dataset=[synthetic_test,other_test]"])
    assert list(cfg.dataloader.test.dataset) == ["synthetic_test", "other_test"]
    with pytest.raises(ConfigError, match="expected a string"):
        load_config(QUICK, ["train.output_dir=[a,b]"])


# ------------------------------------------------------------------ overrides carry data only
@pytest.mark.parametrize(
    "override, message",
    [
        ("model={_target_:subprocess.run,args:[touch,x]}", "_target_ in an override value"),
        ("model.decoder={_target_:builtins.print}", "_target_ in an override value"),
        ("model.backbone.window_block_indexes=[0,{a:{_target_:os.system}}]", "_target_"),
        ("model.decoder._target_=builtins.print", "overrides cannot set _target_"),
        ("train.output_dir=${oc.env:HOME}", "interpolations"),
        ("train.output_dir='${oc.env:HOME}'", "interpolations"),
        ("train.output_dir=out/${oc.env:HOME}/x", "interpolations"),
        ("train.output_dir=${train.max_iter}", "interpolations"),
        ("train.max_iter=choice(1,2)", "sweeps"),
    ],
)
def test_overrides_that_could_run_code_or_read_the_environment_are_refused(override, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(QUICK, [override])
    assert str(info.value).startswith(override.split("=")[0] + "=")  # names the key


@pytest.mark.parametrize("cli", ["predict", "convert_checkpoint"])
def test_a_target_in_an_override_runs_nothing_and_exits_2(cli, tmp_path, capsys):
    created = tmp_path / "created_by_override"
    main, argv = _entry_points(tmp_path)[cli]
    override = f"model={{_target_:subprocess.run,args:[touch,'{created}']}}"
    assert _exit_code(main, argv + [override]) == 2
    assert not created.exists()
    err = capsys.readouterr().err.strip()
    assert "model=" in err and "_target_" in err and "\n" not in err  # one line, key named


def test_an_env_resolver_in_an_override_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MEMATTE_SECRET", "leaked")
    main, argv = _entry_points(tmp_path)["predict"]
    assert _exit_code(main, argv + ["model.backbone.router=${oc.env:MEMATTE_SECRET}"]) == 2
    err = capsys.readouterr().err
    assert "model.backbone.router" in err and "leaked" not in err


@pytest.mark.parametrize("name, homes", [
    ("load_config", {"mematte_d2/config.py"}),
    ("apply_overrides", {"mematte_d2/config.py"}),
    ("check_max_tokens", {"mematte_d2/modeling/routing/__init__.py"}),
    ("check_keep_ratio", {"mematte_d2/modeling/routing/__init__.py"}),
])
def test_one_public_home_per_helper(name, homes):
    """A helper is offered (``__all__``) by one module, not re-exported by a second package."""
    import ast

    root = Path(__file__).resolve().parents[1]
    offered = set()
    for path in (root / "mematte_d2").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__"
                                                     for t in node.targets)
                    and name in ast.literal_eval(node.value)):
                offered.add(path.relative_to(root).as_posix())
    assert offered == homes
