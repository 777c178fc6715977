"""SDPA attention paths of the encoders against the explicit formulas (fp64 references)."""

import math

import pytest
import torch
import torch.nn.functional as F

from mematte_d2.modeling import vit
from mematte_d2.modeling.routed_vit import RoutedBlock, policy_masked_attention
from mematte_d2.modeling.routing import LTRM
from mematte_d2.modeling.vit import Block, resize_abs_pos, resize_rel_pos


def explicit_rel_pos_attention(q, k, v, rel_pos_h, rel_pos_w, hw):
    """softmax(scale q k^T + q.Rh[y_i - y_j + h - 1] + q.Rw[x_i - x_j + w - 1]) v, tables of
    exactly 2h-1 / 2w-1 rows, written with plain indexing."""
    h, w = hw
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    table_h = rel_pos_h[ys[:, None] - ys[None, :] + h - 1]  # [N, N, D]
    table_w = rel_pos_w[xs[:, None] - xs[None, :] + w - 1]
    bias = torch.einsum("bhid,ijd->bhij", q, table_h) + torch.einsum("bhid,ijd->bhij", q, table_w)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + bias
    return scores.softmax(-1) @ v


def explicit_policy_attention(q, k, v, keep, eps=1e-6):
    """docs/routing.md's masked softmax as the release writes it: exp-scores minus the
    (undetached) row max times (d_j + (1 - d_j)[i == j]), then (e + eps/N) / (sum e + eps)."""
    n = q.shape[2]
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    policy = keep[:, None, None, :]
    eye = torch.eye(n, dtype=q.dtype)
    mask = policy + (1 - policy) * eye
    e = (scores - scores.amax(-1, keepdim=True)).exp() * mask
    return ((e + eps / n) / (e.sum(-1, keepdim=True) + eps)) @ v


