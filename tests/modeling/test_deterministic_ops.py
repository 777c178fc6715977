"""Deterministic stand-ins of interpolation and reflection padding: the native op's values
and gradients. The stand-ins run on CUDA only; here they are forced on the CPU."""

from unittest import mock

import pytest
import torch
from torch.nn import functional as F

from mematte_d2.modeling import deterministic_ops
from mematte_d2.modeling.deterministic_ops import interpolate, reflect_pad2d


def _both(fn, native, x):
    """(stand-in output, its input gradient), (native output, its input gradient)."""
    results = []
    for forced in (True, False):
        x = x.detach().requires_grad_()
        with mock.patch.object(deterministic_ops, "needs_replacement", return_value=forced):
            out = fn(x)
        weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
        (out * weights).sum().backward()
        results.append((out.detach(), x.grad))
    expected = native(x.detach().requires_grad_())
    torch.testing.assert_close(results[1][0], expected)  # unforced = the native op
    return results


@pytest.mark.parametrize("shape, kwargs", [
    ((2, 3, 5, 7), dict(scale_factor=2, mode="bilinear", align_corners=False)),
    ((1, 4, 14, 14), dict(size=(32, 20), mode="bicubic", align_corners=False)),
    ((1, 2, 6, 9), dict(size=(4, 13), mode="bilinear", align_corners=True)),
    ((1, 8, 27), dict(size=63, mode="linear")),
])
def test_interpolation_matches_the_native_op(shape, kwargs):
    x = torch.randn(shape)
    (out, grad), (ref, ref_grad) = _both(lambda t: interpolate(t, **kwargs),
                                         lambda t: F.interpolate(t, **kwargs), x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pad", [(2, 2, 2, 2), (1, 0, 3, 2)])
def test_reflection_padding_matches_the_native_op(pad):
    (out, grad), (ref, ref_grad) = _both(lambda t: reflect_pad2d(t, pad),
                                         lambda t: F.pad(t, pad, mode="reflect"),
                                         torch.randn(2, 1, 6, 7))
    assert torch.equal(out, ref)  # copies of the same values
    torch.testing.assert_close(grad, ref_grad, rtol=1e-6, atol=1e-6)  # sums in another order


def test_native_ops_where_they_are_deterministic():
    x = torch.randn(1, 1, 4, 4, requires_grad=True)
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        assert not deterministic_ops.needs_replacement(x)  # CPU kernels are deterministic
    finally:
        torch.use_deterministic_algorithms(previous)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_backward_runs_and_repeats_under_deterministic_algorithms():
    from mematte_d2.modeling.losses import laplacian_loss

    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        grads = []
        for _ in range(2):
            x = torch.randn(2, 8, 64, 64, device="cuda", generator=torch.Generator(
                "cuda").manual_seed(0)).requires_grad_()
            up = interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            laplacian_loss(up[:, :1].sigmoid(), torch.rand_like(up[:, :1])).backward()
            grads.append(x.grad)
        assert torch.equal(grads[0], grads[1])
    finally:
        torch.use_deterministic_algorithms(previous)
