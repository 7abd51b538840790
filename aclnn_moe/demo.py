"""``aclnn-moe demo``: one MoE layer on a DeepSeek-V3-shaped batch, every routing step through the aclnn ABI.

Routing is DeepSeek-V3's (256 experts in 8 groups, top-4 groups, top-8 experts, sigmoid scores with a
correction bias, routed scaling 2.5); the experts are small two-layer FFNs computed with numpy (torch when it
is installed) so the layer fits any machine. Every chain below is checked against a dense per-token computation
of the same layer, with the tolerance it prints:

  k-major:   gating_top_k -> init_routing -> compute_expert_tokens -> experts -> finalize_routing (mode 0)
  row-major: gating_top_k -> init_routing_v2 -> experts -> finalize_routing (mode 2)
                                                       \\-> token_unpermute_with_ep
and the layer as vLLM-Ascend runs it today (init_routing_v3 through torch_npu's npu_moe_init_routing_v2 signature):
  vllm-ascend:  gating_top_k (DeepSeek-V3) -> init_routing_v3 -> experts -> token_unpermute
  qwen3:        gating_top_k_softmax (Qwen3/Mixtral: softmax top-8 of 128, renormalised) -> init_routing_v3 ->
                experts -> token_unpermute (the router itself also checked against a dense softmax top-k)
  w8a8:         gating_top_k -> init_routing_quant_v2 (dynamic per-token int8) -> w8a8 experts (int8 x int8 GEMM,
                dequantised with the per-token and per-channel scales) -> token_unpermute, against a dense layer
                that quantises each token the same way
and expert parallelism over 4 simulated ranks of 64 experts each, in two forms:
  slices:     token_permute_with_ep(range = a rank's rows) -> experts -> token_unpermute_with_ep(range), summed
  all-to-all: per source rank token_permute_with_ep -> int8 per-token quantization -> exchange ->
              re_routing (rank-major to expert-major, scales alongside) -> experts -> undo re_routing ->
              exchange back -> token_unpermute_with_ep
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


def _dense(x, expert_idx, weights, w1, w2, ffn):
    """The layer computed token by token: every token through its K experts, weighted."""
    out = np.zeros_like(x)
    for t in range(x.shape[0]):
        for j in range(expert_idx.shape[1]):
            e = expert_idx[t, j]
            out[t] += weights[t, j] * ffn(x[t:t + 1], w1[e], w2[e])[0]
    return out


def _quantize_rows(rows):
    """Dynamic per-row int8 quantization, as dispatch does before the all-to-all: (int8 rows, fp32 scales)."""
    scale = np.maximum(np.abs(rows).max(axis=1), 1e-30).astype(np.float32) / np.float32(127)
    return np.rint(rows / scale[:, None]).astype(np.int8), scale


def _quantize_rows_away(rows):
    """The documented rule of init_routing_quant_v2's dynamic mode, written independently of it: s = max|row| / 127
    in fp32, q = round(row / s) with ties away from zero (the NPU's CAST_ROUND). (int8 rows, fp32 scales)."""
    rows = np.asarray(rows, np.float32)
    s = (np.abs(rows).max(axis=1) / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = (rows / s[:, None]).astype(np.float32).astype(np.float64)
    q = np.nan_to_num(np.sign(v) * np.floor(np.abs(v) + 0.5))  # an all-zero row: s = 0, q = 0
    return np.clip(q, -128, 127).astype(np.int8), s


def rel_err(got, want) -> float:
    """max |got - want| / max |want|: the figure every check of the demo prints and compares with its tolerance."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return float("inf")
    return float(np.max(np.abs(got - want), initial=0.0) / (np.max(np.abs(want), initial=0.0) + 1e-30))


# tolerances of the checks: fp32 chains differ from the dense layer only by summation order (fp32 rounding, ~1e-7
# relative per term); the int8 path is compared with a dense layer that quantises identically, so the same bound
# holds there (the int8 x int8 GEMM is exact in fp64)
TOL = 1e-4


def vllm_ascend_chain(am, x, expert_idx, weights, experts, expert_num, row_idx_type=0):
    """The layer as vLLM-Ascend's all-gather dispatcher runs it: npu_moe_init_routing_v2 (our moe_init_routing_v3,
    same signature) with per-expert counts, the experts on their contiguous segments, npu_moe_token_unpermute with
    the expanded row index as the sorted indices. ``row_idx_type=1`` (the gather form) is the wrong index for
    unpermute: the test uses it as a chain that must fail its check."""
    T, K = expert_idx.shape
    ex, row_idx, counts, _ = am.moe_init_routing_v3(
        x, expert_idx, active_num=T * K, expert_num=expert_num, expert_tokens_num_type=1, expert_tokens_num_flag=True,
        active_expert_range=[0, expert_num], quant_mode=-1, row_idx_type=row_idx_type)
    h = experts(ex, np.cumsum(counts))
    return am.moe_token_unpermute(h, row_idx, probs=weights)


def quantize_weights(w):
    """Per-output-channel symmetric int8 weights [E, in, out] -> (int8 weights, fp32 scales [E, out])."""
    s = (np.abs(w).max(axis=1) / np.float32(127)).astype(np.float32)
    return np.rint(w / s[:, None, :]).astype(np.int8), s


def w8a8_ffn(q, s, w1q, w1s, w2):
    """One w8a8 expert: int8 rows x int8 weights (exact: the products are integers, summed in fp64), dequantised by
    the per-token scales s and the per-channel weight scales, SiLU, then the fp32 down projection."""
    acc = q.astype(np.float64) @ w1q.astype(np.float64)
    h = (acc * s.astype(np.float64)[:, None] * w1s.astype(np.float64)[None, :]).astype(np.float32)
    return ((h / (np.float32(1) + np.exp(-h))) @ w2).astype(np.float32)


def w8a8_chain(am, x, expert_idx, weights, w1q, w1s, w2):
    """vLLM-Ascend's w8a8 dispatch: npu_moe_init_routing_quant (our moe_init_routing_quant_v2) quantises the gathered
    rows dynamically per token, the experts consume int8 and dequantise with the per-token scales."""
    T, K = expert_idx.shape
    E = w1q.shape[0]
    q, row_idx, counts, _, scale = am.moe_init_routing_quant_v2(
        x, expert_idx, active_num=T * K, expert_num=E, expert_tokens_num_mode=2, quant_mode=1)
    h = np.empty((q.shape[0], w2.shape[2]), np.float32)
    start = 0
    for e, end in enumerate(np.cumsum(counts)):
        if end > start:
            h[start:end] = w8a8_ffn(q[start:end], scale[start:end], w1q[e], w1s[e], w2[e])
        start = int(end)
    return am.moe_token_unpermute(h, row_idx, probs=weights), q, scale


def dense_w8a8(x, expert_idx, weights, w1q, w1s, w2):
    """The w8a8 layer token by token: each token quantised once (its K copies are identical rows)."""
    out = np.zeros((x.shape[0], w2.shape[2]), np.float32)
    q, s = _quantize_rows_away(x)
    for t in range(x.shape[0]):
        for j in range(expert_idx.shape[1]):
            e = expert_idx[t, j]
            out[t] += weights[t, j] * w8a8_ffn(q[t:t + 1], s[t:t + 1], w1q[e], w1s[e], w2[e])[0]
    return out, q, s


def dense_softmax_top_k(logits, k):
    """Qwen3/Mixtral routing densely in fp64: softmax over the experts, the k largest (lower index on ties)."""
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    idx = np.argsort(-p, axis=1, kind="stable")[:, :k]
    return p, idx


def _all_to_all(am, x, expert_idx, weights, w1, w2, ffn, ranks, timings, repeat, report_fn, dense_fn):
    """Expert parallelism with the tokens split over `ranks` source ranks and the experts over as many
    destination ranks; the exchange is simulated by slicing and concatenating."""
    T, K = expert_idx.shape
    E = w1.shape[0]
    local_e = E // ranks
    src_tokens = np.array_split(np.arange(T), ranks)
    sent = []  # per source rank: permuted rows (int8), scales, sorted_indices, rows per (dest rank, local expert)
    for s, toks in enumerate(src_tokens):
        pt, sorted_idx, _ = am.moe_token_permute_with_ep(x[toks], expert_idx[toks])
        q, sc = _quantize_rows(pt)
        counts = np.bincount(expert_idx[toks].ravel(), minlength=E).reshape(ranks, local_e)
        sent.append((q, sc, sorted_idx, counts))
    received = [None] * ranks
    for d in range(ranks):  # destination rank d gets, from every source, the rows of its experts
        chunks, scales, counts = [], [], []
        for q, sc, _, cnt in sent:
            lo = int(cnt[:d].sum())
            hi = lo + int(cnt[d].sum())
            chunks.append(q[lo:hi])
            scales.append(sc[lo:hi])
            counts.append(cnt[d])
        tokens_d, scales_d, counts_d = np.concatenate(chunks), np.concatenate(scales), np.stack(counts)
        timed = timings if d == 0 else []
        rt, rs, gather_idx, expert_tokens = _timed(timed, "moe_re_routing (1 rank, int8)", lambda: am.moe_re_routing(
            tokens_d, counts_d.astype(np.int32), per_token_scales=scales_d), repeat)
        ends = np.cumsum(expert_tokens)
        h = np.empty((rt.shape[0], x.shape[1]), np.float32)
        start = 0
        for e in range(local_e):  # the experts of rank d work on their contiguous segments
            if ends[e] > start:
                seg = rt[start:ends[e]].astype(np.float32) * rs[start:ends[e], None]
                h[start:ends[e]] = ffn(seg, w1[d * local_e + e], w2[d * local_e + e])
            start = int(ends[e])
        back = np.empty_like(h)
        back[gather_idx] = h  # undo re_routing: rows return to source-rank order
        received[d] = (back, counts_d.sum(axis=1))
    outs = []
    for s, toks in enumerate(src_tokens):  # each source rank collects its rows back and combines them
        rows = np.concatenate([received[d][0][int(received[d][1][:s].sum()):int(received[d][1][:s + 1].sum())]
                               for d in range(ranks)])
        outs.append(am.moe_token_unpermute_with_ep(rows, sent[s][2], probs=weights[toks]))
    got = np.concatenate(outs)
    # the dense layer sees the same int8-rounded tokens the experts saw
    xq = np.empty_like(x)
    for toks in src_tokens:
        q, sc = _quantize_rows(x[toks])
        xq[toks] = q.astype(np.float32) * sc[:, None]
    return report_fn(f"EP x{ranks} all-to-all: permute .. int8 .. re_routing .. unpermute", got, dense_fn(xq))


QWEN3_E, QWEN3_K = 128, 8


def _qwen3_chain(am, rng, x, w1, w2, ffn, timings, repeat, report) -> bool:
    """Qwen3-MoE routing (128 experts, top-8, softmax, norm_topk_prob): npu_moe_gating_top_k_softmax, renormalised
    by the caller as vLLM-Ascend does, then the same init_routing_v3 .. token_unpermute chain."""
    H = x.shape[1]
    logits = x @ (rng.standard_normal((H, QWEN3_E)) / np.sqrt(H)).astype(np.float32)
    y, ids, _ = _timed(timings, "moe_gating_top_k_softmax", lambda: am.moe_gating_top_k_softmax(
        logits, k=QWEN3_K), repeat)
    p, _ = dense_softmax_top_k(logits, QWEN3_K)
    picked = np.take_along_axis(p, ids.astype(np.int64), axis=1)
    others = p.copy()
    np.put_along_axis(others, ids.astype(np.int64), -1.0, axis=1)
    # the chosen experts are a top-k of the dense softmax (up to fp32 rounding of near-ties) and y their scores
    is_top = bool(np.all(picked.min(axis=1) >= others.max(axis=1) - 1e-6))
    good = report("qwen3 router: gating_top_k_softmax vs dense softmax top-8", y, picked.astype(np.float32), tol=1e-5)
    if not is_top:
        print("check        qwen3 router: a chosen expert is not in the dense top-8                     MISMATCH")
    weights = (y / y.sum(axis=1, keepdims=True)).astype(np.float32)

    def experts(rows, ends):
        out = np.empty_like(rows)
        start = 0
        for e in range(QWEN3_E):
            end = int(ends[e])
            if end > start:
                out[start:end] = ffn(rows[start:end], w1[e], w2[e])
            start = end
        return out

    got = vllm_ascend_chain(am, x, ids, weights, experts, QWEN3_E)
    return good & is_top & report("qwen3: gating_top_k_softmax .. init_routing_v3 .. unpermute", got,
                                  _dense(x, ids, weights, w1, w2, ffn))


def _w8a8_chain(am, x, expert_idx, weights, w1, w2, timings, repeat, report) -> bool:
    w1q, w1s = quantize_weights(w1)
    T, K = expert_idx.shape
    _timed(timings, "moe_init_routing_quant_v2 (dynamic)", lambda: am.moe_init_routing_quant_v2(
        x, expert_idx, active_num=T * K, expert_num=w1.shape[0], expert_tokens_num_mode=2, quant_mode=1), repeat)
    got, q, scale = w8a8_chain(am, x, expert_idx, weights, w1q, w1s, w2)
    want, qd, sd = dense_w8a8(x, expert_idx, weights, w1q, w1s, w2)
    # the dispatched int8 rows are the dense quantisation of their tokens (row j holds token order[j] // K)
    order = np.argsort(expert_idx.ravel(), kind="stable")
    tok = order // expert_idx.shape[1]
    steps = int(np.abs(q.astype(np.int16) - qd[tok].astype(np.int16)).max(initial=0))
    good = report("w8a8: per-token scales vs dense quantisation", scale, sd[tok], tol=1e-6)
    print(f"check        {'w8a8: int8 rows vs dense quantisation':<64} max diff {steps} step(s)       "
          f"{'ok' if steps == 0 else 'MISMATCH'}")
    return good & (steps == 0) & report("w8a8: init_routing_quant_v2 .. w8a8 experts .. token_unpermute",
                                        got, want)


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

    dense = _dense(x, expert_idx, weights, w1, w2, ffn)

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

    def report(name, got, want=None, tol=TOL):
        nonlocal ok
        want = dense if want is None else want
        err = rel_err(got, want)
        good = err < tol
        ok &= good
        print(f"check        {name:<64} max rel err {err:.2e} (tol {tol:.0e})  {'ok' if good else 'MISMATCH'}")
        return good

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

    # the layer as vLLM-Ascend runs it: DeepSeek-V3 routing, then Qwen3/Mixtral routing (softmax top-k)
    _timed(timings, "moe_init_routing_v3", lambda: am.moe_init_routing_v3(
        x, expert_idx, active_num=T * K, expert_num=E, expert_tokens_num_type=1, expert_tokens_num_flag=True,
        active_expert_range=[0, E]), repeat)
    out4 = vllm_ascend_chain(am, x, expert_idx, weights, experts, E)
    report("vllm-ascend: gating_top_k .. init_routing_v3 .. token_unpermute", out4)
    ok &= _qwen3_chain(am, rng, x, w1, w2, ffn, timings, repeat, report)
    ok &= _w8a8_chain(am, x, expert_idx, weights, w1, w2, timings, repeat, report)

    # expert parallelism: 4 ranks of 64 experts; each rank permutes only its slice of the sorted rows
    ranks = 4
    local_e = E // ranks
    bounds = np.concatenate([[0], np.cumsum(np.bincount(expert_idx.ravel() // local_e, minlength=ranks))])
    parts = []
    for r in range(ranks):
        rng_r = [int(bounds[r]), int(bounds[r + 1])]
        pt, sorted_idx, pp = _timed(timings if r == 0 else [], "moe_token_permute_with_ep (1 rank)",
                                    lambda: am.moe_token_permute_with_ep(x, expert_idx, probs=weights, range=rng_r),
                                    repeat)
        ends_r = np.cumsum(np.bincount(np.sort(expert_idx.ravel())[rng_r[0]:rng_r[1]], minlength=E))
        parts.append(am.moe_token_unpermute_with_ep(experts(pt, ends_r), sorted_idx, probs=weights, range=rng_r))
    report(f"EP x{ranks} slices: permute_with_ep .. unpermute_with_ep", np.sum(parts, axis=0))

    ok &= _all_to_all(am, x, expert_idx, weights, w1, w2, ffn, ranks, timings, repeat, report_fn=report,
                      dense_fn=lambda xq: _dense(xq, expert_idx, weights, w1, w2, ffn))

    print("timings      median wall time per call, staging included (host arrays are copied to device memory)")
    for name, us in timings:
        print(f"  {name:<36} {us:>10.1f} us")
    print("demo " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


# ------------------------------------------------------------------------------- --ep N: real processes (torch)
def _ep_problem(tokens, hidden, ffn_hidden, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((tokens, hidden), dtype=np.float32)
    w_gate = (rng.standard_normal((hidden, E)) / np.sqrt(hidden)).astype(np.float32)
    bias = (rng.standard_normal(E) * 0.1).astype(np.float32)
    w1 = (rng.standard_normal((E, hidden, ffn_hidden)) / np.sqrt(hidden)).astype(np.float32)
    w2 = (rng.standard_normal((E, ffn_hidden, hidden)) / np.sqrt(ffn_hidden)).astype(np.float32)
    return x, x @ w_gate, bias, w1, w2


def _gate(am, logits, bias):
    return am.moe_gating_top_k(logits, K, bias=bias, k_group=TOPK_GROUPS, group_count=GROUPS, group_select_mode=1,
                               norm_type=1, routed_scaling_factor=SCALING)


def _ep_rank(rank, world, tokens, hidden, ffn_hidden, seed, repeat):
    """One rank of ``demo --ep``: DeepSeek-V3 gating on its tokens, then the layer through both dispatchers."""
    import torch

    import aclnn_moe as am
    from .distributed import AllGatherDispatcher, AllToAllDispatcher
    from .distributed._checks import make_experts

    x, logits, bias, w1, w2 = _ep_problem(tokens, hidden, ffn_hidden, seed)
    rows = np.array_split(np.arange(tokens), world)[rank]
    L = E // world
    experts = make_experts(torch.from_numpy(w1[rank * L:(rank + 1) * L]), torch.from_numpy(w2[rank * L:(rank + 1) * L]))
    xt = torch.from_numpy(x[rows])
    out, timings = {}, {}
    for name, cls in (("all-to-all", AllToAllDispatcher), ("all-gather", AllGatherDispatcher)):
        t = timings[name] = {}
        layer = cls(E, timings=t)
        for _ in range(max(repeat, 1)):
            t0 = time.perf_counter()
            weights, ids, _ = _gate(am, logits[rows], bias)
            t["routing"] = t.get("routing", 0.0) + time.perf_counter() - t0
            y = layer(xt, torch.from_numpy(ids), torch.from_numpy(weights), experts)
        for k in t:
            t[k] /= max(repeat, 1)
        out[name] = y.numpy()
    return {"rows": rows, "out": out, "timings": timings}


def main_ep(ep: int, tokens: int = 512, repeat: int = 3, hidden: int = 256, ffn_hidden: int = 128, seed: int = 0,
            timeout: float = 120.0) -> int:
    """``aclnn-moe demo --ep N``: N local ranks (gloo on 127.0.0.1), each checked against the dense layer."""
    import sys

    try:
        import torch

        from .distributed import RankError, spawn, threads_per_rank
        from .distributed._checks import dense
    except ImportError as e:
        print(f"demo --ep needs torch: {e}", file=sys.stderr)
        return 2
    if ep < 1 or E % ep:
        print(f"demo --ep: N must divide the {E} experts (1, 2, 4, 8, ...), got {ep}", file=sys.stderr)
        return 2
    if tokens < ep:
        print(f"demo --ep: --tokens must be at least N = {ep}, got {tokens}", file=sys.stderr)
        return 2
    import aclnn_moe as am

    print(f"aclnn-moe demo --ep {ep}: {ep} ranks (gloo, 127.0.0.1), {threads_per_rank(ep)} kernel thread(s) each; "
          f"{tokens} tokens, hidden {hidden}, {E} experts ({E // ep} per rank), DeepSeek-V3 routing, top-{K}")
    t0 = time.perf_counter()
    try:
        per_rank = spawn(_ep_rank, ep, (tokens, hidden, ffn_hidden, seed, repeat), timeout=timeout)
    except RankError as e:
        print(f"demo --ep FAILED: {e}", file=sys.stderr)
        return 1
    wall = time.perf_counter() - t0
    x, logits, bias, w1, w2 = _ep_problem(tokens, hidden, ffn_hidden, seed)
    weights, ids, _ = _gate(am, logits, bias)  # the single-process layer
    want = dense(torch.from_numpy(x), torch.from_numpy(ids), torch.from_numpy(weights), torch.from_numpy(w1),
                 torch.from_numpy(w2)).numpy()
    scale = float(np.abs(want).max()) + 1e-30
    ok = True
    for name in ("all-to-all", "all-gather"):
        errs = [float(np.abs(r["out"][name] - want[r["rows"]]).max()) / scale for r in per_rank]
        good = max(errs) < 1e-4
        ok &= good
        print(f"check        EP x{ep} {name:<10} every rank vs the dense layer: max rel err {max(errs):.2e} "
              f"(per rank {', '.join(f'{e:.1e}' for e in errs)})  {'ok' if good else 'MISMATCH'}")
    print(f"timings      per layer call, slowest rank, ms (spawn + start-up {wall:.1f} s)")
    for name in ("all-to-all", "all-gather"):
        phases = ("routing", "exchange", "experts", "combine")
        worst = {p: max(r["timings"][name].get(p, 0.0) for r in per_rank) * 1e3 for p in phases}
        print(f"  {name:<10} " + "  ".join(f"{p} {worst[p]:8.2f}" for p in phases))
    print("demo --ep " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1
