"""Training benchmark on tiny models: MEMatte with and without its teacher, ViTMatte."""

import csv

import pytest
from tiny_models import FAST_MEMATTE_OPTS, FAST_VITMATTE_OPTS

from mematte_d2.benchmark import TrainCase, run_case
from mematte_d2.benchmark.report import TRAIN_COLUMNS, train_markdown, train_row
from mematte_d2.cli.benchmark import main

pytestmark = pytest.mark.integration


def test_train_benchmark_runs_mematte_with_and_without_teacher(tmp_path):
    out = tmp_path / "bench"
    argv = ["--train", "--models", "mematte_s", "--crop-size", "64", "--batch-size", "2",
            "--repeats", "1", "--threads", "1", "--output", str(out), *FAST_MEMATTE_OPTS]
    assert main(argv) == 0
    with open(out / "training.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == TRAIN_COLUMNS
        rows = {r["teacher"]: r for r in reader}
    assert set(rows) == {"True", "False"}
    for row in rows.values():
        assert row["status"] == "ok", row
        assert float(row["iters_per_s"]) > 0 and float(row["peak_memory_gb"]) > 0
        assert float(row["params_routing_m"]) > 0
        # written, though the tiny model's values round to 0.000 GB: the bytes behind them are
        # checked by test_routers_and_refiners_memory_is_measured_in_training
        assert row["routing_state_gb"] != "" and row["saved_by_routing_gb"] != ""
    # The teacher's weights are frozen; without it nothing is.
    assert float(rows["True"]["params_frozen_m"]) > 0 == float(rows["False"]["params_frozen_m"])
    assert rows["True"]["params_trainable_m"] == rows["False"]["params_trainable_m"]
    assert "| Model | Teacher |" in (out / "training.md").read_text()


def test_routers_and_refiners_memory_is_measured_in_training():
    case = TrainCase(model="mematte_s", crop_size=64, repeats=1, threads=1, opts=FAST_MEMATTE_OPTS)
    result = run_case(case)
    assert result["status"] == "ok", result
    # Routers and LTRMs run on every token in training and keep activations for backward:
    # at least the routers' [B, N] decision logits of the 2 routed blocks.
    assert result["saved_by_routing_bytes"] >= 2 * 2 * (64 // 16) ** 2 * 4
    assert result["saved_by_global_blocks_bytes"] > result["saved_by_routing_bytes"]
    # each GB column reports its own byte count (the tiny model's would all round to 0.000)
    row = train_row(case, {**result, "params_routing": 2**26,
                           "saved_by_routing_bytes": 3 * 2**29,
                           "saved_by_global_blocks_bytes": 5 * 2**29})
    assert row["routing_state_gb"] == 16 * 2**26 / 2**30  # Adam: weight, grad and 2 moments
    assert row["saved_by_routing_gb"] == 1.5 and row["saved_by_global_blocks_gb"] == 2.5


def test_train_case_of_vitmatte_has_no_routing_parameters():
    case = TrainCase(model="vitmatte_s", crop_size=64, repeats=1, threads=1,
                     opts=FAST_VITMATTE_OPTS)
    result = run_case(case)
    row = train_row(case, result)
    assert row["status"] == "ok", row
    assert row["params_routing_m"] == 0 and row["params_frozen_m"] == 0
    assert result["params_routing"] == 0 and result["saved_by_routing_bytes"] == 0
    assert result["saved_by_global_blocks_bytes"] > 0
    assert "vitmatte_s | no | 2 x 64^2" in train_markdown([row])
