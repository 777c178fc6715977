"""CUDA-only: the routed training attention runs on the memory-efficient SDPA kernel."""

import pytest
import torch
from test_encoder_attention import explicit_policy_attention

from mematte_d2.modeling.routed_vit import policy_masked_attention

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_policy_masked_attention_runs_on_the_memory_efficient_kernel(dtype):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    gen = torch.Generator().manual_seed(0)
    q, k, v, out_grad = (torch.randn(2, 6, 256, 64, generator=gen) for _ in range(4))
    hard = (torch.rand(2, 256, generator=gen) < 0.3).float()
    grads = []
    for device, kernel in (("cuda", SDPBackend.EFFICIENT_ATTENTION), ("cpu", None)):
        leaves = [t.to(device, dtype if device == "cuda" else torch.float64) for t in (q, k, v)]
        leaves = [t.requires_grad_(True) for t in leaves]
        soft = torch.full((2, 256), 0.5, device=device, dtype=leaves[0].dtype, requires_grad=True)
        keep = hard.to(soft) - soft.detach() + soft
        if kernel is None:
            out = explicit_policy_attention(*leaves, keep)
        else:
            with sdpa_kernel(kernel):  # raises if that kernel cannot take the call
                out = policy_masked_attention(*leaves, keep)
        (out * out_grad.to(out)).sum().backward()
        grads.append([out.detach()] + [t.grad for t in leaves] + [soft.grad])
    tolerance = 1e-4 if dtype == torch.float32 else 3e-2
    for mine, ref in zip(*grads, strict=True):
        torch.testing.assert_close(mine.double().cpu(), ref, rtol=tolerance, atol=tolerance)
