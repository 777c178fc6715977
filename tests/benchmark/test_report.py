"""Report helpers: rows of failed cases, MEMatte / ViTMatte ratios, repeat budget."""

from mematte_d2.benchmark import InferenceCase
from mematte_d2.benchmark.measure import _repeat_count
from mematte_d2.benchmark.report import inference_markdown, inference_row, ratio_lines

GB = 2**30


def _ok(latency, peak_gb, routed=None, gflops=None):
    return {"status": "ok", "gflops": gflops, "latency_s": latency, "latency_min_s": latency,
            "timed_runs": 3,
            "warmup_s": latency, "peak_memory_bytes": int(peak_gb * GB),
            "memory_before_bytes": GB // 2, "tokens_total": 1024, "tokens_routed": routed,
            "tile_size": 512}


def test_ratio_table_pairs_mematte_with_vitmatte_of_the_same_size():
    rows = [
        inference_row(InferenceCase("mematte_s", 1024), _ok(2.0, 1.0, [256, 256], 300.0)),
        inference_row(InferenceCase("vitmatte_s", 1024), _ok(8.0, 4.0, gflops=500.0)),
        inference_row(InferenceCase("mematte_s", 2048), _ok(9.0, 2.0, [1024, 1024])),
        inference_row(InferenceCase("vitmatte_s", 2048), {"status": "timeout (> 600 s)",
                                                         "peak_memory_lower_bound_bytes": 3 * GB}),
    ]
    # Working memory: (1.0 - 0.5) / (4.0 - 0.5) GB.
    assert ratio_lines(rows) == [("mematte_s / vitmatte_s", "1024x1024", "cpu fp32", "disc, -",
                                  "0.25", "0.14", "0.25", "0.60")]
    table = inference_markdown(rows)
    assert "| 300 |" in table and "| 500 |" in table
    assert ">= 3.00 (when stopped)" in table and "timeout (> 600 s)" in table
    assert "256 / 1024" in table and "all 1024 (no routing)" in table


def test_ratio_table_compares_with_both_vitmatte_attention_implementations():
    rows = [
        inference_row(InferenceCase("mematte_s", 1024), _ok(2.0, 1.0, [256, 256])),
        inference_row(InferenceCase("vitmatte_s", 1024), _ok(4.0, 1.5)),
        inference_row(InferenceCase("vitmatte_s_dense", 1024), _ok(5.0, 5.0)),
    ]
    pairs = {line[0]: line[4:] for line in ratio_lines(rows)}
    # No GFLOPs measured (--no-flops): no GFLOPs ratio.
    assert pairs == {"mematte_s / vitmatte_s": ("0.67", "0.50", "0.50", "-"),
                     "mematte_s / vitmatte_s_dense": ("0.20", "0.11", "0.40", "-")}


def test_rows_show_decoder_calls_and_pair_only_equal_trimaps_and_skipping():
    decoded = {"skip_known_tiles": True, "unknown_fraction": 0.085, "decoder_calls": 9,
               "decoded_pixels": 3_300_000}
    rows = [
        inference_row(InferenceCase("mematte_s", 2048, trimap="outline"),
                      {**_ok(2.0, 1.0, [256, 256]), **decoded}),
        inference_row(InferenceCase("vitmatte_s", 2048, trimap="disc"),
                      {**_ok(4.0, 1.5), **decoded}),
        inference_row(InferenceCase("vitmatte_s", 2048, trimap="outline"),
                      {**_ok(4.0, 1.5), **decoded, "skip_known_tiles": False}),
    ]
    assert rows[0]["decoded_area"] == round(3_300_000 / 2048**2, 3)
    assert ratio_lines(rows) == []
    table = inference_markdown(rows)
    assert "| outline (8%) | True | 9 (0.79) |" in table


def test_failed_row_has_no_measurements():
    row = inference_row(InferenceCase("mematte_s", 512), {"status": "killed by SIGKILL"})
    assert row["latency_s"] is None and row["peak_memory_gb"] is None
    assert row["megapixels"] == round(512 * 512 / 1e6, 3)


def test_repeat_count_shrinks_to_fit_the_case_budget():
    assert _repeat_count(5, first=10.0, max_seconds=None) == 5
    assert _repeat_count(5, first=10.0, max_seconds=35.0) == 2
    assert _repeat_count(5, first=100.0, max_seconds=35.0) == 1
