"""A whole MoE layer made of torch.ops.aclnn_moe operators compiles with fullgraph=True (0 graph breaks) under
aot_eager and inductor, and matches eager and a dense torch layer."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="torch is optional (the `torch` extra); these tests need it")

import aclnn_moe.torch  # noqa: E402,F401

T, H, E, K, F = 16, 32, 8, 2, 16


def _weights(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(H, E, generator=g) * 0.5, torch.randn(E, H, F, generator=g) * 0.1,
            torch.randn(E, F, H, generator=g) * 0.1)


def _experts(rows, counts, w1, w2):
    """Per-expert FFN over rows sorted by expert, `counts` rows each (a Python loop over static E)."""
    outs, start = [], 0
    ends = torch.cumsum(counts, 0)
    for e in range(E):
        # a static mask instead of data-dependent slicing keeps the graph static
        pos = torch.arange(rows.shape[0])
        lo = ends[e] - counts[e]
        sel = ((pos >= lo) & (pos < ends[e])).to(rows.dtype).unsqueeze(1)
        outs.append(torch.relu(rows @ w1[e]) @ w2[e] * sel)
    return torch.stack(outs).sum(0)


def moe_layer_v2(x, router, w1, w2):
    logits = x @ router
    weights, ids, _ = torch.ops.aclnn_moe.moe_gating_top_k(logits, K, norm_type=1)
    expanded, row_idx, counts, _ = torch.ops.aclnn_moe.moe_init_routing_v2(
        x, ids, active_num=0, expert_num=E, expert_tokens_count_or_cumsum_flag=2)
    y = _experts(expanded, counts.long(), w1, w2)
    return torch.ops.aclnn_moe.moe_finalize_routing(y, None, None, None, weights, row_idx, None, 2)


def moe_layer_ep(x, router, w1, w2):
    logits = x @ router
    weights, ids, _ = torch.ops.aclnn_moe.moe_gating_top_k(logits, K, norm_type=1)
    permuted, sorted_idx, _ = torch.ops.aclnn_moe.moe_token_permute_with_ep(x, ids)
    counts = torch.nn.functional.one_hot(ids.long(), E).sum((0, 1))  # static shape, unlike bincount
    y = _experts(permuted, counts, w1, w2)
    return torch.ops.aclnn_moe.moe_token_unpermute_with_ep(y, sorted_idx, probs=weights)


def dense(x, router, w1, w2):
    scores = torch.sigmoid(x @ router)
    top, ids = torch.topk(scores, K, dim=1)
    top = top / (top.sum(1, keepdim=True) + 1e-20)
    out = torch.zeros_like(x)
    for t in range(x.shape[0]):
        for j in range(K):
            e = int(ids[t, j])
            out[t] += top[t, j] * (torch.relu(x[t] @ w1[e]) @ w2[e])
    return out


@pytest.mark.parametrize("layer", [moe_layer_v2, moe_layer_ep], ids=["init_routing_v2", "permute_with_ep"])
@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_moe_layer_compiles_fullgraph_and_matches(layer, backend):
    import torch._dynamo

    torch._dynamo.reset()
    x = torch.randn(T, H, generator=torch.Generator().manual_seed(1))
    w = _weights()
    eager = layer(x, *w)
    torch.testing.assert_close(eager, dense(x, *w), rtol=2e-5, atol=2e-5)
    explained = torch._dynamo.explain(layer)(x, *w)
    assert explained.graph_break_count == 0 and explained.graph_count == 1, explained.break_reasons
    compiled = torch.compile(layer, fullgraph=True, backend=backend)
    torch.testing.assert_close(compiled(x, *w), eager, rtol=1e-5, atol=1e-5)
