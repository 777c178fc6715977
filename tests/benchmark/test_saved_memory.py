"""SavedTensorMeter: activation bytes kept for backward inside chosen groups of modules."""

import pytest
import torch
from torch import nn

from mematte_d2.benchmark.saved_memory import SavedTensorMeter

FLOAT = 4


def test_counts_what_the_module_saves_but_not_its_input_or_weights():
    inner = nn.Sequential(nn.Linear(8, 16), nn.Tanh())
    outer = nn.Sequential(nn.Linear(8, 8), inner, nn.Tanh())
    x = torch.randn(4, 8, requires_grad=True)
    with SavedTensorMeter({"inner": [inner]}) as meter:
        outer(x).sum().backward()
    # Linear(8, 16) saves its input (the caller's tensor) and weight (a parameter): not counted;
    # Tanh saves its [4, 16] output: counted.
    assert meter.bytes == {"inner": 4 * 16 * FLOAT}
    with torch.no_grad(), SavedTensorMeter({"inner": [inner]}) as meter:
        outer(x)
    assert meter.bytes == {"inner": 0}


def test_nested_groups_each_count_a_tensor_once():
    leaf = nn.Sequential(nn.Linear(8, 16), nn.Tanh())
    block = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), leaf, nn.Tanh())
    x = torch.randn(4, 8, requires_grad=True)
    with SavedTensorMeter({"leaf": [leaf], "block": [block, leaf]}) as meter:
        block(x).sum().backward()
    # block: the first Tanh's output [4, 8] (saved again by leaf's Linear as its input: the
    # same storage, counted once), leaf's Tanh output [4, 16] (once, though leaf is also in the
    # group) and the last Tanh's output [4, 16].
    assert meter.bytes["leaf"] == 4 * 16 * FLOAT
    assert meter.bytes["block"] == (4 * 8 + 4 * 16 + 4 * 16) * FLOAT


def test_hooks_are_removed_on_exit():
    module = nn.Sequential(nn.Linear(8, 16), nn.Tanh())
    with SavedTensorMeter({"m": [module]}) as meter:
        module(torch.randn(2, 8))
    counted = meter.bytes["m"]
    module(torch.randn(2, 8)).sum().backward()
    assert meter.bytes["m"] == counted and not module._forward_hooks
    assert not module._forward_pre_hooks


def test_a_forward_that_raises_leaves_no_hook_behind():
    class Failing(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    failing = Failing()
    meter = SavedTensorMeter({"f": [failing]})
    with pytest.raises(RuntimeError, match="boom"), meter:
        failing(torch.randn(2))
    assert not failing._forward_pre_hooks and not failing._forward_hooks
    # No pack hook is left active (autograd's stack of saved-tensor hooks is empty again): what
    # is saved afterwards is not counted, and backward works.
    assert torch._C._autograd._top_saved_tensors_default_hooks(False) is None
    x = torch.randn(3, requires_grad=True)
    (x * x).sum().backward()
    assert meter.bytes["f"] == 0
    assert torch.equal(x.grad, 2 * x)
