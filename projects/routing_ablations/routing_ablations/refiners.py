"""Token-refiner ablations: no refinement at all, and the LTRM without its ECA gate.

Both follow the ``TOKEN_REFINER_REGISTRY`` contract: ``Refiner(dim)`` maps the block input
grid ``[B, H, W, C]`` to an update of the same shape, which the routed block adds to its input
(``x + d * attention + (1 - d) * refiner(x)``) for the tokens it does not attend globally.
"""

from __future__ import annotations

from torch import Tensor, nn

from mematte_d2.modeling import LTRM, TOKEN_REFINER_REGISTRY


@TOKEN_REFINER_REGISTRY.register()
class IdentityRefiner(nn.Module):
    """Ablation: unrouted tokens skip the attention sub-layer. The update is zero, so such a
    token leaves it as it entered (``x + 0``) and only the block's MLP and conv bottleneck
    change it. Has no parameters; ``dim`` is accepted for the registry contract."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        """``[B, H, W, C]`` -> zeros of the same shape."""
        if x.dim() != 4 or x.shape[-1] != self.dim:
            raise ValueError(
                f"IdentityRefiner expects a grid [B, H, W, {self.dim}], got {tuple(x.shape)}"
            )
        return x.new_zeros(x.shape)

    def inference_floats_per_token(self) -> int:
        """Its output: one zero token per token."""
        return self.dim

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


@TOKEN_REFINER_REGISTRY.register()
class LTRMNoECA(LTRM):
    """Ablation: the LTRM without efficient channel attention, i.e. Linear(C, rC) -> GELU ->
    depthwise kxk conv over the grid -> GELU -> Linear(rC, C), returned as is. Parameter names
    match :class:`~mematte_d2.modeling.routing.LTRM` (minus ``eca``) so LTRM weights load."""

    def __init__(self, dim: int, expand_ratio: int = 2, kernel_size: int = 5):
        super().__init__(dim, expand_ratio, kernel_size, use_eca=False)
