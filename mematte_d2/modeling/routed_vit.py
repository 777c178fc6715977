"""MEMatte's student encoder: a ViT whose global blocks route tokens between global attention
and a cheap token refiner.

Training: the router's decisions ``d`` (0/1, straight-through gradients) mix both branches run
on all tokens, ``d * attention + (1 - d) * refiner``, and the attention is policy-masked: query
``i`` sees kept keys and itself, with the stabilised normalisation of docs/routing.md
``(e_ij m_ij + eps/N) / (sum_j e_ij m_ij + eps)``, ``e_ij = exp(s_ij - max_j s_ij)``, in fp32.
Inference: the refiner runs on all tokens and global attention only among each image's kept
tokens; the results are scattered over the refiner output.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .regions import RegionSource
from .registry import (
    ROUTER_REGISTRY,
    ROUTING_POLICY_REGISTRY,
    TOKEN_REFINER_REGISTRY,
    build_from_registry,
)
from .routing.policies import (
    RoutingBudget,
    RoutingPolicy,
    cap_tokens,
    check_keep_ratio,
    check_max_tokens,
    routing_margin,
)
from .vit import (
    MAX_BIAS_ELEMENTS,
    Block,
    ViTEncoderBase,
    residual_add,
    validate_block_indexes,
    validate_window_layout,
)

POLICY_EPS = 1e-6


# CUDA's memory-efficient SDPA kernel needs head dims divisible by 4 (fp32) or 8 (fp16/bf16);
# the augmented head dim d + 1 is zero-padded up to a multiple of this so that kernel applies.
HEAD_DIM_MULTIPLE = 8


@torch.no_grad()
def _row_argmax_keys(q: Tensor, k: Tensor) -> Tensor:
    """``argmax_j q_i . k_j`` of ``[B, heads, N, D]`` tensors, ``[B, heads, N]``, in query
    chunks so that no ``N x N`` matrix is held."""
    b, heads, n, _ = q.shape
    chunk = max(1, MAX_BIAS_ELEMENTS // max(1, b * heads * k.shape[2]))
    best = [
        (q[:, :, s : s + chunk] @ k.transpose(-2, -1)).argmax(dim=-1) for s in range(0, n, chunk)
    ]
    return torch.cat(best, dim=2)


def _row_max_scores(q: Tensor, k: Tensor, scale: float) -> Tensor:
    """``M_i = max_j scale * q_i . k_j``, differentiable: the gradient reaches q_i and the
    maximising key, as autograd of a plain ``max`` gives it (the release does not detach it)."""
    index = _row_argmax_keys(q, k).unsqueeze(-1).expand(-1, -1, -1, k.shape[-1])
    return (q * k.gather(2, index)).sum(dim=-1) * scale


def _pad_head_dim(x: Tensor) -> Tensor:
    """Zero-pad the last dim to a multiple of ``HEAD_DIM_MULTIPLE``: zero channels add nothing
    to the q.k scores (the softmax scale is passed explicitly) and give zero output channels."""
    return F.pad(x, (0, -x.shape[-1] % HEAD_DIM_MULTIPLE))


def policy_masked_attention(
    q: Tensor, k: Tensor, v: Tensor, keep: Tensor, eps: float = POLICY_EPS
) -> Tensor:
    """Policy-masked attention (docs/routing.md), exact, through one SDPA call in fp32
    (or the inputs' dtype if wider; autocast off).

    ``q, k, v``: ``[B, heads, N, D]``; ``keep``: ``[B, N]`` decisions with values 0/1.
    With ``M_i`` the row max of the scores and ``c_i = (1 - d_i) exp(s_ii)`` the self term of a
    dropped query, the target is (multiplying through by ``exp(M_i)``)

        O_i = (sum_j d_j e^{s_ij} v_j + c_i v_i + eps e^{M_i} mean_j v_j)
              / (sum_j d_j e^{s_ij} + c_i + eps e^{M_i}).

    SDPA computes everything but the ``c_i`` terms as softmax attention over the N keys (additive
    bias ``log d_j``) plus one sentinel key with logit ``M_i + log eps`` and value
    ``[mean_j v_j, 1]`` (its logit enters through an extra q/k channel). The extra output
    channel is the sentinel's weight ``eps e^{M_i} / Z_i``, which gives ``c_i / Z_i`` and the
    exact final mix ``(P_i + r_i v_i) / (1 + r_i)``. Memory stays O(N) per query row chunk; no
    ``N x N`` mask is built. ``M_i`` is differentiated like the release's (undetached) row max:
    through the eps terms it changes the q/k gradients where the largest score is dropped.
    The augmented head dim is zero-padded (``HEAD_DIM_MULTIPLE``) for CUDA's fused kernels.
    """
    dtype = torch.promote_types(q.dtype, torch.float32)
    with torch.autocast(device_type=q.device.type, enabled=False):
        out = _policy_masked_attention_exact(
            q.to(dtype), k.to(dtype), v.to(dtype), keep.to(dtype), eps
        )
    return out.to(q.dtype)


def _policy_masked_attention_exact(q: Tensor, k: Tensor, v: Tensor, keep: Tensor, eps: float):
    b, heads, n, d = q.shape
    scale = d**-0.5
    row_max = _row_max_scores(q, k, scale)

    sentinel_logit = (row_max + math.log(eps)) / scale
    q_aug = torch.cat([q, sentinel_logit.unsqueeze(-1)], dim=-1)
    sentinel_key = q.new_zeros((b, heads, 1, d + 1))
    sentinel_key[..., d] = 1.0
    k_aug = torch.cat([F.pad(k, (0, 1)), sentinel_key], dim=2)
    sentinel_value = torch.cat([v.mean(dim=2, keepdim=True), v.new_ones((b, heads, 1, 1))], -1)
    v_aug = torch.cat([F.pad(v, (0, 1)), sentinel_value], dim=2)

    # The mask carries no gradient (_KeyMaskGrad supplies the decisions'), so the fused
    # kernels apply in training too and no gradient of an [N, N+1] bias is ever formed.
    decisions = keep.detach()
    kept = decisions > 0.5
    key_bias = torch.where(
        kept, decisions.clamp_min(0.5).log(), torch.full_like(decisions, -math.inf)
    )
    key_bias = F.pad(key_bias, (0, 1))[:, None, None, :]
    out = F.scaled_dot_product_attention(
        _pad_head_dim(q_aug), _pad_head_dim(k_aug), _pad_head_dim(v_aug),
        attn_mask=key_bias, scale=scale,
    )
    attended, sentinel_share = out[..., :d], out[..., d]

    self_logit = (q * k).sum(dim=-1) * scale
    self_ratio = (1.0 - keep)[:, None, :] * torch.exp(self_logit - row_max) * sentinel_share / eps
    self_ratio = self_ratio.unsqueeze(-1)
    out = (attended + self_ratio * v) / (1.0 + self_ratio)
    if keep.requires_grad and torch.is_grad_enabled():
        log_partition = (
            math.log(eps) + row_max - sentinel_share.log() + torch.log1p(self_ratio.squeeze(-1))
        )
        out = _KeyMaskGrad.apply(
            out, keep, q.detach(), k.detach(), v.detach(), log_partition.detach()
        )
    return out


class _KeyMaskGrad(torch.autograd.Function):
    """Identity on the attention output that adds the gradient of the key decisions.

    The additive ``log d_j`` bias enters SDPA detached (and would be ``-inf`` for a dropped key
    anyway); the explicit formula's gradient is ``dL/dd_j = sum_{i != j} exp(s_ij) / Z_i
    (g_i . v_j - g_i . O_i)`` (summed over heads), ``Z_i`` the full normaliser, for kept and
    dropped keys alike. This adds the sum over all ``i``; autograd of the self term
    ``c_j = (1 - d_j) exp(s_jj)`` already contributes exactly minus the ``i = j`` summand.
    Computed in query chunks (O(N) memory per chunk)."""

    @staticmethod
    def forward(ctx, out, keep, q, k, v, log_partition):
        ctx.save_for_backward(out.detach(), q, k, v, log_partition)
        return out.clone()

    @staticmethod
    def backward(ctx, grad_out):
        out, q, k, v, log_partition = ctx.saved_tensors
        grad_keep = None
        if ctx.needs_input_grad[1]:
            grad_keep = _key_mask_grad(grad_out, out, q, k, v, log_partition)
        return grad_out, grad_keep, None, None, None, None


def _key_mask_grad(grad_out, out, q, k, v, log_partition) -> Tensor:
    b, heads, n, d = q.shape
    scale = d**-0.5
    grad_out = grad_out.to(v.dtype)
    weighted_grads = torch.zeros_like(v)
    weighted_dots = v.new_zeros((b, heads, n))
    grad_dot_out = (grad_out * out).sum(dim=-1)
    chunk = max(1, MAX_BIAS_ELEMENTS // max(1, b * heads * n))
    for s in range(0, n, chunk):
        rows = slice(s, s + chunk)
        logits = q[:, :, rows] @ k.transpose(-2, -1) * scale
        weights = torch.exp(logits - log_partition[:, :, rows, None])
        weighted_grads += weights.transpose(-2, -1) @ grad_out[:, :, rows]
        weighted_dots += (weights * grad_dot_out[:, :, rows, None]).sum(dim=2)
    grad = (v * weighted_grads).sum(dim=-1) - weighted_dots
    return grad.sum(dim=1)


class RoutedBlock(Block):
    """Global block whose attention branch is shared per token between global attention and a
    token refiner (``efficient_block``), mixed by routing decisions. Reads the raw block input
    for the refiner and ``LN(x)`` for attention; then the MLP and optional conv bottleneck."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        refiner: nn.Module,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        use_residual_block: bool = False,
    ):
        super().__init__(
            dim,
            num_heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            window_size=0,
            rel_pos_size=None,
            use_residual_block=use_residual_block,
        )
        self.efficient_block = refiner

    def refiner_floats_per_token(self) -> int:
        """The refiner's peak inference floats per token, as the refiner states it (the
        ``TOKEN_REFINER_REGISTRY`` contract), for the memory estimate."""
        cost = getattr(self.efficient_block, "inference_floats_per_token", None)
        if cost is None:
            raise TypeError(
                f"refiner {type(self.efficient_block).__name__} does not state its memory cost: "
                "define inference_floats_per_token() (see TOKEN_REFINER_REGISTRY)"
            )
        return int(cost())

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        """``x`` ``[B, H, W, C]`` with decisions ``keep`` ``[B, H*W]``: ``forward_train`` in
        training mode, else ``forward_eval`` (called through the module so hooks see it)."""
        return self.forward_train(x, keep) if self.training else self.forward_eval(x, keep)

    def forward_train(self, x: Tensor, keep: Tensor) -> Tensor:
        """Both branches on all tokens; ``keep`` ``[B, N]`` float decisions."""
        b, h, w, c = x.shape
        refined = self.efficient_block(x)
        q, k, v = self.attn.qkv_heads(self.norm1(x).reshape(b, h * w, c))
        attended = self.attn.merge_heads(policy_masked_attention(q, k, v, keep))
        d = keep.to(x.dtype).reshape(b, h, w, 1)
        mixed = d * attended.reshape(b, h, w, c) + (1.0 - d) * refined
        return self.finish(x + mixed)

    def forward_eval(self, x: Tensor, keep: Tensor) -> Tensor:
        """Refiner on all tokens, global attention among each image's kept tokens only."""
        b, h, w, c = x.shape
        tokens = x.reshape(b, h * w, c)
        mixed = self.efficient_block(x).reshape(b, h * w, c)
        if mixed.untyped_storage().data_ptr() == x.untyped_storage().data_ptr():
            mixed = mixed.clone()  # a refiner returning (a view of) its input: keep x intact
        for i in range(b):
            index = keep[i].nonzero().squeeze(1)
            if index.numel() == 0:
                continue
            # LayerNorm is per token: normalising only the gathered tokens gives the same values.
            kept = self.norm1(tokens[i].index_select(0, index)).unsqueeze(0)
            attended = self.attn.forward_tokens(kept)[0]
            # Under CUDA autocast the refiner's output and attention's may differ in dtype
            # (layer_norm runs in fp32 there): scatter into the wider of the two.
            wider = torch.promote_types(mixed.dtype, attended.dtype)
            mixed = mixed.to(wider)
            mixed[i].index_copy_(0, index, attended.to(wider))
        return self.finish(residual_add(mixed.reshape(b, h, w, c), x, self.low_memory()))


