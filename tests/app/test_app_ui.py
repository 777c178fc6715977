"""The page's wiring: one run at a time on the model, nothing that loads from outside."""

import os

import pytest

gr = pytest.importorskip("gradio", reason="the web app needs the `app` extra (pip install .[app])")

# ruff: noqa: E402 (the app modules import gradio)
from mematte_d2.app.handler import MattingApp
from mematte_d2.app.ui import THEME, build_blocks


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_blocks(MattingApp(None, tmp_path_factory.mktemp("work"), 100))


def test_runs_queue_one_at_a_time_on_the_model(demo):
    (run_id,) = [i for i, fn in demo.fns.items() if fn.name == "run_request"]
    run = demo.fns[run_id]
    assert run.queue and run.concurrency_limit == 1 and run.concurrency_id == "model"
    (stop,) = [fn for fn in demo.fns.values() if fn.name == "stop"]
    assert not stop.queue  # not stuck behind the run it stops
    assert any(run_id in fn.get_config()["cancels"] for fn in demo.fns.values())


def test_no_analytics_and_system_fonts_only(demo):
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"
    assert demo.analytics_enabled is False
    fonts = [*THEME._font, *THEME._font_mono]
    assert fonts and all(isinstance(font, str) for font in fonts)  # no GoogleFont to fetch


def test_inputs_are_uploads_not_paths(demo):
    texts = [b for b in demo.blocks.values() if isinstance(b, gr.Textbox)]
    assert [b.elem_id for b in texts] == ["memory"]
    assert all(b.file_count == "single" for b in demo.blocks.values() if isinstance(b, gr.File))
