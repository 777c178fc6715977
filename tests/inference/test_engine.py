"""MattingInference: per-call budgets (thread-safe), the plain model's values, progress, OOM."""

import threading

import numpy as np
import pytest
import torch
from detectron2.config import instantiate
from tiny_models import tiny_cfg

from mematte_d2.inference import MattingInference, MattingPredictor
from mematte_d2.inference.engine import OOM_RETRIES, is_out_of_memory, upload
from mematte_d2.modeling.routing import RoutingBudget


def _item(h=70, w=100, seed=0):
    rng = np.random.default_rng(seed)
    trimap = np.full((h, w), 128, np.uint8)
    trimap[: h // 4] = 0
    trimap[-h // 4 :] = 255
    return {
        "image": torch.from_numpy(rng.integers(0, 256, (3, h, w), dtype=np.uint8)),
        "trimap": torch.from_numpy(trimap)[None],
    }


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return instantiate(tiny_cfg().model).eval()


def test_whole_image_engine_equals_the_plain_model_bit_for_bit(model):
    """Windowed 8-bit inputs and the encoder's low-memory mode change buffers, not values."""
    engine = MattingInference(model, tile_size=0, skip_known_tiles=False)
    item = _item()
    budget = RoutingBudget(keep_ratio=0.5)
    out = engine([item], budget)[0]
    with torch.no_grad():
        plain = model([item], budget)[0]
    assert torch.equal(out["alpha"], plain["alpha"])
    assert torch.equal(out["routing"], plain["routing"])
    assert model.backbone.blocks[0].chunked_inference  # switched once, by the engine


def test_the_budget_is_an_argument_and_the_model_is_not_changed(model):
    engine = MattingInference(model)
    before = {k: v for k, v in vars(model.backbone).items() if not k.startswith("_")}
    capped = engine([_item()], RoutingBudget(max_tokens=3))[0]
    ratio = engine([_item()], RoutingBudget(keep_ratio=0.5))[0]
    assert int(capped["routing"].flatten(1).sum(1).max()) <= 3 and capped["max_tokens"] == 3
    assert ratio["routing"].flatten(1).sum(1).tolist() == [24, 24]  # ceil(0.5 * 48) per block
    after = {k: v for k, v in vars(model.backbone).items() if not k.startswith("_")}
    assert after == before


def test_progress_callbacks_of_concurrent_calls_stay_with_their_call(model):
    engine = MattingInference(model, tile_size=0)
    start, seen = threading.Barrier(2), {"a": [], "b": []}

    def worker(name: str) -> None:
        start.wait()
        for _ in range(3):
            engine([_item()], progress=lambda *step: seen[name].append(step))

    threads = [threading.Thread(target=worker, args=(name,)) for name in seen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    one_call = [(i, 6, "encoder") for i in range(7)] + [(1, 1, "decoder")]
    assert seen["a"] == seen["b"] == one_call * 3
    with torch.no_grad():
        model([_item()])  # outside an engine call the block hooks report nothing


def test_two_threads_with_different_budgets_each_get_their_own_result():
    torch.manual_seed(0)
    predictor = MattingPredictor(tiny_cfg(), device="cpu", max_memory=None)
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    trimap = np.full((96, 128), 128, np.uint8)
    trimap[:20] = 0
    budgets = {"a": {"max_tokens": 2}, "b": {"keep_ratio": 1.0}}
    expected = {name: predictor.predict(image, trimap, **b) for name, b in budgets.items()}
    assert not np.array_equal(expected["a"].alpha, expected["b"].alpha)
    start = threading.Barrier(2)
    wrong: list[str] = []

    def worker(name: str) -> None:
        start.wait()
        for _ in range(6):
            got = predictor.predict(image, trimap, **budgets[name])
            if not (np.array_equal(got.alpha, expected[name].alpha)
                    and torch.equal(got.routing, expected[name].routing)):
                wrong.append(name)

    threads = [threading.Thread(target=worker, args=(name,)) for name in budgets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_progress_reports_every_encoder_block_then_every_decoder_window(model):
    engine = MattingInference(model, tile_size=64, skip_known_tiles=False)
    calls = []
    engine([_item(130, 150)], progress=lambda done, total, stage: calls.append((stage, done,
                                                                                 total)))
    assert calls[:7] == [("encoder", i, 6) for i in range(7)]  # before and after its 6 blocks
    assert calls[7:] == [("decoder", i, 9) for i in range(1, 10)]  # 3 x 3 tiles of 64 px


def test_out_of_memory_from_cuda_libraries_is_retried_smaller(model, monkeypatch):
    engine = MattingInference(model, tile_size=128)
    seen = []
    run = engine._run

    def failing(batch, settings, progress):
        seen.append(settings)
        if len(seen) <= 2:
            raise RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate")
        return run(batch, settings, progress)

    monkeypatch.setattr(engine, "_run", failing)
    out = engine([_item()])[0]
    assert out["alpha"].shape == (1, 70, 100)
    assert [s.tile_size for s in seen] == [128, 64, 64]  # halved, not below the 64 px context
    assert [s.budget.max_tokens for s in seen] == [None, 24, 12]  # from all 48 tokens
    assert OOM_RETRIES >= 2
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert not is_out_of_memory(RuntimeError("size mismatch"))

    def broken(batch, settings, progress):
        raise RuntimeError("size mismatch")

    monkeypatch.setattr(engine, "_run", broken)
    with pytest.raises(RuntimeError, match="size mismatch"):  # other errors are not retried
        engine([_item()])


def test_a_call_s_memory_budget_replaces_the_engine_s(model):
    engine = MattingInference(model, max_memory=None)
    assert engine([_item()])[0]["max_tokens"] is None
    dims_cap = engine.token_cap(70, 100, max_memory="64GB")
    assert dims_cap == 48  # everything fits: all tokens of the 6 x 8 grid
    out = engine([_item()], max_memory="64GB")[0]
    assert out["max_tokens"] == 48
    with pytest.raises(ValueError, match="one image per call"):
        engine([_item(), _item(seed=1)], max_memory="64GB")


def test_upload_moves_a_permuted_view_as_laid_out_and_permutes_back():
    hwc = torch.arange(2 * 3 * 4, dtype=torch.uint8).reshape(2, 3, 4)
    chw = hwc.permute(2, 0, 1)  # the predictor's view: no host copy must be made of it
    moved = upload(chw, torch.device("meta"))
    assert moved.shape == chw.shape and moved.stride() == chw.stride()
    sliced = hwc[:, ::2]  # not a permutation of contiguous memory: copied, then moved
    assert upload(sliced, torch.device("meta")).shape == sliced.shape
    assert upload(chw, torch.device("cpu")) is chw  # already there: untouched


def test_window_inputs_use_no_host_syncing_ops():
    """Building windows on a device must not count boolean masks on the host (index_put with
    a bool mask, nonzero): on CUDA each would stall the host until the GPU catches up."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(str(func))
            return func(*args, **(kwargs or {}))

    torch.manual_seed(0)
    model = instantiate(tiny_cfg().model).eval()
    inputs = model.model_inputs([_item()])
    with Ops() as ops:
        inputs.crop(0, 64, 0, 64)
        inputs.trimap.crop(0, 64, 0, 64)
    assert ops.names and not [n for n in ops.names if "index_put" in n or "nonzero" in n]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_upload_to_cuda_is_pinned_and_equal():
    hwc = torch.randint(0, 256, (64, 48, 3), dtype=torch.uint8)
    moved = upload(hwc.permute(2, 0, 1), torch.device("cuda"))
    torch.cuda.synchronize()
    assert moved.is_cuda and torch.equal(moved.cpu(), hwc.permute(2, 0, 1))


def test_a_bad_decoder_tile_is_refused_before_the_encoder_runs(model, monkeypatch):
    with pytest.raises(ValueError, match="tile_size must be a positive multiple of 16"):
        MattingInference(model, tile_size=40)
    engine = MattingInference(model)
    monkeypatch.setattr(model.backbone, "forward", lambda *a: pytest.fail("encoder ran"))
    with pytest.raises(ValueError, match="tile_context must be a multiple of 16 in \\[0, "):
        engine([_item()], tile_size=32)  # shorter than the model's 64 px context
