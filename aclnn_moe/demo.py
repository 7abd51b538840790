"""``aclnn-moe demo``: one MoE layer on a DeepSeek-V3-shaped batch, every routing step through the aclnn ABI.

Routing is DeepSeek-V3's (256 experts in 8 groups, top-4 groups, top-8 experts, sigmoid scores with a
correction bias, routed scaling 2.5); the experts are small two-layer FFNs computed with numpy (torch when it
is installed) so the layer fits any machine. Two chains are run and each is checked against a dense per-token
computation of the same layer:

  k-major:   gating_top_k -> init_routing -> compute_expert_tokens -> experts -> finalize_routing (mode 0)
  row-major: gating_top_k -> init_routing_v2 -> experts -> finalize_routing (mode 2)
                                                       \\-> token_unpermute_with_ep
and the expert-parallel split of the same batch: token_permute_with_ep per rank's slice of rows.
"""
from __future__ import annotations

import time

import numpy as np

E, GROUPS, TOPK_GROUPS, K, SCALING = 256, 8, 4, 8, 2.5


def _ffn_factory():
    try:
        import torch

        def ffn(x, w1, w2):
            h = torch.from_numpy(x) @ torch.from_numpy(w1)
            return (torch.nn.functional.silu(h) @ torch.from_numpy(w2)).numpy()

        return ffn, "torch"
    except ImportError:
        def ffn(x, w1, w2):
            h = x @ w1
            return (h / (1.0 + np.exp(-h))) @ w2

        return ffn, "numpy"


def _timed(timings, name, fn, repeat):
    best = []
    out = None
    for _ in range(max(repeat, 1)):
        t0 = time.perf_counter()
        out = fn()
        best.append(time.perf_counter() - t0)
    timings.append((name, float(np.median(best)) * 1e6))
    return out


def main(tokens: int = 512, repeat: int = 5, hidden: int = 256, ffn_hidden: int = 128, seed: int = 0) -> int:
    import aclnn_moe as am
    from .capi import backend

    rng = np.random.default_rng(seed)
    ffn, ffn_lib = _ffn_factory()
    T, H, F = tokens, hidden, ffn_hidden
    x = rng.standard_normal((T, H), dtype=np.float32)
    w_gate = (rng.standard_normal((H, E)) / np.sqrt(H)).astype(np.float32)
    correction_bias = (rng.standard_normal(E) * 0.1).astype(np.float32)
    w1 = (rng.standard_normal((E, H, F)) / np.sqrt(H)).astype(np.float32)
    w2 = (rng.standard_normal((E, F, H)) / np.sqrt(F)).astype(np.float32)
    logits = x @ w_gate

    print(f"aclnn-moe demo on the {backend().name} backend: {T} tokens, hidden {H}, {E} experts in {GROUPS} groups, "
          f"top-{TOPK_GROUPS} groups, top-{K}, sigmoid + bias, scaling {SCALING}; experts via {ffn_lib}")
    timings: list[tuple[str, float]] = []

    weights, expert_idx, _ = _timed(timings, "moe_gating_top_k", lambda: am.moe_gating_top_k(
        logits, K, bias=correction_bias, k_group=TOPK_GROUPS, group_count=GROUPS, group_select_mode=1,
        norm_type=1, routed_scaling_factor=SCALING), repeat)
    load = np.bincount(expert_idx.ravel(), minlength=E)
    print(f"routing      weights {weights.shape} sum/token {weights.sum(1).mean():.3f} (= scaling {SCALING}); "
          f"experts used {np.count_nonzero(load)}/{E}, tokens per expert min {load.min()} max {load.max()}")

    # dense reference of the layer: every token through its K experts, weighted
    dense = np.zeros((T, H), np.float32)
    for t in range(T):
        for j in range(K):
            e = expert_idx[t, j]
            dense[t] += weights[t, j] * ffn(x[t:t + 1], w1[e], w2[e])[0]

    def experts(rows, ends):
        out = np.empty_like(rows)
        start = 0
        for e in range(E):
            end = int(ends[e])
            if end > start:
                out[start:end] = ffn(rows[start:end], w1[e], w2[e])
            start = end
        return out

    ok = True

    def report(name, got):
        nonlocal ok
        err = float(np.max(np.abs(got - dense)) / (np.max(np.abs(dense)) + 1e-30))
        good = err < 1e-4
        ok &= good
        print(f"check        {name:<44} max rel err {err:.2e}  {'ok' if good else 'MISMATCH'}")

    # k-major chain (V1 init_routing; row_idx[i, k] = k*T + i as MoeGatingTopKSoftmax would emit)
    row_idx = np.arange(T * K, dtype=np.int32).reshape(K, T).T.copy()
    ex, ex_row, ex_expert = _timed(timings, "moe_init_routing", lambda: am.moe_init_routing(
        x, row_idx, expert_idx, T), repeat)
    ends = _timed(timings, "moe_compute_expert_tokens", lambda: am.moe_compute_expert_tokens(ex_expert, E), repeat)
    h = experts(ex, ends)
    out0 = _timed(timings, "moe_finalize_routing (mode 0)", lambda: am.moe_finalize_routing(
        h, None, None, None, weights, ex_row, expert_idx, drop_pad_mode=0), repeat)
    report("k-major: init_routing .. finalize mode 0", out0)

    # row-major chain (V2 init_routing, counts per expert)
    ex2, ex_row2, counts, _ = _timed(timings, "moe_init_routing_v2", lambda: am.moe_init_routing_v2(
        x, expert_idx, expert_num=E, expert_tokens_count_or_cumsum_flag=2), repeat)
    h2 = experts(ex2, np.cumsum(counts))
    out2 = _timed(timings, "moe_finalize_routing (mode 2)", lambda: am.moe_finalize_routing(
        h2, None, None, None, weights, ex_row2, expert_idx, drop_pad_mode=2), repeat)
    report("row-major: init_routing_v2 .. finalize mode 2", out2)
    out3 = _timed(timings, "moe_token_unpermute_with_ep", lambda: am.moe_token_unpermute_with_ep(
        h2, ex_row2, probs=weights), repeat)
    report("row-major: init_routing_v2 .. unpermute_with_ep", out3)

    # expert parallelism: 4 ranks of 64 experts; each rank permutes only its slice of the sorted rows
    ranks = 4
    bounds = np.concatenate([[0], np.cumsum(np.bincount(expert_idx.ravel() // (E // ranks), minlength=ranks))])
    parts = []
    for r in range(ranks):
        rng_r = [int(bounds[r]), int(bounds[r + 1])]
        pt, sorted_idx, pp = _timed(timings if r == 0 else [], "moe_token_permute_with_ep (1 rank)",
                                    lambda: am.moe_token_permute_with_ep(x, expert_idx, probs=weights, range=rng_r),
                                    repeat)
        ends_r = np.cumsum(np.bincount(np.sort(expert_idx.ravel())[rng_r[0]:rng_r[1]], minlength=E))
        parts.append(am.moe_token_unpermute_with_ep(experts(pt, ends_r), sorted_idx, probs=weights, range=rng_r))
    report(f"EP x{ranks}: permute_with_ep .. unpermute_with_ep", np.sum(parts, axis=0))

    print("timings      median wall time per call, staging included (host arrays are copied to device memory)")
    for name, us in timings:
        print(f"  {name:<36} {us:>10.1f} us")
    print("demo " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1