def _resolve(registry, spec: str | nn.Module, *args: Any, **kwargs: Any) -> Any:
    """A registry name is built with the given args; a built policy module is used as is."""
    if isinstance(spec, str):
        return build_from_registry(registry, spec, *args, **kwargs)
    if registry is ROUTING_POLICY_REGISTRY and isinstance(spec, RoutingPolicy):
        return spec
    raise TypeError(f"Expected a {registry._name} registry name, got {spec!r}")


class RoutedViT(ViTEncoderBase):
    """MEMatte student encoder (no final norm).

    Global blocks other than block 0 are routed; router ``k`` serves the ``k``-th routed block
    and reads that block's input. Window blocks carry rel-pos tables sized for the window
    (27 x head_dim for 14); global blocks carry none.

    Args:
        router, refiner, routing_policy: registry names (the policy may also be a built
            :class:`RoutingPolicy`) of
            ``ROUTER_REGISTRY``, ``TOKEN_REFINER_REGISTRY``, ``ROUTING_POLICY_REGISTRY``.
        keep_ratio: the policy's target share of globally attended tokens (rho).
        max_tokens: configured inference cap of globally attended tokens per image (None = no
            cap); a call's :class:`RoutingBudget` may replace it.
        inference_keep_ratio: configured inference rule: keep exactly the ``ceil(ratio * N)``
            largest-margin tokens per image instead of the policy default (None = policy
            default); a call's :class:`RoutingBudget` may replace it.
        router_kwargs, refiner_kwargs, policy_kwargs: extra constructor arguments.
        Others: as in :class:`~mematte_d2.modeling.ViTMatteEncoder`.

    The budget of one inference call is an argument of :meth:`forward`, never an attribute set
    for the call, so concurrent callers with different budgets do not interfere.
    """

    def __init__(
        self,
        patch_size: int = 16,
        in_chans: int = 4,
        embed_dim: int = 384,
        depth: int = 12,
        num_heads: int = 6,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        window_size: int = 14,
        window_block_indexes: tuple[int, ...] = (0, 1, 3, 4, 6, 7, 9, 10),
        residual_block_indexes: tuple[int, ...] = (2, 5, 8, 11),
        use_rel_pos: bool = True,
        router: str = "LocalGlobalRouter",
        refiner: str = "LTRM",
        routing_policy: str | RoutingPolicy = "BATR",
        keep_ratio: float = 0.25,
        max_tokens: int | None = None,
        inference_keep_ratio: float | None = None,
        pretrain_img_size: int = 224,
        pretrain_use_cls_token: bool = True,
        router_kwargs: Mapping[str, Any] | None = None,
        refiner_kwargs: Mapping[str, Any] | None = None,
        policy_kwargs: Mapping[str, Any] | None = None,
    ):
        super().__init__(patch_size, in_chans, embed_dim, pretrain_img_size, pretrain_use_cls_token)
        window_block_indexes = validate_window_layout(window_block_indexes, window_size, depth)
        residual_block_indexes = validate_block_indexes(
            residual_block_indexes, depth, "residual_block_indexes"
        )
        self.window_block_indexes = window_block_indexes
        self.residual_block_indexes = residual_block_indexes
        self.routed_block_indexes = tuple(
            i for i in range(depth) if i not in window_block_indexes and i != 0
        )
        self.num_routed_blocks = len(self.routed_block_indexes)
        refiner_kwargs = dict(refiner_kwargs or {})
        router_kwargs = dict(router_kwargs or {})

        self.blocks = nn.ModuleList()
        for i in range(depth):
            common = dict(
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                use_residual_block=i in residual_block_indexes,
            )
            if i in self.routed_block_indexes:
                block = RoutedBlock(
                    embed_dim,
                    num_heads,
                    _resolve(TOKEN_REFINER_REGISTRY, refiner, embed_dim, **refiner_kwargs),
                    **common,
                )
            else:
                is_window = i in window_block_indexes
                block = Block(
                    embed_dim,
                    num_heads,
                    window_size=window_size if is_window else 0,
                    rel_pos_size=(window_size, window_size) if is_window and use_rel_pos else None,
                    **common,
                )
            self.blocks.append(block)
        self.routers = nn.ModuleList(
            _resolve(ROUTER_REGISTRY, router, embed_dim, **router_kwargs)
            for _ in self.routed_block_indexes
        )
        self.routing_policy = _resolve(
            ROUTING_POLICY_REGISTRY, routing_policy, keep_ratio, **dict(policy_kwargs or {})
        )
        self.max_tokens = check_max_tokens(max_tokens)
        self.inference_keep_ratio = check_keep_ratio(inference_keep_ratio)
        self.init_weights()

    @property
    def keep_ratio(self) -> float:
        """The policy's training target share of globally attended tokens."""
        return self.routing_policy.keep_ratio

    def resolve_budget(self, budget: RoutingBudget | None) -> RoutingBudget:
        """The budget a call runs with: the call's values, the configured ones where it has
        None."""
        budget = budget or RoutingBudget()
        return RoutingBudget(
            max_tokens=self.max_tokens if budget.max_tokens is None else budget.max_tokens,
            keep_ratio=(self.inference_keep_ratio if budget.keep_ratio is None
                        else budget.keep_ratio),
        )

    def _decide(self, log_probs: Tensor, budget: RoutingBudget) -> Tensor:
        """The policy's decisions; at inference the token cap is enforced here, after the
        policy: the one place it is applied, so no policy can exceed it."""
        if self.training:
            return self.routing_policy.train_decisions(log_probs)
        keep = self.routing_policy.eval_decisions(log_probs, keep_ratio=budget.keep_ratio)
        return cap_tokens(keep, routing_margin(log_probs), budget.max_tokens)

    def forward(
        self, x: Tensor | RegionSource, budget: RoutingBudget | None = None
    ) -> dict[str, Tensor]:
        """``x`` ``[B, in_chans, H, W]`` (H, W multiples of the patch size; a tensor or a region
        source), ``budget`` the inference token budget of this call (None: the configured one;
        ignored in training) -> dict with
        "features" ``[B, C, h, w]``; "routing" ``[B, K, h, w]`` decisions of the K routed
        blocks (training: float with straight-through gradients; eval: bool); "keep_ratios"
        ``[K]`` (share of kept tokens per block over the batch) and "routing_loss" (policy)."""
        budget = self.resolve_budget(budget)
        x = self.embed(x)
        b, h, w, c = x.shape
        decisions = []
        for i, block in enumerate(self.blocks):
            if i not in self.routed_block_indexes:
                x = block(x)
                continue
            router = self.routers[len(decisions)]
            keep = self._decide(router(x.reshape(b, h * w, c)), budget)
            x = block(x, keep)
            decisions.append(keep)

        if decisions:
            routing = torch.stack(decisions, dim=1)
        else:
            routing = x.new_zeros((b, 0, h * w), dtype=x.dtype if self.training else torch.bool)
        as_float = routing.to(x.dtype) if routing.dtype == torch.bool else routing
        return {
            "features": x.permute(0, 3, 1, 2),
            "routing": routing.reshape(b, -1, h, w),
            "keep_ratios": as_float.detach().mean(dim=(0, 2)),
            "routing_loss": self.routing_policy.loss(as_float),
        }