def attention_branch_reference(block, x):
    """Explicit window/global attention branch of a ViT block on grid x [B, H, W, C]."""
    ws = block.window_size
    normed = block.norm1(x).double()
    b, h, w, c = x.shape
    attn = block.attn
    weight, bias = attn.qkv.weight.double(), attn.qkv.bias.double()
    if ws > 0:
        pad_h, pad_w = (-h) % ws, (-w) % ws
        normed = F.pad(normed, (0, 0, 0, pad_w, 0, pad_h))
        hp, wp = h + pad_h, w + pad_w
        wins = normed.reshape(b, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
        tokens, grid = wins.reshape(-1, ws * ws, c), (ws, ws)
    else:
        tokens, grid = normed.reshape(b, h * w, c), (h, w)
    qkv = F.linear(tokens, weight, bias)
    qkv = qkv.reshape(tokens.shape[0], -1, 3, attn.num_heads, attn.head_dim)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    tables = attn.rel_pos_h.double(), attn.rel_pos_w.double()
    out = explicit_rel_pos_attention(q, k, v, *tables, grid)
    out = out.transpose(1, 2).reshape(tokens.shape[0], -1, c)
    out = F.linear(out, attn.proj.weight.double(), attn.proj.bias.double())
    if ws > 0:
        out = out.reshape(b, hp // ws, wp // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
        out = out.reshape(b, hp, wp, c)[:, :h, :w]
    return out.reshape(b, h, w, c)


def randomize_rel_pos(block):
    with torch.no_grad():
        block.attn.rel_pos_h.normal_(std=0.5)
        block.attn.rel_pos_w.normal_(std=0.5)


@pytest.mark.parametrize("hw", [(3, 2), (8, 8), (9, 13)])
def test_window_attention_matches_explicit_formula(hw):
    block = Block(32, 4, window_size=4, rel_pos_size=(1, 1)).eval()
    assert block.attn.rel_pos_h.shape == (7, 8)
    randomize_rel_pos(block)
    x = torch.randn(2, *hw, 32)
    torch.testing.assert_close(
        block.attention(x), attention_branch_reference(block, x).float(), atol=1e-5, rtol=0
    )


def test_global_rel_pos_attention_matches_explicit_and_chunks(monkeypatch):
    block = Block(32, 4, window_size=0, rel_pos_size=(5, 7)).eval()
    randomize_rel_pos(block)
    x = torch.randn(2, 5, 7, 32)
    expected = attention_branch_reference(block, x).float()
    torch.testing.assert_close(block.attention(x), expected, atol=1e-5, rtol=0)
    monkeypatch.setattr(vit, "MAX_BIAS_ELEMENTS", 2 * 4 * 35 * 3)  # 3 query rows per chunk
    torch.testing.assert_close(block.attention(x), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("window_size,hw", [(0, (5, 7)), (4, (9, 6))])
def test_dense_attention_matches_explicit_formula(window_size, hw):
    rel_pos_size = (1, 1) if window_size else hw
    block = Block(32, 4, window_size=window_size, rel_pos_size=rel_pos_size,
                  attention_impl="dense").eval()
    randomize_rel_pos(block)
    x = torch.randn(2, *hw, 32)
    expected = attention_branch_reference(block, x).float()
    torch.testing.assert_close(block.attention(x), expected, atol=1e-5, rtol=0)


def test_unknown_attention_impl_is_named():
    with pytest.raises(ValueError, match="attention_impl.*'flash'"):
        Block(32, 4, attention_impl="flash")


def test_rel_pos_resize_identity_and_interpolation():
    table = torch.randn(63, 8)
    same = resize_rel_pos(table, 32, 32)
    i, j = 5, 20
    torch.testing.assert_close(same[i, j], table[i - j + 31])
    small = resize_rel_pos(table, 6, 6)
    assert small.shape == (6, 6, 8)
    resized = F.interpolate(table.t()[None], size=11, mode="linear", align_corners=False)[0].t()
    torch.testing.assert_close(small[0, 5], resized[0])
    torch.testing.assert_close(small[5, 0], resized[10])


def test_abs_pos_resize_drops_class_token_and_keeps_pretrain_grid():
    table = torch.randn(1, 197, 16)
    torch.testing.assert_close(resize_abs_pos(table, True, (14, 14))[0, 0, 0], table[0, 1])
    changed = table.clone()
    changed[0, 0] += 5.0  # class token slot is ignored
    out = resize_abs_pos(table, True, (5, 9))
    assert out.shape == (1, 5, 9, 16)
    torch.testing.assert_close(resize_abs_pos(changed, True, (5, 9)), out)


@pytest.mark.parametrize("logit_scale", [1.0, 4.0])
@pytest.mark.parametrize("pattern", ["random", "all", "none"])
def test_policy_masked_attention_matches_explicit_formula(pattern, logit_scale):
    q = torch.randn(2, 3, 40, 16) * logit_scale
    k = torch.randn(2, 3, 40, 16) * logit_scale
    v = torch.randn(2, 3, 40, 16)
    keep = {
        "random": (torch.rand(2, 40) < 0.3).float(),
        "all": torch.ones(2, 40),
        "none": torch.zeros(2, 40),
    }[pattern]
    expected = explicit_policy_attention(q.double(), k.double(), v.double(), keep.double())
    out = policy_masked_attention(q, k, v, keep)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=0)


def test_policy_masked_attention_eps_matters_when_max_key_is_dropped():
    # query 0 scores key 1 far above everything; key 1 dropped -> eps terms dominate
    q = torch.zeros(1, 1, 3, 2)
    k = torch.zeros(1, 1, 3, 2)
    q[..., 0, 0] = 10.0
    k[..., 1, 0] = 4.0
    k[..., 0, 0] = -4.0
    v = torch.randn(1, 1, 3, 2)
    keep = torch.tensor([[0.0, 0.0, 1.0]])
    expected = explicit_policy_attention(q.double(), k.double(), v.double(), keep.double())
    plain = explicit_policy_attention(q.double(), k.double(), v.double(), keep.double(), eps=0.0)
    assert (expected - plain).abs().max() > 1e-3  # the eps floor is not negligible here
    torch.testing.assert_close(
        policy_masked_attention(q, k, v, keep).double(), expected, atol=1e-5, rtol=0
    )


def test_policy_masked_attention_gradients_match_explicit():
    q, k, v = (torch.randn(1, 2, 12, 8, dtype=torch.float64) for _ in range(3))
    hard = (torch.rand(1, 12) < 0.5).double()
    grads = []
    for fn in (policy_masked_attention, explicit_policy_attention):
        leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
        soft = torch.rand(1, 12, dtype=torch.float64, requires_grad=True)
        keep = hard - soft.detach() + soft
        out = fn(*leaves, keep.float() if fn is policy_masked_attention else keep)
        (out.double() * torch.linspace(-1, 1, 8, dtype=torch.float64)).sum().backward()
        grads.append([t.grad for t in leaves] + [soft.grad])
    for mine, ref in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(mine.double(), ref, atol=1e-4, rtol=1e-4)


def _attention_grads(fn, q, k, v, hard, out_grad):
    """Gradients of (fn(q, k, v, keep) * out_grad).sum() w.r.t. q, k, v and the soft decisions
    behind straight-through ``keep``."""
    leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
    soft = torch.full_like(hard, 0.5, requires_grad=True)
    (fn(*leaves, hard - soft.detach() + soft) * out_grad).sum().backward()
    return [t.grad for t in leaves] + [soft.grad]


def _detached_max_attention(q, k, v, keep, eps=1e-6):
    """The explicit formula with the row max detached (this project's former gradient)."""
    n = q.shape[2]
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    mask = keep[:, None, None, :] + (1 - keep[:, None, None, :]) * torch.eye(n, dtype=q.dtype)
    e = (scores - scores.amax(-1, keepdim=True).detach()).exp() * mask
    return ((e + eps / n) / (e.sum(-1, keepdim=True) + eps)) @ v


@pytest.mark.parametrize("logit_std", [1.0, 4.0, 16.0])
def test_policy_masked_attention_gradient_is_the_releases_in_float64(logit_std):
    # q, k ~ N(0, sigma^2) give scores q.k / sqrt(D) of std sigma^2 = logit_std
    gen = torch.Generator().manual_seed(0)
    q, k, v, out_grad = (
        torch.randn(2, 3, 48, 16, dtype=torch.float64, generator=gen) for _ in range(4)
    )
    q, k = q * logit_std**0.5, k * logit_std**0.5
    hard = (torch.rand(2, 48, dtype=torch.float64, generator=gen) < 0.3).double()
    mine = _attention_grads(policy_masked_attention, q, k, v, hard, out_grad)
    release = _attention_grads(explicit_policy_attention, q, k, v, hard, out_grad)
    for name, a, b in zip(("q", "k", "v", "keep"), mine, release, strict=True):
        assert a.dtype == torch.float64
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=name)
    if logit_std == 16.0:  # wide logits: a detached max would miss a large share of dL/dq
        detached = _attention_grads(_detached_max_attention, q, k, v, hard, out_grad)
        assert (detached[0] - release[0]).norm() > 0.1 * release[0].norm()


def test_policy_masked_attention_suits_fused_kernels_without_changing_results(monkeypatch):
    # CUDA's memory-efficient kernel needs head dims divisible by 4 (fp32) / 8 (fp16, bf16) and,
    # like CPU's flash kernel, a mask without gradient; padding must not change any value.
    from mematte_d2.modeling import routed_vit

    head_dims, mask_grads = [], []
    sdpa = F.scaled_dot_product_attention

    def recording_sdpa(q, k, v, **kwargs):
        head_dims.append((q.shape[-1], k.shape[-1], v.shape[-1]))
        mask_grads.append(kwargs["attn_mask"].requires_grad)
        return sdpa(q, k, v, **kwargs)

    monkeypatch.setattr(routed_vit.F, "scaled_dot_product_attention", recording_sdpa)
    gen = torch.Generator().manual_seed(1)
    q, k, v, out_grad = (torch.randn(1, 2, 30, 16, generator=gen) * 2 for _ in range(4))
    hard = (torch.rand(1, 30, generator=gen) < 0.4).float()
    results = {}
    for multiple in (routed_vit.HEAD_DIM_MULTIPLE, 1):
        monkeypatch.setattr(routed_vit, "HEAD_DIM_MULTIPLE", multiple)
        out = policy_masked_attention(q, k, v, hard)
        results[multiple] = [out] + _attention_grads(
            policy_masked_attention, q, k, v, hard, out_grad
        )
    assert head_dims[0] == (24, 24, 24) and head_dims[-1] == (17, 17, 17)
    assert not any(mask_grads)  # also with straight-through decisions that need gradients
    for padded, plain in zip(results[8], results[1], strict=True):
        torch.testing.assert_close(padded, plain, rtol=1e-6, atol=1e-6)


def test_routed_block_inference_attends_only_among_kept_tokens():
    block = RoutedBlock(32, 4, LTRM(32)).eval()
    x = torch.randn(1, 4, 5, 32)
    keep = torch.zeros(1, 20, dtype=torch.bool)
    keep[0, [0, 3, 7, 8, 19]] = True
    out = block.forward_eval(x, keep)
    normed = block.norm1(x).reshape(1, 20, 32)
    q, k, v = block.attn.qkv_heads(normed[:, keep[0]])
    attended = block.attn.merge_heads(
        (q @ k.transpose(-1, -2) / math.sqrt(8)).softmax(-1) @ v
    )
    mixed = block.efficient_block(x).reshape(1, 20, 32).clone()
    mixed[:, keep[0]] = attended
    expected = block.finish(x + mixed.reshape(1, 4, 5, 32))
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_routed_block_training_mixes_branches_with_masked_attention():
    block = RoutedBlock(32, 4, LTRM(32)).train()
    x = torch.randn(2, 3, 4, 32)
    keep = (torch.rand(2, 12) < 0.5).float()
    q, k, v = block.attn.qkv_heads(block.norm1(x).reshape(2, 12, 32))
    attended = block.attn.merge_heads(explicit_policy_attention(q, k, v, keep)).reshape(x.shape)
    d = keep.reshape(2, 3, 4, 1)
    expected = block.finish(x + d * attended + (1 - d) * block.efficient_block(x))
    torch.testing.assert_close(block.forward_train(x, keep), expected, atol=1e-5, rtol=0)
