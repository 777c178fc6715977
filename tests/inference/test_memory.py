"""The memory estimate and the token cap chosen from a budget."""

import pytest
import torch

from mematte_d2.inference.memory import (
    AUTO_BUDGET_FRACTION,
    MemoryBudget,
    MemoryBudgetError,
    ModelDims,
    choose_max_tokens,
    estimate_peak_memory,
    model_dims,
    parse_memory_size,
    resident_bytes,
    token_grid,
)

VIT_S = ModelDims(embed_dim=384, num_heads=6, window_size=14, num_window_blocks=8,
                  num_routed_blocks=4, num_global_blocks=0, param_bytes=100 * 2**20,
                  refiner_floats_per_token=4 * 384)


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
                      num_routed_blocks=0, num_global_blocks=4, param_bytes=100 * 2**20,
                      refiner_floats_per_token=0)
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


@pytest.mark.integration
def test_estimate_bounds_measured_peak_of_a_tiny_model():
    from tiny_models import MEMATTE_CONFIG, MEMATTE_OPTS

    from mematte_d2.inference.memory_probe import measure

    row = measure(MEMATTE_CONFIG, MEMATTE_OPTS, 320, 448, tile_size=0)
    assert row["peak_rss"] <= row["estimate"] <= 1.6 * row["peak_rss"], row
    # the fixed 1 GiB + weights alone satisfy the bound above: bound the per-call part too
    # (what the call adds to the memory held before it; estimated 177 MB, measured 137 MB)
    per_call = row["estimate"] - row["estimate_fixed"]
    measured = row["peak_rss"] - row["rss_before_call"]
    assert measured <= per_call <= 1.6 * measured, row


# A refiner far hungrier than the LTRM: 2 x 65536 hidden floats per token of the tiny model.
HUNGRY_REFINER = [
    "model.backbone.refiner=MLPRefiner",
    "model.backbone.refiner_kwargs={expand_ratio:2048}",
]


class Unstated(torch.nn.Module):
    """A refiner that does not state its memory cost."""

    def __init__(self, dim: int):
        super().__init__()

    def forward(self, x):
        return x * 0.5


def test_estimate_takes_the_refiners_cost_from_the_refiner():
    from detectron2.config import LazyConfig, instantiate
    from tiny_models import MEMATTE_CONFIG, MEMATTE_OPTS

    from mematte_d2.modeling import TOKEN_REFINER_REGISTRY

    def dims_of(opts):
        cfg = LazyConfig.apply_overrides(LazyConfig.load(MEMATTE_CONFIG), MEMATTE_OPTS + opts)
        return model_dims(instantiate(cfg.model))

    ltrm, hungry = dims_of([]), dims_of(HUNGRY_REFINER)
    assert ltrm.refiner_floats_per_token == 2 * 32  # output and its gated copy; hidden per strip
    assert hungry.refiner_floats_per_token == 2 * (2048 * 32)
    n = token_grid(768, 768)[0] * token_grid(768, 768)[1]
    grown = estimate_peak_memory(768, 768, hungry).encoder - estimate_peak_memory(
        768, 768, ltrm).encoder
    assert grown == 4 * n * (hungry.refiner_floats_per_token - ltrm.refiner_floats_per_token)
    TOKEN_REFINER_REGISTRY.register(Unstated)
    try:
        with pytest.raises(TypeError, match="refiner Unstated does not state its memory cost"):
            dims_of(["model.backbone.refiner=Unstated"])
    finally:
        TOKEN_REFINER_REGISTRY._obj_map.pop("Unstated")


@pytest.mark.integration
def test_estimate_bounds_measured_peak_with_a_swapped_refiner():
    # ~2 GB peak, ~10 s on the 2-core box: the refiner's 1.2 GB dominate the encoder stage
    from tiny_models import MEMATTE_CONFIG, MEMATTE_OPTS

    from mematte_d2.inference.memory_probe import measure

    row = measure(MEMATTE_CONFIG, MEMATTE_OPTS + HUNGRY_REFINER, 768, 768)
    assert row["peak_rss"] <= row["estimate"] <= 1.4 * row["peak_rss"], row


