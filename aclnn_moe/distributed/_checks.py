"""Per-rank checks against a dense single-process layer (used by the tests, the torchrun sample and the demo).

Every rank regenerates the whole problem from a seed (global tokens, routing, expert weights), runs its share
through a dispatcher, and compares its output rows (and, with ``backward``, the gradients of its tokens, routing
weights and local experts) with the dense layer computed over the whole problem in the same process.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._dispatch import AllGatherDispatcher, AllToAllDispatcher


def make_problem(seed, sizes, hidden, ffn, k, num_experts, dtype=torch.float32, skew=None):
    """Global problem: x [N, H], ids [N, K] (K distinct experts per token), weights [N, K], w1 [E, H, F],
    w2 [E, F, H], g [N, H] (the output gradient). ``skew``: the experts tokens may pick (others get nothing)."""
    gen = torch.Generator().manual_seed(seed)
    n = sum(sizes)
    x = torch.randn(n, hidden, generator=gen).to(dtype)
    allowed = torch.arange(num_experts) if skew is None else torch.as_tensor(skew)
    if allowed.numel() < k:
        raise ValueError("skew must allow at least k experts")
    pick = torch.rand(n, allowed.numel(), generator=gen).argsort(dim=1)[:, :k]
    ids = allowed[pick].to(torch.int32)
    weights = torch.rand(n, k, generator=gen).to(dtype)
    w1 = (torch.randn(num_experts, hidden, ffn, generator=gen) / hidden ** 0.5).to(dtype)
    w2 = (torch.randn(num_experts, ffn, hidden, generator=gen) / ffn ** 0.5).to(dtype)
    g = torch.randn(n, hidden, generator=gen).to(dtype)
    return dict(x=x, ids=ids, weights=weights, w1=w1, w2=w2, g=g)


def ffn(rows, w1, w2):
    """One expert in fp32 (the kernels compute fp16/bf16 in fp32)."""
    return F.silu(rows.float() @ w1.float()) @ w2.float()


def make_experts(w1_local, w2_local):
    """The user's local-experts callable: rows [A, H] in expert-major segments given by counts [L]."""

    def experts(tokens, counts, scales=None):
        rows = tokens.float() * scales[:, None] if scales is not None else tokens
        outs, start = [], 0
        for e, c in enumerate(counts.tolist()):
            outs.append(ffn(rows[start:start + c], w1_local[e], w2_local[e]))
            start += c
        out = torch.cat(outs) if outs else rows.float()[:0]
        return out.to(tokens.dtype if scales is None else torch.float32)

    return experts


def dense(x, ids, weights, w1, w2):
    """The layer token by token over K (fp32): out[t] = sum_k weights[t, k] * ffn_{ids[t, k]}(x[t])."""
    out = torch.zeros(x.shape, dtype=torch.float32)
    for j in range(ids.shape[1]):
        e = ids[:, j].long()
        h = F.silu(torch.bmm(x.float()[:, None, :], w1.float()[e]))
        out = out + weights[:, j:j + 1].float() * torch.bmm(h, w2.float()[e])[:, 0, :]
    return out


def _rel(got, want):
    got, want = got.detach().float(), want.detach().float()
    if want.numel() == 0:
        return 0.0 if got.numel() == 0 else float("inf")
    if got.shape != want.shape:
        return float("inf")
    return float((got - want).abs().max() / (want.abs().max() + 1e-30))


def run_case(rank, world, kind, sizes, hidden=16, ffn_hidden=8, k=2, num_experts=8, dtype="float32", skew=None,
             seed=0, backward=True, quant=False, group=None, timings=None):
    """One dispatcher on this rank vs the dense layer. Returns the relative errors (and a backward error text
    when the backward could not run)."""
    dt = getattr(torch, dtype)
    p = make_problem(seed, sizes, hidden, ffn_hidden, k, num_experts, dt, skew)
    lo, hi = sum(sizes[:rank]), sum(sizes[:rank + 1])
    L = num_experts // world
    x = p["x"][lo:hi].clone().requires_grad_(backward)
    w = p["weights"][lo:hi].clone().requires_grad_(backward)
    w1 = p["w1"][rank * L:(rank + 1) * L].clone().requires_grad_(backward)
    w2 = p["w2"][rank * L:(rank + 1) * L].clone().requires_grad_(backward)
    if kind == "a2a":
        layer = AllToAllDispatcher(num_experts, group, quant=quant, timings=timings)
    elif kind == "ag":
        layer = AllGatherDispatcher(num_experts, group, timings=timings)
    else:
        raise ValueError(f"kind must be 'a2a' or 'ag', got {kind!r}")
    out = layer(x, p["ids"][lo:hi], w, make_experts(w1, w2))
    res = {"rank": rank, "rows": hi - lo, "out_shape": tuple(out.shape), "out_dtype": str(out.dtype).split(".")[-1]}
    xr = p["x"].clone().requires_grad_(backward)
    if quant:  # the dense layer sees the tokens the experts saw: int8-rounded per row
        from ._dispatch import quantize_rows
        q, s = quantize_rows(p["x"])
        xr = (q.float() * s[:, None]).requires_grad_(backward)
    wr = p["weights"].float().clone().requires_grad_(backward)
    w1r = p["w1"].float().clone().requires_grad_(backward)
    w2r = p["w2"].float().clone().requires_grad_(backward)
    ref = dense(xr, p["ids"], wr, w1r, w2r)
    res["out"] = _rel(out, ref[lo:hi])
    if backward:
        from ._dispatch import ops_have_autograd
        missing = ops_have_autograd(kind)
        if missing:  # torch would silently cut the graph at these operators
            res["backward_error"] = f"no autograd registered for {', '.join(missing)}"
            return res
        (ref * p["g"].float()).sum().backward()
        try:
            (out.float() * p["g"][lo:hi].float()).sum().backward()
        except Exception as e:  # noqa: BLE001  (reported; the test decides whether it may fail)
            res["backward_error"] = f"{type(e).__name__}: {e}"
            return res
        for name, got, want in (("grad_x", x.grad, xr.grad[lo:hi]), ("grad_weights", w.grad, wr.grad[lo:hi]),
                                ("grad_w1", w1.grad, w1r.grad[rank * L:(rank + 1) * L]),
                                ("grad_w2", w2.grad, w2r.grad[rank * L:(rank + 1) * L])):
            res[name] = _rel(got, want) if got is not None else float("inf")
    return res


