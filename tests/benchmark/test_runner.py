"""Fresh-process peak memory: positive, growing with resolution; time-outs are reported."""

import pytest
from tiny_models import FAST_VITMATTE_OPTS

from mematte_d2.benchmark import InferenceCase, run_case

pytestmark = pytest.mark.integration


def _case(size: int) -> InferenceCase:
    return InferenceCase(model="mematte_s", size=size, tile_size=0, threads=1, repeats=1,
                         opts=FAST_VITMATTE_OPTS)


def test_peak_memory_of_a_fresh_process_grows_with_resolution():
    small, large = run_case(_case(64)), run_case(_case(768))
    assert small["status"] == large["status"] == "ok", (small, large)
    assert 0 < small["memory_before_bytes"] <= small["peak_memory_bytes"]
    # The 768^2 run holds at least its normalised 4-channel float input on top of what the
    # 64^2 run needs (the decoder's full-resolution activations come on top of that).
    assert large["peak_memory_bytes"] - small["peak_memory_bytes"] > 768 * 768 * 4 * 4
    assert large["tokens_total"] == (768 // 16) ** 2


def test_a_case_over_its_time_limit_is_stopped_and_reported():
    result = run_case(_case(64), timeout=1.0)
    assert result["status"] == "timeout (> 1 s)"
    assert "latency_s" not in result
    assert result["wall_s"] < 30
