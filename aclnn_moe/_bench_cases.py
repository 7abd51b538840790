"""The shapes of ``aclnn-moe bench``: one model table, and for each operator a builder of its inputs at T tokens.

Each builder returns a ``Built``: the function-form call (numpy arguments), the bytes the operator must move
(bytes written plus distinct bytes read: the traffic a memcpy is compared with) and whether memory bounds it.
Inputs are drawn from a seeded generator; large row blocks are tiled from one random block (values do not
change the work of a routing operator, and drawing a GB of normals would take longer than the benchmark).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ._dtypes import bfloat16_dtype

__all__ = ["MODELS", "Model", "Built", "OPS", "tokens_of_tier", "hidden_of_tier", "build"]


@dataclass(frozen=True)
class Model:
    """Routing shapes of one MoE model (perf.md section 7)."""

    name: str
    title: str
    hidden: int
    experts: int
    top_k: int
    groups: int = 1
    topk_groups: int = 1
    sigmoid: bool = False
    bias: bool = False
    scale: float = 1.0

    @property
    def ep_ranks(self) -> int:
        """Ranks of the expert-parallel cases (EP16, or one expert per rank for fewer experts)."""
        return 16 if self.experts % 16 == 0 else self.experts

    def gating_kwargs(self) -> dict[str, Any]:
        if self.sigmoid:
            return dict(k_group=self.topk_groups, group_count=self.groups, group_select_mode=1, norm_type=1,
                        routed_scaling_factor=self.scale)
        return dict(norm_type=0, routed_scaling_factor=self.scale)


MODELS: dict[str, Model] = {m.name: m for m in (
    Model("dsv3", "DeepSeek-V3", hidden=7168, experts=256, top_k=8, groups=8, topk_groups=4, sigmoid=True,
          bias=True, scale=2.5),
    Model("qwen3", "Qwen3-MoE-235B", hidden=4096, experts=128, top_k=8),
    Model("mixtral", "Mixtral-8x7B", hidden=4096, experts=8, top_k=2),
)}

FULL_TOKENS = (1, 16, 256, 4096, 16384)
QUICK_TOKENS = (1, 16, 256, 1024)
QUICK_HIDDEN = 512


def tokens_of_tier(quick: bool) -> tuple[int, ...]:
    return QUICK_TOKENS if quick else FULL_TOKENS


def hidden_of_tier(model: Model, quick: bool) -> int:
    return min(model.hidden, QUICK_HIDDEN) if quick else model.hidden


@dataclass
class Built:
    function: str  # the aclnn_moe function (also the torch op's and the composite's name)
    args: tuple
    kwargs: dict
    nbytes: int  # bytes written + distinct bytes read
    memory_bound: bool
    extra: dict = field(default_factory=dict)  # shown in --json (e.g. the EP window)


# ---- inputs -----------------------------------------------------------------------------------------------

_BLOCK = (1 << 20) + 7  # elements of the random block tiled into big arrays (not a multiple of any H)


def _rows(rng, shape, dtype) -> np.ndarray:
    """A random array; above one block, tiled from one random block."""
    n = int(np.prod(shape))
    dt = np.dtype(dtype)
    if dt == np.int8:
        block = rng.integers(-128, 128, min(n, _BLOCK), dtype=np.int8)
    else:
        block = rng.standard_normal(min(n, _BLOCK), dtype=np.float32).astype(dt)
    out = np.empty(n, dt)
    for i in range(0, n, _BLOCK):
        m = min(_BLOCK, n - i)
        out[i:i + m] = block[:m]
    return out.reshape(shape)


def _routing(rng, t, k, e) -> np.ndarray:
    """K distinct experts per token, uniform: [t, k] int32."""
    out = np.empty((t, k), np.int32)
    step = max(1, (1 << 22) // max(e, 1))
    for i in range(0, t, step):
        m = min(step, t - i)
        out[i:i + m] = np.argpartition(rng.random((m, e), dtype=np.float32), k - 1, axis=1)[:, :k]
    return out


def _ep_window(idx, experts, ranks=8):
    """The sorted-position window [r0, r1) of EP rank 1 of `ranks` (experts [E/ranks, 2E/ranks))."""
    flat = np.sort(idx.ravel())
    per = max(experts // ranks, 1)
    return [int(np.searchsorted(flat, per)), int(np.searchsorted(flat, 2 * per))]


# ---- one builder per operator: (rng, model, T, H) -> Built --------------------------------------------------

def _gating(rng, m, t, h):
    bf16 = bfloat16_dtype()
    x = _rows(rng, (t, m.experts), bf16)
    kw = m.gating_kwargs()
    if m.bias:
        kw["bias"] = (rng.standard_normal(m.experts) * 0.1).astype(bf16)
    return Built("moe_gating_top_k", (x, m.top_k), kw, x.nbytes + t * m.top_k * (2 + 4), False)


def _gating_softmax(rng, m, t, h):
    x = _rows(rng, (t, m.experts), bfloat16_dtype())
    return Built("moe_gating_top_k_softmax", (x,), dict(k=m.top_k), x.nbytes + t * m.top_k * (2 + 4 + 4), False)


def _expert_tokens(rng, m, t, h):
    se = np.sort(_routing(rng, t, m.top_k, m.experts).ravel()).astype(np.int32)
    return Built("moe_compute_expert_tokens", (se, m.experts), {}, se.nbytes + 4 * m.experts, False)


def _routed(rng, m, t, h):
    return _rows(rng, (t, h), bfloat16_dtype()), _routing(rng, t, m.top_k, m.experts)


def _init_routing(rng, m, t, h):
    x, idx = _routed(rng, m, t, h)
    k = m.top_k
    row = np.arange(t * k, dtype=np.int32).reshape(k, t).T.copy()
    return Built("moe_init_routing", (x, row, idx, t), {}, x.nbytes * (k + 1) + t * k * 4 * 4, True)


def _init_routing_v2(rng, m, t, h):
    x, idx = _routed(rng, m, t, h)
    kw = dict(expert_num=m.experts, expert_tokens_count_or_cumsum_flag=2)
    return Built("moe_init_routing_v2", (x, idx), kw, x.nbytes * (m.top_k + 1) + t * m.top_k * 8 + 4 * m.experts,
                 True)


def _init_routing_v3(rng, m, t, h):
    """vllm-ascend's call of torch_npu.npu_moe_init_routing_v2 (which runs aclnnMoeInitRoutingV3)."""
    x, idx = _routed(rng, m, t, h)
    kw = dict(active_num=t * m.top_k, expert_num=m.experts, expert_tokens_num_type=1, expert_tokens_num_flag=True,
              active_expert_range=[0, m.experts], quant_mode=-1)
    return Built("moe_init_routing_v3", (x, idx), kw, x.nbytes * (m.top_k + 1) + t * m.top_k * 8 + 8 * m.experts,
                 True)