def run_cases(rank, world, cases):
    """Every case in turn on this rank (one process group for all of them)."""
    return [run_case(rank, world, **c) for c in cases]


def collective_grads(rank, world, seed=0):
    """all_to_all / all_gather / reduce_scatter and their gradients against the explicit global computation."""
    from . import _collectives as C

    gen = torch.Generator().manual_seed(seed)
    splits = torch.randint(0, 4, (world, world), generator=gen)  # splits[i][j]: rows from rank i to rank j
    splits[0, world - 1] = 0
    xs = [torch.randn(int(splits[i].sum()), 3, generator=gen) for i in range(world)]
    gs = [torch.randn(int(splits[:, j].sum()), 3, generator=gen) for j in range(world)]
    blocks = [list(torch.split(xs[i], splits[i].tolist())) for i in range(world)]
    gblocks = [list(torch.split(gs[j], splits[:, j].tolist())) for j in range(world)]
    x = xs[rank].clone().requires_grad_(True)
    y = C.all_to_all(x, splits[:, rank].tolist(), splits[rank].tolist())
    (y * gs[rank]).sum().backward()
    err = {"a2a": _rel(y, torch.cat([blocks[i][rank] for i in range(world)])),
           "a2a_grad": _rel(x.grad, torch.cat([gblocks[j][rank] for j in range(world)]))}
    sizes = splits.sum(1).tolist()
    x = xs[rank].clone().requires_grad_(True)
    y = C.all_gather(x, sizes)
    g_all = torch.randn(sum(sizes), 3, generator=torch.Generator().manual_seed(seed + 1 + rank))
    (y * g_all).sum().backward()
    lo, hi = sum(sizes[:rank]), sum(sizes[:rank + 1])
    want_grad = sum(torch.randn(sum(sizes), 3, generator=torch.Generator().manual_seed(seed + 1 + r))[lo:hi]
                    for r in range(world))
    err["all_gather"] = _rel(y, torch.cat(xs))
    err["all_gather_grad"] = _rel(x.grad, want_grad)
    parts = [torch.randn(sum(sizes), 3, generator=torch.Generator().manual_seed(seed + 100 + r)) for r in range(world)]
    x = parts[rank].clone().requires_grad_(True)
    y = C.reduce_scatter(x, sizes)
    y.sum().backward()
    err["reduce_scatter"] = _rel(y, sum(parts)[lo:hi])
    err["reduce_scatter_grad"] = _rel(x.grad, torch.ones(sum(sizes), 3))
    xb = xs[rank].to(torch.bfloat16)
    yb = C.all_to_all(xb, splits[:, rank].tolist(), splits[rank].tolist())
    err["a2a_bf16_bits"] = _rel(yb, torch.cat([blocks[i][rank] for i in range(world)]).to(torch.bfloat16))
    err["a2a_bf16_dtype"] = str(yb.dtype)
    return err


def fail_on(rank, world, bad_rank, how="raise"):
    """A rank that fails inside a dispatch while the others wait in a collective."""
    import os

    import torch.distributed as dist

    if rank == bad_rank:
        if how == "exit":
            os._exit(3)
        raise RuntimeError(f"rank {rank} fails on purpose")
    dist.barrier()
    return run_case(rank, world, "a2a", [4] * world, backward=False)


def all_checks(rank, world, cases):
    """The collectives' own checks, then every dispatcher case (one process group, one spawn)."""
    return {"collectives": collective_grads(rank, world), "cases": run_cases(rank, world, cases)}
