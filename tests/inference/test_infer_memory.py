"""The memory estimate and the token cap chosen from a budget."""

import pytest

from mematte_d2.inference.memory import (
    MemoryBudgetError,
    ModelDims,
    choose_max_tokens,
    estimate_peak_memory,
    parse_memory_size,
    token_grid,
)

VIT_S = ModelDims(embed_dim=384, num_heads=6, window_size=14, num_window_blocks=8,
                  num_routed_blocks=4, num_global_blocks=0, param_bytes=100 * 2**20)


def test_parse_memory_size():
    assert parse_memory_size("8GB") == 8 * 2**30
    assert parse_memory_size("512mb") == 512 * 2**20
    assert parse_memory_size("1.5G") == int(1.5 * 2**30)
    assert parse_memory_size("auto") == "auto"
    assert parse_memory_size(1000) == 1000
    with pytest.raises(ValueError, match="'eight gigs'"):
        parse_memory_size("eight gigs")


def test_estimate_grows_with_tokens_size_and_tile():
    small = estimate_peak_memory(4096, 4096, VIT_S, max_tokens=1000)
    assert estimate_peak_memory(4096, 4096, VIT_S, max_tokens=40000).encoder > small.encoder
    assert estimate_peak_memory(2048, 2048, VIT_S, max_tokens=1000).total < small.total
    tiled = estimate_peak_memory(4096, 4096, VIT_S, max_tokens=1000, tile_size=512)
    whole = estimate_peak_memory(4096, 4096, VIT_S, max_tokens=1000, tile_size=0)
    assert whole.decoder > 10 * tiled.decoder
    plain = estimate_peak_memory(2048, 2048, VIT_S, 8000, fused_attention=False)
    fused = estimate_peak_memory(2048, 2048, VIT_S, 8000)
    assert plain.encoder > 2 * 6 * 8000**2 * 4 > fused.encoder


def test_dense_vitmatte_estimate_counts_three_score_matrices_per_head():
    fused = ModelDims(embed_dim=384, num_heads=6, window_size=14, num_window_blocks=8,
                      num_routed_blocks=0, num_global_blocks=4, param_bytes=100 * 2**20)
    dense = ModelDims(**{**fused.__dict__, "dense_global_attention": True})
    n = token_grid(2048, 2048)[0] * token_grid(2048, 2048)[1]
    extra = (estimate_peak_memory(2048, 2048, dense).encoder
             - estimate_peak_memory(2048, 2048, fused).encoder)
    assert extra == 3 * 6 * n * n * 4


@pytest.mark.parametrize("fused", [True, False])
def test_choose_max_tokens_is_the_largest_cap_that_fits(fused):
    n = token_grid(4096, 4096)[0] * token_grid(4096, 4096)[1]
    assert choose_max_tokens(2**40, 4096, 4096, VIT_S, fused_attention=fused) == n
    budget = estimate_peak_memory(4096, 4096, VIT_S, n // 3, fused_attention=fused).total
    cap = choose_max_tokens(budget, 4096, 4096, VIT_S, fused_attention=fused)
    assert n // 3 <= cap < n
    assert estimate_peak_memory(4096, 4096, VIT_S, cap, fused_attention=fused).total <= budget
    assert estimate_peak_memory(4096, 4096, VIT_S, cap + 1, fused_attention=fused).total > budget
    with pytest.raises(MemoryBudgetError, match="4096x4096 image needs about"):
        choose_max_tokens(8 * 2**30, 4096, 4096, VIT_S, tile_size=0, fused_attention=fused)


def test_default_auto_budget_fits_4096_on_24gb():
    # 80% of a 24 GB machine with ~2 GB used elsewhere: every token may be routed
    n = token_grid(4096, 4096)[0] * token_grid(4096, 4096)[1]
    assert choose_max_tokens(int(0.8 * 22 * 2**30), 4096, 4096, VIT_S) == n


def test_estimate_bounds_measured_peak_of_a_tiny_model():
    from tiny_models import MEMATTE_CONFIG, MEMATTE_OPTS

    from mematte_d2.inference.memory_probe import measure

    row = measure(MEMATTE_CONFIG, MEMATTE_OPTS, 320, 448, tile_size=0)
    assert row["peak_rss"] <= row["estimate"] <= 1.6 * row["peak_rss"], row


@pytest.mark.slow
@pytest.mark.parametrize("config, size, cap", [
    ("configs/common/models/mematte_s.py", 1024, 1000),
    ("configs/common/models/mematte_s.py", 2048, None),
    ("configs/common/models/vitmatte_s.py", 2048, None),
])
def test_estimate_bounds_measured_peak_of_vit_s(config, size, cap):
    from mematte_d2.inference.memory_probe import measure

    row = measure(config, [], size, size, max_tokens=cap)
    assert row["peak_rss"] <= row["estimate"] <= 1.4 * row["peak_rss"], row
