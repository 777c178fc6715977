"""ONNX export with a fixed token budget: onnxruntime against the eager predictor."""

import numpy as np
import onnx
import pytest
import torch
from detectron2.config import instantiate
from tiny_models import MEMATTE_CONFIG, MEMATTE_OPTS, tiny_cfg

from mematte_d2.cli.export import main
from mematte_d2.export import FixedBudgetMatting, eager_budget, onnx_session, run_onnx
from mematte_d2.export.latency import compare_latency, latency_markdown
from mematte_d2.inference import MattingPredictor
from mematte_d2.modeling.routing import ratio_to_count

# No size is a multiple of 32; their token grids (8x6, 10x10, 14x14) differ from the trace's,
# and 14x14 is the position table's own grid (where the eager code skips the resize).
SIZES = ((100, 75), (150, 130), (210, 220))
BUDGETS = ({"keep_ratio": 0.3}, {"max_tokens": 7})


def _pair(h, w, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    trimap = np.full((h, w), 128, np.uint8)
    trimap[: h // 4], trimap[-h // 4 :] = 0, 255
    return image, trimap


def _random_weights(model, seed=0):
    """Unit-gain random weights everywhere: with the ViT initialisation (std 0.02, identity
    bottlenecks) the tiny model's alpha barely depends on the encoder, so routing would not
    show in it."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator)
            if p.dim() >= 2:
                p.copy_(noise / p[0].numel() ** 0.5)
            else:
                p.copy_(noise * 0.1 + float(name.endswith("weight")))
    return model


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "tiny.pth"
    torch.save({"model": _random_weights(instantiate(tiny_cfg().model)).state_dict()}, path)
    return str(path)


@pytest.fixture(scope="module")
def predictor(weights):
    return MattingPredictor(tiny_cfg(), weights, device="cpu", max_memory=None)


@pytest.fixture(scope="module", params=BUDGETS, ids=lambda b: "-".join(map(str, *b.items())))
def exported(request, weights, tmp_path_factory):
    """(budget, path) of a model exported through the command line."""
    budget = request.param
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    flag, value = next(iter(budget.items()))
    status = main(["--config-file", MEMATTE_CONFIG, "--weights", weights, "--format", "onnx",
                   "--output", str(path), f"--{flag.replace('_', '-')}", str(value),
                   *MEMATTE_OPTS])
    assert status == 0
    return budget, path


def test_onnxruntime_matches_predictor(exported, predictor):
    budget, path = exported
    session = onnx_session(path, threads=1)
    for h, w in SIZES:
        image, trimap = _pair(h, w)
        expected = predictor.predict(image, trimap, tile_size=0, **eager_budget(**budget))
        alpha = run_onnx(session, image, trimap)
        assert alpha.shape == (h, w) and alpha.dtype == np.float32
        np.testing.assert_allclose(alpha, expected.alpha, atol=1e-3, rtol=0)
        assert alpha.min() >= 0 and alpha.max() <= 1
        assert (alpha[trimap == 0] == 0).all() and (alpha[trimap == 255] == 1).all()
        # The check can fail: twice the tokens give another matte.
        other = {"max_tokens": 14} if "max_tokens" in budget else {"keep_ratio": 0.6}
        changed = predictor.predict(image, trimap, tile_size=0, **eager_budget(**other)).alpha
        assert np.abs(changed - alpha).max() > 1e-3


def test_graph_signature(exported):
    graph = onnx.load(str(exported[1])).graph

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert [(v.name, dims(v)) for v in graph.input] == [
        ("image", [1, 3, "height", "width"]), ("trimap", [1, 1, "height", "width"])]
    assert [(v.name, dims(v)) for v in graph.output] == [("alpha", [1, 1, "height", "width"])]
    assert "TopK" in {node.op_type for node in graph.node}


def test_wrapper_equals_eager_forward(predictor):
    model = predictor.model
    image, trimap = _pair(90, 70, seed=1)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    t = torch.from_numpy(trimap)[None, None].float()
    with torch.no_grad():
        alpha = FixedBudgetMatting(model, max_tokens=5)(x, t)[0, 0].numpy()
    expected = predictor.predict(image, trimap, tile_size=0, max_tokens=5, keep_ratio=1.0)
    np.testing.assert_allclose(alpha, expected.alpha, atol=1e-5, rtol=0)
    assert (expected.routing.flatten(1).sum(1) == 5).all()


@pytest.mark.parametrize("ratio,tokens", [(0.3, 10), (0.25, 400), (0.1, 30), (1.0, 48)])
def test_ratio_count_follows_predictor_rounding(predictor, ratio, tokens):
    graph = FixedBudgetMatting(predictor.model, keep_ratio=ratio)
    assert int(graph.token_count(torch.tensor(tokens))) == ratio_to_count(ratio, tokens)


def test_max_tokens_above_token_count_keeps_all(predictor):
    graph = FixedBudgetMatting(predictor.model, max_tokens=1000)
    assert int(graph.token_count(torch.tensor(48))) == 48


def test_rejects_unrouted_encoder():
    model = instantiate(tiny_cfg("vitmatte").model)
    with pytest.raises(TypeError, match="RoutedViT"):
        FixedBudgetMatting(model, keep_ratio=0.25)


def test_latency_comparison_runs_both_runtimes(exported, predictor):
    budget, path = exported
    rows = compare_latency(predictor, onnx_session(path, threads=1), [70], repeats=1, **budget)
    assert [r.size for r in rows] == [70]
    assert rows[0].eager_seconds > 0 and rows[0].onnx_seconds > 0
    assert rows[0].max_abs_diff < 1e-3
    assert latency_markdown(rows).splitlines()[2].startswith("| 70x70 | ")


def test_a_model_on_another_device_is_exported_from_a_cpu_copy(monkeypatch, caplog):
    """Issue 26 fault 7: the trace's example inputs are on the CPU, so a CUDA model is copied
    there first. "meta" stands for CUDA here: any device that is not the CPU."""
    import logging

    from torch import nn

    from mematte_d2.export import onnx_export

    model = nn.Sequential(nn.Linear(2, 2))
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    model.to("meta")

    def to_cpu(self):  # meta tensors hold no data: the copy takes the reference weights
        self.to_empty(device="cpu")
        self.load_state_dict(reference)
        return self

    monkeypatch.setattr(nn.Module, "cpu", to_cpu)
    logger = logging.getLogger(onnx_export.__name__)
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            on_cpu = onnx_export._on_cpu(model)
    finally:
        logger.removeHandler(caplog.handler)
    assert on_cpu is not model and next(model.parameters()).device.type == "meta"
    assert all(p.device.type == "cpu" for p in on_cpu.parameters())
    assert torch.equal(on_cpu[0].weight, reference["0.weight"])
    assert "its weights are on meta" in caplog.text
    cpu_model = nn.Linear(2, 2)
    assert onnx_export._on_cpu(cpu_model) is cpu_model
