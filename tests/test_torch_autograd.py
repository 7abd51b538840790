"""Autograd of the differentiable torch.ops.aclnn_moe operators: every gradient matches the one plain torch
autograd computes through a plain-torch implementation of the same forward (float32; random routing with empty
experts, EP windows at the edges, drop/pad -1 rows), under torch.compile too, and opcheck's autograd tests pass."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="torch is optional (the `torch` extra); these tests need it")

import aclnn_moe.torch  # noqa: E402,F401
from aclnn_moe.torch._autograd import REGISTERED  # noqa: E402

OPS = torch.ops.aclnn_moe
TOL = dict(rtol=1e-5, atol=1e-5)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _ids(g, t, k, e, used=None):
    """[t, k] int32 expert ids, distinct per row, drawn from `used` experts only (the others stay empty)."""
    pool = torch.tensor(used if used is not None else list(range(e)))
    rows = [pool[torch.randperm(len(pool), generator=g)[:k]] for _ in range(t)]
    return torch.stack(rows).to(torch.int32) if t else torch.zeros((0, k), dtype=torch.int32)


def _leaf(*shape, g):
    return torch.randn(*shape, generator=g).requires_grad_(True)


def _check(got, ref, inputs, g):
    """Forward values equal, then gradients of a random linear loss over the float outputs equal."""
    got = got if isinstance(got, (tuple, list)) else (got,)
    ref = ref if isinstance(ref, (tuple, list)) else (ref,)
    loss_g, loss_r = 0, 0
    for a, b in zip(got, ref):
        if b is None:
            continue
        torch.testing.assert_close(a, b, **TOL)
        if a.is_floating_point() and a.numel():
            w = torch.randn(a.shape, generator=g)
            loss_g = loss_g + (a * w).sum()
            loss_r = loss_r + (b * w).sum()
    gg = torch.autograd.grad(loss_g, inputs, allow_unused=True)
    gr = torch.autograd.grad(loss_r, inputs, allow_unused=True)
    for i, (a, b) in enumerate(zip(gg, gr)):
        a = torch.zeros_like(inputs[i]) if a is None else a
        b = torch.zeros_like(inputs[i]) if b is None else b
        torch.testing.assert_close(a, b, **TOL, msg=lambda m: f"gradient of input {i}: {m}")


# ------------------------------------------------------------------------------------ plain-torch forwards
def ref_permute(tokens, indices, probs, start, rows):
    k = indices.shape[1] if indices.dim() == 2 else 1
    order = torch.argsort(indices.reshape(-1).long(), stable=True)
    win = order[start:start + rows]
    out = tokens[win // k]
    pp = probs.reshape(-1)[win] if probs is not None else None
    sorted_indices = torch.argsort(order).to(torch.int32)
    return out, sorted_indices, pp


def ref_unpermute(pt, si, probs, k, start, end):
    t = si.shape[0] // k
    d = si.view(t, k).long()
    use = (d >= start) & (d < end) & (d - start < pt.shape[0])
    if pt.shape[0] == 0:
        return torch.zeros(t, pt.shape[1]) + pt.sum()
    rows = pt[(d - start).clamp(0, pt.shape[0] - 1)] * use.unsqueeze(-1)
    w = probs if probs is not None else torch.ones(t, k)
    return (rows * w.unsqueeze(-1)).sum(1)


@pytest.mark.parametrize("window", [None, (0, 24), (0, 5), (7, 24), (24, 24), (3, 3), (10, 17)])
@pytest.mark.parametrize("with_probs", [True, False])
def test_permute_with_ep(window, with_probs):
    g = _gen(1)
    t, k, h, e = 8, 3, 5, 10
    idx = _ids(g, t, k, e, used=[0, 2, 3, 7, 9])  # experts 1, 4, 5, 6, 8 empty
    x = _leaf(t, h, g=g)
    p = _leaf(t, k, g=g) if with_probs else None
    total = t * k
    from aclnn_moe.reference.token_permute_with_ep import resolve_window

    start, rows = resolve_window(total, list(window) if window else None, 0)
    got = OPS.moe_token_permute_with_ep(x, idx, probs=p, range=list(window) if window else None)
    ref = ref_permute(x, idx, p, start, rows)
    if start + rows > total:  # the wrapped window: rows past the permutation are zero
        pad = start + rows - total
        ref = (torch.cat([ref[0], torch.zeros(pad, h)]), ref[1],
               torch.cat([ref[2], torch.zeros(pad)]) if p is not None else None)
    if p is None:
        got = got[:2]
        ref = ref[:2]
    _check(got, ref, [x] + ([p] if p is not None else []), g)


@pytest.mark.parametrize("window", [None, (0, 24), (0, 6), (6, 24), (9, 15), (24, 24)])
@pytest.mark.parametrize("with_probs", [True, False])
def test_unpermute_with_ep(window, with_probs):
    g = _gen(2)
    t, k, h, e = 8, 3, 5, 6
    k_ = k if with_probs else 1
    idx = _ids(g, t, k_, e, used=[1, 2, 4])
    _, si, _ = ref_permute(torch.zeros(t, 1), idx, None, 0, t * k_)
    start, end = window if window else (0, t * k_)
    start, end = min(start, t * k_), min(end, t * k_)
    pt = _leaf(max(end - start, 0), h, g=g)
    p = _leaf(t, k_, g=g) if with_probs else None
    got = OPS.moe_token_unpermute_with_ep(pt, si, probs=p, num_topk=k_, range=[start, end] if window else None)
    ref = ref_unpermute(pt, si, p, k_, start, end)
    _check(got, ref, [pt] + ([p] if p is not None else []), g)


@pytest.mark.parametrize("num_out", [None, 0, 10, -7, 100])
def test_token_permute(num_out):
    g = _gen(3)
    t, k, h, e = 9, 2, 4, 12
    idx = _ids(g, t, k, e, used=[3, 5, 11])
    x = _leaf(t, h, g=g)
    from aclnn_moe.ops.token_permute import permute_rows

    rows = permute_rows(t * k, num_out)
    got = OPS.moe_token_permute(x, idx, num_out)
    ref = ref_permute(x, idx, None, 0, rows)[:2]
    _check(got, ref, [x], g)


@pytest.mark.parametrize("rows_kept", [18, 11, 0])
@pytest.mark.parametrize("with_probs", [True, False])
def test_token_unpermute(rows_kept, with_probs):
    g = _gen(4)
    t, k, h, e = 9, 2, 4, 5
    k_ = k if with_probs else 1
    idx = _ids(g, t, k_, e, used=[0, 4])
    _, si, _ = ref_permute(torch.zeros(t, 1), idx, None, 0, t * k_)
    rows = min(rows_kept, t * k_)
    pt = _leaf(rows, h, g=g)
    p = _leaf(t, k_, g=g) if with_probs else None
    got = OPS.moe_token_unpermute(pt, si, p)
    ref = ref_unpermute(pt, si, p, k_, 0, rows)
    _check(got, ref, [pt] + ([p] if p is not None else []), g)


# ------------------------------------------------------------------------------------------ init routing
def ref_init(x, idx, e, rng=None, active=0, capacity=0, drop_pad=False):
    """expanded_x of V2 / V3 (row_idx_type 0) in plain torch, and the expected expanded_row_idx."""
    n, k = idx.shape
    flat = idx.reshape(-1).long()
    r0, r1 = rng if rng else (0, e)
    inr = (flat >= r0) & (flat < r1)
    key = torch.where(inr, flat, r1 + 1)
    order = torch.argsort(key, stable=True)
    count = int(inr.sum())
    h = x.shape[1]
    if drop_pad:
        ex = torch.zeros(e * capacity, h)
        row_idx = torch.full((n * k,), -1, dtype=torch.int32)
        pos_in = {}
        dest, src = [], []
        for j in range(count):
            p = int(order[j])
            ee = int(flat[p])
            q = pos_in.get(ee, 0)
            pos_in[ee] = q + 1
            if q < capacity:
                dest.append(ee * capacity + q)
                src.append(p)
                row_idx[p] = ee * capacity + q
        if dest:
            ex = ex.index_put((torch.tensor(dest),), x[torch.tensor(src) // k])
        return ex.view(e, capacity, h), row_idx
    rows = n * k if active <= 0 else min(active, n * k)
    ex = x[order[:count] // k]
    ex = torch.cat([ex, torch.zeros(max(rows - count, 0), h)])[:rows]
    row_idx = torch.full((n * k,), -1, dtype=torch.int32)
    row_idx[order[:count]] = torch.arange(count, dtype=torch.int32)
    return ex, row_idx


@pytest.mark.parametrize("case", [dict(), dict(active_num=7), dict(drop_pad_mode=1, expert_capacity=3)])
def test_init_routing_v2(case):
    g = _gen(5)
    n, k, h, e = 8, 2, 4, 6
    idx = _ids(g, n, k, e, used=[0, 1, 5])
    x = _leaf(n, h, g=g)
    got = OPS.moe_init_routing_v2(x, idx, expert_num=e, **case)
    ex, ri = ref_init(x, idx, e, active=case.get("active_num", 0), capacity=case.get("expert_capacity", 0),
                      drop_pad=case.get("drop_pad_mode") == 1)
    _check(got[:2], (ex, ri), [x], g)


@pytest.mark.parametrize("case", [dict(), dict(active_num=5), dict(active_expert_range=[2, 5]),
                                  dict(active_expert_range=[0, 1]), dict(active_expert_range=[5, 6], active_num=3),
                                  dict(row_idx_type=1, active_expert_range=[1, 4]),
                                  dict(drop_pad_mode=1, expert_capacity=2)])
def test_init_routing_v3(case):
    g = _gen(6)
    n, k, h, e = 8, 2, 4, 6
    idx = _ids(g, n, k, e, used=[0, 1, 3, 5])
    x = _leaf(n, h, g=g)
    got = OPS.moe_init_routing_v3(x, idx, expert_num=e, **case)
    rtype = case.get("row_idx_type", 0)
    ex, ri = ref_init(x, idx, e, rng=case.get("active_expert_range"), active=case.get("active_num", -1),
                      capacity=case.get("expert_capacity", 0), drop_pad=case.get("drop_pad_mode") == 1)
    if rtype == 1:
        _check(got[:1], (ex,), [x], g)
    else:
        _check(got[:2], (ex, ri), [x], g)


# --------------------------------------------------------------------------------------------- finalize
def ref_finalize(x, skip1, skip2, bias, scales, r, eidx, mode):
    n = scales.shape[0] if scales is not None else r.shape[0]
    k = scales.shape[1] if scales is not None else 1
    h = x.shape[-1]
    xf = x.reshape(-1, h)
    out = torch.zeros(n, h)
    if skip1 is not None:
        out = out + skip1
    if skip2 is not None:
        out = out + skip2
    for kk in range(k):
        pos = torch.arange(n) * k + kk if mode in (2, 3) else kk * n + torch.arange(n)
        rr = r[pos].long()
        valid = (rr >= 0).unsqueeze(1)
        term = xf[rr.clamp(min=0)]
        if bias is not None:
            term = term + bias[eidx[:, kk].long()]
        if scales is not None:
            term = term * scales[:, kk:kk + 1]
        out = out + term * valid
    return out


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
@pytest.mark.parametrize("full", [True, False])
def test_finalize_routing(mode, full):
    g = _gen(7 + mode)
    n, k, h, e, c = 6, 3, 4, 5, 3
    if mode in (1, 3):
        x = _leaf(e, c, h, g=g)
        r = torch.full((n * k,), -1, dtype=torch.int32)
        kept = torch.randperm(n * k, generator=g)[:e * c - 4]
        r[kept] = torch.randperm(e * c, generator=g)[:kept.numel()].to(torch.int32)
    else:
        x = _leaf(n * k, h, g=g)
        r = torch.randperm(n * k, generator=g).to(torch.int32)
    scales = _leaf(n, k, g=g) if full or mode == 2 else None
    if scales is None:  # K = 1
        k = 1
        r = r[:n]
        if mode in (0, 2):
            x = _leaf(n, h, g=g)
            r = torch.randperm(n, generator=g).to(torch.int32)
    skip1 = _leaf(n, h, g=g) if full else None
    skip2 = _leaf(n, h, g=g) if full else None
    bias = _leaf(e, h, g=g) if full else None
    eidx = _ids(g, n, k, e) if full else None
    got = OPS.moe_finalize_routing(x, skip1, skip2, bias, scales, r, eidx, mode)
    ref = ref_finalize(x, skip1, skip2, bias, scales, r, eidx, mode)
    inputs = [t for t in (x, skip1, skip2, bias, scales) if t is not None]
    _check(got, ref, inputs, g)


# ------------------------------------------------------------------------------------------------ gating
@pytest.mark.parametrize("case", [dict(norm_type=0), dict(norm_type=1, routed_scaling_factor=2.5),
                                  dict(norm_type=1, out_flag=True, k_group=2, group_count=4, group_select_mode=1),
                                  dict(norm_type=0, out_flag=True)])
def test_gating_top_k(case):
    g = _gen(11)
    rows, e, k = 6, 16, 4
    x = (torch.randperm(rows * e, generator=g).float().view(rows, e) / (rows * e) * 6 - 3).requires_grad_(True)
    bias = torch.rand(e, generator=g) * 0.1 if case.get("k_group") else None
    y, idx, norm = OPS.moe_gating_top_k(x, k, bias=bias, **case)
    sc = torch.softmax(x, -1) if case["norm_type"] == 0 else torch.sigmoid(x)
    sel = sc.gather(1, idx.long())
    if case["norm_type"] == 1:
        sel = sel / (sel.sum(1, keepdim=True) + 1e-20)
    ref_y = sel * case.get("routed_scaling_factor", 1.0)
    got = (y, norm) if case.get("out_flag") else (y,)
    ref = (ref_y, sc) if case.get("out_flag") else (ref_y,)
    _check(got, ref, [x], g)


@pytest.mark.parametrize("case", [dict(v=1), dict(v=1, finished=True, shape=(2, 3, 10)), dict(v=2, renorm=0),
                                  dict(v=2, renorm=0, output_softmax=True, finished=True), dict(v=2, renorm=1)])
def test_gating_top_k_softmax(case):
    name = "moe_gating_top_k_softmax" + ("_v2" if case["v"] == 2 else "")
    if not hasattr(OPS, name):
        pytest.skip(f"{name} is not in this build")
    g = _gen(16)
    shape, k = case.get("shape", (6, 10)), 3
    e = shape[-1]
    rows = shape[0] * (shape[1] if len(shape) == 3 else 1)
    x = (torch.randperm(rows * e, generator=g).float().view(shape) / (rows * e) * 6 - 3).requires_grad_(True)
    fin = (torch.arange(rows) % 3 == 1).view(shape[:-1]) if case.get("finished") else None
    if case["v"] == 1:
        y, idx, _ = OPS.moe_gating_top_k_softmax(x, fin, k)
        third = None
    else:
        y, idx, third = OPS.moe_gating_top_k_softmax_v2(x, k=k, finished=fin, renorm=case["renorm"],
                                                        output_softmax=case.get("output_softmax", False))
    renorm = case.get("renorm", 0)
    base = x if renorm == 1 else torch.softmax(x, -1)
    ref_idx = torch.topk(base.detach(), k, -1).indices  # distinct values: no ties
    if fin is not None:
        assert bool((idx[fin] == e).all())
    torch.testing.assert_close(torch.where(idx == e, ref_idx.to(idx.dtype), idx), ref_idx.to(idx.dtype))
    ref_y = torch.softmax(x.gather(-1, ref_idx), -1) if renorm == 1 else base.gather(-1, ref_idx)
    got, ref = (y,), (ref_y,)
    if case.get("output_softmax"):
        got, ref = (y, third), (ref_y, base)
    _check(got, ref, [x], g)


# ----------------------------------------------------------------------------------------- routing-map pair
def _routing_map(g, t, e, k, empty=()):
    m = torch.zeros(t, e, dtype=torch.bool)
    allowed = [i for i in range(e) if i not in empty]
    for i in range(t):
        pick = torch.tensor(allowed)[torch.randperm(len(allowed), generator=g)[:k]]
        m[i, pick] = True
    return m


@pytest.mark.parametrize("drop", [False, True])
@pytest.mark.parametrize("with_probs", [True, False])
def test_permute_with_routing_map(drop, with_probs):
    g = _gen(12)
    t, e, k, h = 7, 6, 2, 4
    m = _routing_map(g, t, e, k, empty=(1, 4))
    x = _leaf(t, h, g=g)
    p = _leaf(t, e, g=g) if with_probs else None
    got = OPS.moe_token_permute_with_routing_map(x, m, probs=p, num_out_tokens=t * k, drop_and_pad=drop)
    if drop:
        c = t * k // e
        src = got[2].long()
        ref_t = x[src]
        ref_p = p[src, torch.arange(c * e) // c] if p is not None else None
    else:
        gather = torch.nonzero(m.t())[:, 1]
        ref_t = x[gather]
        ref_p = p.t()[m.t()] if p is not None else None
    got = (got[0], got[1]) if p is not None else (got[0],)
    ref = (ref_t, ref_p) if p is not None else (ref_t,)
    _check(got, ref, [x] + ([p] if p is not None else []), g)


@pytest.mark.parametrize("drop", [False, True])
@pytest.mark.parametrize("with_probs", [True, False])
def test_unpermute_with_routing_map(drop, with_probs):
    g = _gen(13)
    t, e, k, h = 7, 6, 2, 4
    m = _routing_map(g, t, e, k, empty=(0, 3))
    with torch.no_grad():
        _, _, si = OPS.moe_token_permute_with_routing_map(torch.zeros(t, h), m, num_out_tokens=t * k,
                                                           drop_and_pad=drop)
    n = si.shape[0]
    pt = _leaf(n, h, g=g)
    p = _leaf(t, e, g=g) if with_probs else None
    got = OPS.moe_token_unpermute_with_routing_map(pt, si, [t, h], probs=p,
                                                   routing_map=m if with_probs and not drop else None,
                                                   drop_and_pad=drop)
    s = si.long()
    if drop:
        c = n // e
        col = torch.arange(n) // c
        w = p[s, col] if p is not None else torch.ones(n)
        ref = torch.zeros(t, h).index_add(0, s, pt * w.unsqueeze(1))
        ref_pp = w if p is not None else None
    else:
        kk = n // t
        w = torch.cat([p[m], torch.zeros(n - int(m.sum()))]) if p is not None else torch.ones(n)
        d = s.view(t, kk)
        use = d >= 0
        ref = (pt[d.clamp(min=0)] * (w.view(t, kk) * use).unsqueeze(-1)).sum(1)
        ref_pp = w if p is not None else None
    gots = (got[0], got[3]) if p is not None else (got[0],)
    refs = (ref, ref_pp) if p is not None else (ref,)
    _check(gots, refs, [pt] + ([p] if p is not None else []), g)


def _ref_unpermute_map(pt, si, p, m, t, drop):
    """plain torch: MoeTokenUnpermuteWithRoutingMap's forward (unpermuted, permute_probs)"""
    n, h = pt.shape
    s = si.long()
    if drop:
        e = p.shape[1] if p is not None else 1
        col = torch.arange(n) // max(n // e, 1)
        w = p[s, col] if p is not None else torch.ones(n)
        return torch.zeros(t, h).index_add(0, s, pt * w.unsqueeze(1)), (w if p is not None else None)
    kk = n // t
    w = torch.cat([p[m], torch.zeros(n - int(m.sum()))]) if p is not None else torch.ones(n)
    d = s.view(t, kk)
    use = (d >= 0).to(pt.dtype)
    out = (pt[d.clamp(min=0)] * (w.view(t, kk) * use).unsqueeze(-1)).sum(1)
    return out, (w if p is not None else None)


