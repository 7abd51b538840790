"""``aclnn-moe demo``: one MoE layer on a DeepSeek-V3-shaped batch, every routing step through the aclnn ABI.

Routing is DeepSeek-V3's (256 experts in 8 groups, top-4 groups, top-8 experts, sigmoid scores with a
correction bias, routed scaling 2.5); the experts are small two-layer FFNs computed with numpy (torch when it
is installed) so the layer fits any machine. Two chains are run and each is checked against a dense per-token
computation of the same layer:

  k-major:   gating_top_k -> init_routing -> compute_expert_tokens -> experts -> finalize_routing (mode 0)
  row-major: gating_top_k -> init_routing_v2 -> experts -> finalize_routing (mode 2)
                                                       \\-> token_unpermute_with_ep
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

    def report(name, got, want=None):
        nonlocal ok
        want = dense if want is None else want
        err = float(np.max(np.abs(got - want)) / (np.max(np.abs(want)) + 1e-30))
        good = err < 1e-4
        ok &= good
        print(f"check        {name:<64} max rel err {err:.2e}  {'ok' if good else 'MISMATCH'}")
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