@pytest.mark.slow
def test_estimate_bounds_measured_peak_of_vit_s_in_its_encoder_stage():
    """MEMatte-S at 1024^2 decoded in 128 px tiles: the encoder stage is the largest (about
    127 MB against the decoder's 86 MB), so the per-call bound fails if its token, bias or
    routed terms are dropped (~10 s). Slow, not in CI: the growth a cold call adds varied from
    125 to 164 MiB between identical runs on the EPYC VM (2026-12-06) against an estimated
    139 MiB, so the lower bound fails about one run in three: the estimate under-counts what
    a first call adds (kernels, thread pools, heap slack)."""
    from mematte_d2.inference.memory_probe import measure

    row = measure("configs/common/models/mematte_s.py", [], 1024, 1024, max_tokens=1000,
                  tile_size=128)
    assert row["peak_rss"] <= row["estimate"] <= 1.4 * row["peak_rss"], row
    per_call = row["estimate"] - row["estimate_fixed"]  # 139 MiB; measured 125-164 MiB cold
    measured = row["peak_rss"] - row["rss_before_call"]
    assert measured <= per_call <= 1.6 * measured, row


@pytest.mark.slow
@pytest.mark.parametrize("config, size, cap, slack", [
    ("configs/common/models/mematte_s.py", 1024, 1000, 1.4),
    ("configs/common/models/mematte_s.py", 2048, None, 1.4),
    # The trimap windows are encoded with masked_fill_ since 2026-12-06 (no bool index_put and
    # its index tensors): ViTMatte-S's measured peak fell by about 70 MB, to 1.33-1.41x below
    # the unchanged estimate on the EPYC VM with one thread.
    ("configs/common/models/vitmatte_s.py", 2048, None, 1.45),
])
def test_estimate_bounds_measured_peak_of_vit_s(config, size, cap, slack):
    from mematte_d2.inference.memory_probe import measure

    row = measure(config, [], size, size, max_tokens=cap)
    assert row["peak_rss"] <= row["estimate"] <= slack * row["peak_rss"], row


class FakeCudaAllocator:
    """torch.cuda's memory queries for a 16 GB device whose caching allocator holds
    ``cached`` bytes it does not use (mem_get_info counts them as taken)."""

    def __init__(self, monkeypatch, in_use: int):
        self.total, self.context, self.in_use, self.cached = 16 * 2**30, 2**29, in_use, 0
        monkeypatch.setattr(torch.cuda, "mem_get_info", self.mem_get_info)
        monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: self.reserved)
        monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: self.in_use)

    @property
    def reserved(self) -> int:
        return self.in_use + self.cached

    def mem_get_info(self, device=None) -> tuple[int, int]:
        return self.total - self.context - self.reserved, self.total


def test_auto_budget_counts_cached_blocks_and_resident_bytes_once(monkeypatch):
    cuda = FakeCudaAllocator(monkeypatch, in_use=VIT_S.param_bytes)
    budget = MemoryBudget("auto", torch.device("cuda"))
    resident = resident_bytes(VIT_S)
    free = cuda.total - cuda.context - VIT_S.param_bytes
    assert budget.bytes(resident) == int(AUTO_BUDGET_FRACTION * free) + resident
    cuda.cached = 3 * 2**30  # an image ran: its freed blocks stay reserved by the cache
    assert budget.bytes(resident) == int(AUTO_BUDGET_FRACTION * free) + resident
    assert MemoryBudget("8GB", torch.device("cuda")).bytes(resident) == 8 * 2**30
    cuda.total = cuda.context + cuda.reserved  # nothing free beside the 3 GB cache
    caps = {choose_max_tokens(budget.bytes(resident), 4608, 4608, VIT_S) for _ in range(2)}
    cuda.cached = 0
    caps.add(choose_max_tokens(budget.bytes(resident), 4608, 4608, VIT_S))
    assert len(caps) == 1 and caps.pop() < token_grid(4608, 4608)[0] ** 2


def test_second_identical_image_gets_the_same_cap_on_a_cuda_like_allocator(monkeypatch):
    from tiny_models import tiny_cfg

    from mematte_d2.inference import MattingInference, MattingPredictor

    predictor = MattingPredictor(tiny_cfg(), device="cpu")
    dims = model_dims(predictor.model)
    cuda = FakeCudaAllocator(monkeypatch, in_use=dims.param_bytes)
    # the budget is read on the model's device: make it look like a CUDA device
    monkeypatch.setattr(MattingInference, "device", property(lambda self: torch.device("cuda")))
    assert predictor.memory_budget.spec == "auto"
    # just enough free memory for every token of a 448x640 image
    n = token_grid(448, 640)[0] * token_grid(448, 640)[1]
    need = estimate_peak_memory(448, 640, dims).total - resident_bytes(dims)
    cuda.total = cuda.context + cuda.in_use + int(need / AUTO_BUDGET_FRACTION) + 2**10
    assert predictor.token_cap(448, 640) == n
    cuda.cached = 2**28  # what the first image left in PyTorch's cache
    assert predictor.token_cap(448, 640) == n