def _token_permute(rng, m, t, h):
    x, idx = _routed(rng, m, t, h)
    return Built("moe_token_permute", (x, idx), {}, x.nbytes * (m.top_k + 1) + t * m.top_k * 8, True)


def _permute_with_ep(rng, m, t, h):
    x, idx = _routed(rng, m, t, h)
    probs = rng.random(idx.shape, dtype=np.float32).astype(x.dtype)
    r = _ep_window(idx, m.experts)
    order = np.argsort(idx.ravel(), kind="stable")
    distinct = np.unique(order[r[0]:r[1]] // m.top_k).size  # tokens read
    n = r[1] - r[0]
    nbytes = distinct * h * 2 + n * h * 2 + t * m.top_k * (4 + 4 + 2) + n * 2
    return Built("moe_token_permute_with_ep", (x, idx), dict(probs=probs, range=r), nbytes, True,
                 dict(ep_window=r, ep_ranks=8, ep_rank=1))


def _expert_rows(rng, m, t, h, rows):
    bf16 = bfloat16_dtype()
    y = _rows(rng, (rows, h), bf16)
    probs = rng.random((t, m.top_k), dtype=np.float32).astype(bf16)
    perm = rng.permutation(t * m.top_k).astype(np.int32)
    return y, probs, perm


def _token_unpermute(rng, m, t, h):
    k = m.top_k
    y, probs, perm = _expert_rows(rng, m, t, h, t * k)
    return Built("moe_token_unpermute", (y, perm), dict(probs=probs), y.nbytes + t * h * 2 + t * k * 6, True)


def _unpermute_with_ep(rng, m, t, h):
    k = m.top_k
    idx = _routing(rng, t, k, m.experts)
    r = _ep_window(idx, m.experts)
    inv = np.empty(t * k, np.int32)
    inv[np.argsort(idx.ravel(), kind="stable")] = np.arange(t * k, dtype=np.int32)  # as permute_with_ep returns
    y, probs, _ = _expert_rows(rng, m, t, h, r[1] - r[0])
    return Built("moe_token_unpermute_with_ep", (y, inv), dict(probs=probs, num_topk=k, range=r),
                 y.nbytes + t * h * 2 + t * k * 6, True, dict(ep_window=r, ep_ranks=8, ep_rank=1))


def _finalize(rng, m, t, h):
    """FinalizeRoutingV2, drop_pad_mode 2 (the InitRoutingV2/V3 layout), a residual (skip1), bf16 scales."""
    k = m.top_k
    y, scales, perm = _expert_rows(rng, m, t, h, t * k)
    skip1 = _rows(rng, (t, h), y.dtype)
    return Built("moe_finalize_routing", (y, skip1, None, None, scales, perm, None), dict(drop_pad_mode=2),
                 y.nbytes + 2 * skip1.nbytes + t * k * 6, True)


def _re_routing(rng, m, t, h):
    """What one rank of EP16 receives after the all-to-all: A = T*K int8 rows with fp32 per-row scales."""
    n = m.ep_ranks
    e = m.experts // n
    a = t * m.top_k
    cnt = rng.multinomial(a, np.ones(n * e) / (n * e)).reshape(n, e).astype(np.int32)
    tok = _rows(rng, (a, h), np.int8)
    sc = rng.random(a, dtype=np.float32)
    return Built("moe_re_routing", (tok, cnt), dict(per_token_scales=sc), 2 * tok.nbytes + a * 12 + cnt.nbytes,
                 True, dict(ep_ranks=n, local_experts=e, rows=a))


# the table's operators, in table order: (label, builder)
OPS: dict[str, Callable] = {
    "gating_top_k": _gating,
    "gating_top_k_softmax": _gating_softmax,
    "compute_expert_tokens": _expert_tokens,
    "init_routing": _init_routing,
    "init_routing_v2": _init_routing_v2,
    "init_routing_v3": _init_routing_v3,
    "token_permute": _token_permute,
    "token_permute_with_ep": _permute_with_ep,
    "token_unpermute": _token_unpermute,
    "token_unpermute_with_ep": _unpermute_with_ep,
    "finalize_routing": _finalize,
    "re_routing": _re_routing,
}


def build(op: str, model: Model, tokens: int, hidden: int, seed: int) -> Built:
    return OPS[op](np.random.default_rng(seed), model, tokens, hidden)