class _Counting:
    """torch.ops.aclnn_moe seen through a counter of the ops the backward calls"""

    def __init__(self, ops):
        self.ops, self.calls = ops, []

    def __getattr__(self, name):
        self.calls.append(name)
        return getattr(self.ops, name)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("drop", [False, True])
@pytest.mark.parametrize("with_probs", [True, False])
@pytest.mark.parametrize("sparse", [False, True])
def test_routing_map_pair_through_the_grad_operators(monkeypatch, seed, drop, with_probs, sparse):
    """permute -> expert weights -> unpermute on random routing (empty experts; with `sparse`, tokens with fewer
    than K experts: the -1 slots), padded and not: gradients of tokens, probs and the weights equal plain torch
    autograd's, and the backward runs the two grad operators."""
    from aclnn_moe.torch import _autograd

    g = _gen(100 + seed)
    t, e, k, h = 5 + 3 * seed, 6, 2 + seed % 2, 3 + seed
    m = _routing_map(g, t, e, k, empty=(seed % e,))
    if sparse:
        m &= torch.rand(t, e, generator=g) < 0.7
    x = _leaf(t, h, g=g)
    p = _leaf(t, e, g=g) if with_probs else None
    n_out = t * k
    pm, pp, si = OPS.moe_token_permute_with_routing_map(x, m, probs=p, num_out_tokens=n_out, drop_and_pad=drop)
    wexp = _leaf(pm.shape[0], 1, g=g)
    y = OPS.moe_token_unpermute_with_routing_map(pm * wexp, si, [t, h], probs=p,
                                                 routing_map=m if with_probs and not drop else None,
                                                 drop_and_pad=drop)
    out = y[0]
    # plain torch, through the same sorted_indices (data, not differentiated)
    if drop:
        c = n_out // e
        src = si.long()
        ref_pm = x[src]
        ref_pp = p[src, torch.arange(c * e) // c] if p is not None else None
    else:
        gather = torch.nonzero(m.t())[:, 1]
        nnz = gather.numel()
        ref_pm = torch.cat([x[gather], torch.zeros(pm.shape[0] - nnz, h)])
        ref_pp = torch.cat([p.t()[m.t()], torch.zeros(pm.shape[0] - nnz)]) if p is not None else None
    ref_out, ref_upp = _ref_unpermute_map(ref_pm * wexp, si, p, m, t, drop)
    inputs = [x, wexp] + ([p] if p is not None else [])
    got = (out, pm) + ((pp, y[3]) if p is not None else ())
    ref = (ref_out, ref_pm) + ((ref_pp, ref_upp) if p is not None else ())
    counting = _Counting(_autograd._OPS)
    monkeypatch.setattr(_autograd, "_OPS", counting)
    _check(got, ref, inputs, g)
    assert "moe_token_permute_with_routing_map_grad" in counting.calls
    assert "moe_token_unpermute_with_routing_map_grad" in counting.calls


def test_routing_map_pair_is_backed_by_grad_operators():
    assert REGISTERED["moe_token_permute_with_routing_map"] == "grad-op"
    assert REGISTERED["moe_token_unpermute_with_routing_map"] == "grad-op"


def test_unpermute_with_routing_map_composite_cases():
    """calls the grad operator does not express (K > E with probs, fewer permuted rows than slots) fall back to
    the documented composite and still match plain torch"""
    g = _gen(21)
    t, e, h = 4, 2, 3
    m = torch.tensor([[1, 1], [1, 0], [0, 1], [1, 1]], dtype=torch.bool)
    si = torch.tensor([0, 4, -1, 1, -1, 5, 2, 6, -1, -1, 3, 7], dtype=torch.int32)  # K = 3 > E = 2
    pt = _leaf(8, h, g=g)
    p = _leaf(t, e, g=g)
    got = OPS.moe_token_unpermute_with_routing_map(pt, si, [t, h], probs=p, routing_map=m)
    ref = _ref_unpermute_map(torch.cat([pt, torch.zeros(4, h)]), si, p, m, t, False)
    _check((got[0], got[3]), ref, [pt, p], g)


@pytest.mark.parametrize("drop", [False, True])
def test_routing_map_pair_bf16_tokens_fp32_probs(drop):
    """the mixed-precision forward (bf16 tokens, fp32 probs): gradients close to the float32 run's, in the
    inputs' dtypes (the permute's probs gradient takes the composite: the grad op wants one dtype)"""
    g = _gen(31)
    t, e, k, h = 9, 5, 2, 8
    m = _routing_map(g, t, e, k, empty=(2,))
    x32, p32 = torch.randn(t, h, generator=g), torch.rand(t, e, generator=g)
    grads = []
    for dt in (torch.float32, torch.bfloat16):
        x = x32.to(dt).detach().clone().requires_grad_(True)
        p = p32.detach().clone().requires_grad_(True)
        pm, pp, si = OPS.moe_token_permute_with_routing_map(x, m, probs=p, num_out_tokens=t * k, drop_and_pad=drop)
        y = OPS.moe_token_unpermute_with_routing_map(pm, si, [t, h], probs=p, routing_map=None if drop else m,
                                                     drop_and_pad=drop)
        (y[0].float().square().sum() + pp.sum() + y[3].sum()).backward()
        assert x.grad.dtype == dt and p.grad.dtype == torch.float32
        grads.append((x.grad.float(), p.grad))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=3e-2, atol=3e-2)


