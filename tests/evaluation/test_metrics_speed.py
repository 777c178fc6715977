"""The metric-timing script runs under its name and times the metrics it reports."""

import json

from mematte_d2.evaluation.metrics import compute_matting_metrics
from mematte_d2.evaluation.metrics_speed import main, synthetic_case


def test_times_each_metric_of_the_synthetic_case(capsys):
    assert main(["--size", "64", "--repeats", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {f"{m}_seconds" for m in ("SAD", "MSE", "Grad", "Conn", "all")} <= set(result)
    assert result["size"] == "64x64" and 0 < result["unknown_fraction"] < 1
    assert result["metrics"] == compute_matting_metrics(*synthetic_case(64))
