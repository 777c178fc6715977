"""The benchmark CLI on tiny models: table, CSV and plot; failing cases reported, not raised."""

import csv
import math

import matplotlib.image
import numpy as np
import pytest
from tiny_models import FAST_MEMATTE_OPTS, FAST_VITMATTE_OPTS

from mematte_d2.benchmark.cases import disc_trimap, outline_trimap
from mematte_d2.benchmark.report import INFERENCE_COLUMNS
from mematte_d2.cli.benchmark import build_parser, main, parse_args
from mematte_d2.modeling.decode_cover import plan_cover
from mematte_d2.modeling.tiling import tile_windows

pytestmark = pytest.mark.integration

SIZE = 64
# Every case on the CPU in fp32, so that a CUDA machine (whose default is CUDA with fp32, fp16
# and bf16 rows) produces the same one row per case as this CPU-only one.
CPU_FP32 = ["--device", "cpu", "--dtypes", "fp32"]


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_benchmark_writes_table_csv_and_plot(tmp_path):
    out = tmp_path / "bench"
    argv = ["--models", "mematte_s", "vitmatte_s", "vitmatte_s_dense", "--sizes", str(SIZE),
            "--repeats", "2",
            "--threads", "1", "--tile-size", "0", "--keep-ratio", "0.25", "--output", str(out),
            *CPU_FP32, *FAST_VITMATTE_OPTS]
    assert main(argv) == 0

    with open(out / "inference.csv", newline="") as f:
        assert tuple(csv.DictReader(f).fieldnames) == INFERENCE_COLUMNS
    rows = {r["model"]: r for r in _rows(out / "inference.csv")}
    assert set(rows) == {"mematte_s", "vitmatte_s", "vitmatte_s_dense"}
    tokens = (SIZE // 16) ** 2
    for row in rows.values():
        assert row["status"] == "ok", row
        assert float(row["latency_s"]) > 0 and int(row["timed_runs"]) == 2
        assert float(row["peak_memory_gb"]) >= float(row["memory_before_gb"]) > 0
        assert float(row["estimated_peak_gb"]) > 0
        assert int(row["tokens_total"]) == tokens and row["tile_size"] == "0"
    # Every routed block of the tiny MEMatte (blocks 2 and 5) keeps ceil(0.25 * N) tokens.
    assert rows["mematte_s"]["tokens_routed"] == ";".join([str(math.ceil(0.25 * tokens))] * 2)
    assert rows["vitmatte_s"]["tokens_routed"] == ""
    # Both attention implementations do the same arithmetic.
    gflops = {name: float(row["gflops"]) for name, row in rows.items()}
    assert gflops["vitmatte_s"] == gflops["vitmatte_s_dense"] > 0 and gflops["mematte_s"] > 0

    table = (out / "inference.md").read_text()
    assert "keep ratio 0.25" in table and "| Model | Size |" in table
    assert f"{math.ceil(0.25 * tokens)} / {tokens}" in table
    assert "| mematte_s / vitmatte_s |" in table  # the ratio tables
    assert "| mematte_s / vitmatte_s_dense |" in table
    image = matplotlib.image.imread(out / "inference.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image[..., :3].std() > 0


def test_cases_estimated_over_the_memory_limit_are_skipped(tmp_path):
    out = tmp_path / "bench"
    argv = ["--models", "vitmatte_s_dense", "--sizes", str(SIZE), "4096", "--repeats", "1",
            "--threads", "1", "--tile-size", "0", "--max-memory", "4GB", "--output", str(out),
            *CPU_FP32, *FAST_VITMATTE_OPTS]
    assert main(argv) == 0
    small, huge = _rows(out / "inference.csv")
    assert small["status"] == "ok", small
    # 65536 tokens, 2 heads, 3 score copies of 4 bytes: 96 GB of scores alone.
    assert huge["status"].startswith("skipped: estimated peak") and "> limit 4.00 GB" in huge[
        "status"]
    assert float(huge["estimated_peak_gb"]) > 96 and huge["latency_s"] == ""


def test_overrides_trail_the_options_as_in_the_other_programs(capsys):
    """``key=value`` after a list option are overrides, not list items; ``--opts`` is gone."""
    args = parse_args(build_parser(), ["--models", "mematte_s", "--sizes", "512", "1024",
                                       "model.backbone.depth=6", "train.seed=1"])
    assert args.models == ["mematte_s"] and args.sizes == [512, 1024]
    assert args.opts == ["model.backbone.depth=6", "train.seed=1"]
    try:
        parse_args(build_parser(), ["--opts", "model.backbone.depth=6"])
    except SystemExit as e:
        assert e.code == 2 and "--opts" in capsys.readouterr().err
    else:
        raise AssertionError("--opts was accepted")


def test_unknown_model_and_bad_memory_limit_are_rejected(capsys):
    for argv, message in ((["--models", "vitmatte_x"], "unknown model 'vitmatte_x'"),
                          (["--max-memory", "lots"], "--max-memory: cannot read memory size")):
        try:
            main(argv)
        except SystemExit as e:
            assert e.code == 2
        else:
            raise AssertionError(f"{argv} was accepted")
        assert message in capsys.readouterr().err


def test_failing_and_skipped_cases_are_reported_not_raised(tmp_path):
    broken = tmp_path / "broken_model.py"
    broken.write_text(
        "from configs.common.models.vitmatte_s import model\n"
        "model.decoder.img_chans = 3  # the model feeds it 4 channels: fails in forward\n"
    )
    out = tmp_path / "bench"
    argv = ["--models", str(broken), "vitmatte_s", "--sizes", str(SIZE), "--repeats", "1",
            "--threads", "1", "--tile-size", "0", "--skip", f"vitmatte_s@{SIZE}",
            "--output", str(out), *CPU_FP32, *FAST_VITMATTE_OPTS]
    assert main(argv) == 0
    rows = _rows(out / "inference.csv")
    assert [r["model"] for r in rows] == [str(broken), "vitmatte_s"]
    assert rows[0]["status"].startswith("error:") and "DetailCapture" in rows[0]["status"]
    assert rows[0]["latency_s"] == "" and rows[0]["peak_memory_gb"] == ""
    assert rows[1]["status"].startswith("skipped")
    table = (out / "inference.md").read_text()
    assert "error:" in table and "skipped" in table
    assert (out / "inference.png").is_file()


def test_trimap_shapes_and_tile_skipping_report_decoder_calls(tmp_path):
    out = tmp_path / "bench"
    argv = ["--models", "mematte_s", "--sizes", "256", "--repeats", "1", "--threads", "1",
            "--tile-size", "64", "--trimaps", "disc", "outline", "--tile-skipping", "on", "off",
            "--no-flops", "--output", str(out), *CPU_FP32, *FAST_MEMATTE_OPTS]
    assert main(argv) == 0
    rows = {(r["trimap"], r["skip_known_tiles"]): r for r in _rows(out / "inference.csv")}
    assert set(rows) == {(t, s) for t in ("disc", "outline") for s in ("True", "False")}
    trimaps = {"disc": disc_trimap(256), "outline": outline_trimap(256)}
    assert float(rows["outline", "True"]["unknown_fraction"]) == round(
        float(np.mean(trimaps["outline"] == 128)), 3)
    for (shape, skip), row in rows.items():
        assert row["status"] == "ok", row
        if skip == "False":  # 4 x 4 tiles of 64 px, each with 64 px of context where it can
            windows = tile_windows(4, 64, 64)
            crops = [(y1 - y0) * (x1 - x0) for y0, y1, *_ in windows for x0, x1, *_ in windows]
        else:  # the decoder's radius (60) fits in the context: a sparse cover of the band
            cells = (trimaps[shape] == 128).reshape(16, 16, 16, 16).any(axis=(1, 3))
            crops = [(y1 - y0) * (x1 - x0)
                     for y0, y1, x0, x1 in (w.crop for w in plan_cover(cells, 16, 4, 64,
                                                                        (256, 256)))]
        assert (int(row["decoder_calls"]), int(row["decoded_pixels"])) == (
            len(crops), sum(crops)), (shape, skip)
        if skip == "True":
            assert int(row["decoded_pixels"]) < int(rows[shape, "False"]["decoded_pixels"])
    assert "| outline (" in (out / "inference.md").read_text()


def test_cuda_benchmark_parent_never_starts_cuda(tmp_path):
    """Only the measured child may hold a CUDA context (one costs ~0.5 GB of that GPU): the
    parent hands the --max-memory spec to the child instead of reading free GPU memory."""
    from unittest import mock

    import torch

    from mematte_d2.cli import benchmark as cli

    cases = []
    forbidden = mock.Mock(side_effect=AssertionError("the parent touched CUDA"))
    with mock.patch.object(torch.cuda, "is_available", return_value=True), \
            mock.patch.multiple(torch.cuda, mem_get_info=forbidden, init=forbidden,
                                set_device=forbidden, memory_reserved=forbidden,
                                get_device_name=forbidden), \
            mock.patch.object(cli, "run_case",
                              side_effect=lambda case, timeout: cases.append(case) or
                              {"status": "error: mocked"}):
        assert main(["--models", "mematte_s", "--sizes", str(SIZE), "--device", "cuda",
                     "--dtypes", "fp16", "--max-memory", "auto", "--no-flops",
                     "--output", str(tmp_path), *FAST_MEMATTE_OPTS]) == 0
    assert [(c.device, c.max_memory, c.max_memory_bytes) for c in cases] == [
        ("cuda", "auto", None)]