# ------------------------------------------------------------------------------- compile and opcheck
def _layer(x, w_router, w_exp, probs_scale):
    """gating -> init_routing_v3 -> per-expert scale -> finalize, and permute/unpermute with ep."""
    logits = x @ w_router
    y, ids, _ = OPS.moe_gating_top_k(logits, 2, norm_type=1)
    ex, ri, _, _ = OPS.moe_init_routing_v3(x, ids, expert_num=4)
    out = OPS.moe_finalize_routing(ex * probs_scale, x, None, None, y, ri, None, 2)
    pt, si, pp = OPS.moe_token_permute_with_ep(out, ids, probs=y, range=[0, 12])
    return OPS.moe_token_unpermute_with_ep(pt * w_exp, si, probs=y, range=[0, 12]).sum() + pp.sum()


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_backward_under_torch_compile_fullgraph(backend):
    import torch._dynamo

    torch._dynamo.reset()
    g = _gen(14)
    args = [torch.randn(8, 6, generator=g), torch.randn(6, 4, generator=g), torch.randn(1, 6, generator=g),
            torch.rand(1, generator=g) + 0.5]
    eager_args = [a.clone().requires_grad_(True) for a in args]
    comp_args = [a.clone().requires_grad_(True) for a in args]
    le = _layer(*eager_args)
    ge = torch.autograd.grad(le, eager_args)
    compiled = torch.compile(_layer, fullgraph=True, backend=backend)
    lc = compiled(*comp_args)
    gc = torch.autograd.grad(lc, comp_args)
    torch.testing.assert_close(lc, le, **TOL)
    for a, b in zip(gc, ge):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def _opcheck_cases():
    g = _gen(15)
    t, k, h, e = 6, 2, 4, 5
    idx = _ids(g, t, k, e)
    x = torch.randn(t, h, generator=g)
    p = torch.rand(t, k, generator=g)
    pt, si, _ = OPS.moe_token_permute_with_ep(x, idx)
    m = _routing_map(g, t, e, k)
    pm, _, sim = OPS.moe_token_permute_with_routing_map(x, m, num_out_tokens=t * k)
    ex3 = torch.randn(e, 3, h, generator=g)
    r3 = torch.full((t * k,), -1, dtype=torch.int32)
    r3[:10] = torch.randperm(e * 3, generator=g)[:10].to(torch.int32)
    cases = {
        "moe_token_permute_with_ep": ((x, idx), dict(probs=p, range=[2, 9])),
        "moe_token_unpermute_with_ep": ((pt[3:10], si), dict(probs=p, range=[3, 10])),
        "moe_token_permute": ((x, idx), {}),
        "moe_token_unpermute": ((pt, si, p), {}),
        "moe_init_routing_v2": ((x, idx), dict(expert_num=e, active_num=7)),
        "moe_init_routing_v3": ((x, idx), dict(expert_num=e, active_expert_range=[1, 4])),
        "moe_finalize_routing": ((ex3, x, None, torch.randn(e, h, generator=g), p, r3, idx, 3), {}),
        "moe_gating_top_k": ((torch.randn(t, e, generator=g), 2), dict(norm_type=1, out_flag=True)),
        "moe_token_permute_with_routing_map": ((x, m), dict(probs=torch.rand(t, e, generator=g),
                                                            num_out_tokens=t * k)),
        "moe_token_unpermute_with_routing_map": ((pm, sim, [t, h]), dict(probs=torch.rand(t, e, generator=g),
                                                                        routing_map=m)),
    }
    if hasattr(OPS, "moe_gating_top_k_softmax"):
        cases["moe_gating_top_k_softmax"] = ((torch.randn(t, e, generator=g), None, 2), {})
    if hasattr(OPS, "moe_gating_top_k_softmax_v2"):
        cases["moe_gating_top_k_softmax_v2"] = ((torch.randn(t, e, generator=g),), dict(k=2, output_softmax=True))
    return cases


def test_every_differentiable_op_has_a_backward():
    assert set(_opcheck_cases()) <= set(REGISTERED)


@pytest.mark.parametrize("name", sorted(_opcheck_cases()))
def test_opcheck_autograd_registration(name):
    args, kwargs = _opcheck_cases()[name]

    def req(v):
        return v.clone().requires_grad_(True) if isinstance(v, torch.Tensor) and v.is_floating_point() else v

    args = tuple(req(a) for a in args)
    kwargs = {n: req(v) for n, v in kwargs.items()}
    torch.library.opcheck(getattr(OPS, name), args, kwargs,
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor",
                                      "test_aot_dispatch_dynamic"))
