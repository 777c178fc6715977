"""mematte-app's command line: which model it serves, and refusals before serving."""

import pytest

from mematte_d2.app import launch


def test_given_config_and_weights_are_served_as_given(tmp_path):
    config = tmp_path / "a.py"
    config.write_text("")
    assert launch.model_files(str(config), "w.pth") == (str(config), "w.pth")
    assert launch.model_files(str(config), None) == (str(config), None)


def test_default_is_the_demo_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="run `make demo`"):
        launch.model_files(None, None)
    demo = tmp_path / "output/demo"
    demo.mkdir(parents=True)
    (demo / "config.yaml").write_text("model: {}\n")
    (demo / "model_final.pth").write_bytes(b"")
    assert launch.model_files(None, None) == ("output/demo/config.yaml",
                                              "output/demo/model_final.pth")
    with pytest.raises(ValueError, match="--config-file is required"):
        launch.model_files(None, "other.pth")


def test_bad_setup_exits_2_before_serving(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert launch.main([]) == 2
    assert "--config-file is required" in capsys.readouterr().err
    assert launch.main(["--config-file", str(tmp_path / "missing.py")]) == 2
    assert "missing.py" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        launch.main(["--config-file", "x.py", "--max-pixels", "0"])
    assert exit_info.value.code == 2


def test_demo_config_loads(tmp_path, monkeypatch):
    """The config.yaml the demo saves is what the app loads by default."""
    from mematte_d2 import model_zoo
    from mematte_d2.cli.demo import DEMO_CONFIG
    from mematte_d2.config import load_config
    from mematte_d2.engine.setup import save_config

    cfg = model_zoo.get_config(DEMO_CONFIG)
    path = save_config(cfg, tmp_path)
    assert load_config(str(path), []).model.keys() == cfg.model.keys()
