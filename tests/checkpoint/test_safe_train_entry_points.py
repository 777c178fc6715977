"""The training command line never runs code from a weights file: train.init_checkpoint,
--eval-only and --resume refuse a crafted `.pkl` or `.pth` by name (exit 2) and its code does
not run."""

import pytest
from hostile_weights import code_running_pickle, code_running_torch_file
from tiny_models import QUICK, ckpt_opts

from mematte_d2.cli.train import cli

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("kind", ["pkl", "pth"])
@pytest.mark.parametrize("mode", ["init_checkpoint", "eval-only", "resume"])
def test_train_command_refuses_code_running_weights(ckpt_datasets, tmp_path, capsys, mode, kind):
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    run.mkdir()
    evil = (code_running_pickle(run / "model_0000009.pkl", marker) if kind == "pkl"
            else code_running_torch_file(run / "model_0000009.pth", marker))
    args = ["--config-file", QUICK, *ckpt_opts(run), "train.max_iter=2"]
    if mode == "resume":
        (run / "last_checkpoint").write_text(evil.name)
        args.insert(0, "--resume")
    else:
        args.append(f"train.init_checkpoint={evil}")
        if mode == "eval-only":
            args.insert(0, "--eval-only")
    assert cli(args) == 2
    assert f"{evil}: refused to load: " in capsys.readouterr().err
    assert not marker.exists()
    assert not (run / "model_final.pth").exists()
