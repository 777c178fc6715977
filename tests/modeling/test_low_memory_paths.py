"""The low-memory inference mode (``set_chunked_inference``: row strips, chunks, sums written
into a branch buffer) gives the values of the plain computation, bit for bit, and is an
explicit setting: off, no-grad calls run the plain arithmetic."""

import pytest
import torch

from mematte_d2.modeling import vit
from mematte_d2.modeling.routing.refiners import LTRM
from mematte_d2.modeling.vit import Block, map_in_row_strips, residual_add


def _grid(h=23, w=17, c=32, seed=0):
    return torch.randn(2, h, w, c, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("rows", [1, 4, 7, 30])
def test_row_strips_with_a_halo_equal_the_whole_grid(rows):
    conv = torch.nn.Conv2d(8, 8, 5, padding=2, groups=8)
    fn = lambda t: conv(t.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # noqa: E731
    x = _grid(c=8)
    with torch.no_grad():
        strips = map_in_row_strips(fn, x, rows, halo=2)
        whole = fn(x)
        too_small_halo = map_in_row_strips(fn, x, 4, halo=1)
    assert torch.equal(strips, whole)
    assert not torch.equal(too_small_halo, whole)  # the halo is what makes strips exact


def test_ltrm_in_strips_equals_ltrm_on_the_whole_grid(monkeypatch):
    torch.manual_seed(0)
    ltrm = LTRM(32).eval()
    x = _grid(h=40, w=9)
    monkeypatch.setattr(vit, "CHUNK_ELEMENTS", 9 * 64 * 3)  # strips of 8 rows (4 x halo)
    calls = []
    monkeypatch.setattr(ltrm, "_local_mixing", lambda t: calls.append(t.shape[1]) or
                        LTRM._local_mixing(ltrm, t))
    with torch.no_grad():
        whole = ltrm(x)
        assert calls == [40]  # the setting is off by default: no strips under no_grad either
        ltrm.chunked_inference = True
        strips = ltrm(x)
    assert len(calls) == 6 and max(calls[1:]) == 8 + 2 * 2
    assert torch.equal(strips, whole)


def test_residual_add_writes_into_the_branch_only_without_autograd():
    x, branch = _grid(), _grid(seed=1)
    expected = x + branch
    with torch.no_grad():
        copy = branch.clone()
        out = residual_add(copy, x, in_place=True)
        strided = residual_add(branch.permute(0, 2, 1, 3).contiguous().permute(0, 2, 1, 3), x,
                               in_place=True)
        fresh = residual_add(branch, x, in_place=False)
    assert out.data_ptr() == copy.data_ptr() and fresh.data_ptr() != branch.data_ptr()
    assert torch.equal(out, expected) and torch.equal(strided, expected)
    assert torch.equal(fresh, expected) and torch.equal(branch, _grid(seed=1))
    assert strided.is_contiguous()  # other strides: a new buffer in x's layout
    leaf = branch.clone().requires_grad_()
    summed = residual_add(leaf * 1.0, x, in_place=True)
    assert torch.equal(summed, expected) and summed.requires_grad
    assert leaf.grad is None and torch.equal(x, _grid())  # x is never written


@pytest.mark.parametrize("window_size, residual", [(0, True), (4, False), (5, True)])
def test_block_inference_equals_its_training_arithmetic(monkeypatch, window_size, residual):
    """A block in the low-memory mode under no_grad (chunks, in-place sums) equals the same
    block with autograd on (plain arithmetic), including chunked MLP rows."""
    torch.manual_seed(0)
    block = Block(32, 2, window_size=window_size, use_residual_block=residual).eval()
    x = _grid()
    plain = block(x).detach()
    monkeypatch.setattr(vit, "CHUNK_ELEMENTS", 128 * 50)  # MLP chunks of 50 tokens
    rows = []
    monkeypatch.setattr(block.mlp, "forward", lambda t: rows.append(t.shape[0]) or
                        block.mlp.fc2(block.mlp.act(block.mlp.fc1(t))))
    for module in block.modules():
        if isinstance(module, vit.ChunkedInference):
            module.chunked_inference = True
    with torch.no_grad():
        chunked = block(x)
    assert torch.equal(chunked, plain)
    assert max(rows[1:]) == 50 and len(rows) > 2  # the chunked path ran
    assert torch.equal(x, _grid())  # the block input is left intact
