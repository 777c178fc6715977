"""How to add a routing component: one file, one registered class, one config that imports it.

``ContrastRouter`` scores each token by how much it differs from its image's average token:
tokens unlike the rest of the image (edges, hair, the unknown region) are the likely candidates
for global attention. ``configs/example_router.py`` selects it by name.
"""

from __future__ import annotations

from torch import Tensor, nn

from mematte_d2.modeling import ROUTER_REGISTRY


@ROUTER_REGISTRY.register()
class ContrastRouter(nn.Module):
    """Router contract: built as ``ContrastRouter(dim, **router_kwargs)``; block-input tokens
    ``[B, N, C]`` -> log-probabilities ``[B, N, 2]`` (0 = global attention, 1 = refiner)."""

    def __init__(self, dim: int, hidden: int = 32):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, 2))

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(x)
        contrast = x - x.mean(dim=1, keepdim=True)
        return self.score(contrast).log_softmax(dim=-1)
