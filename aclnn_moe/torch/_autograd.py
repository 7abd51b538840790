"""Backward formulas of the differentiable torch operators.

Each differentiable ``torch.ops.aclnn_moe.<op>`` gets an ``Autograd`` kernel (a ``torch.autograd.Function``
wrapping the op below autograd), like ``torch.library.register_autograd`` makes, written by hand because
register_autograd refuses keyword-only tensors and torch_npu's schemas have them (``probs``, ``bias``, ``scale``).
Backward formulas are plain torch code calling torch ops, so they trace under ``torch.compile`` (aot_eager,
inductor) like the forward.

Which backward each operator has (grad-op = the CANN grad operator's torch op does the work; composite = a few
torch ops, written here, because CANN has no grad operator for it or its contract does not cover the case):

============================== ==================================================================================
moe_token_permute_with_ep       grad-op moe_token_permute_with_ep_grad (tokens, probs); composite when the window
                                wraps (range start == end with start > 0)
moe_token_unpermute_with_ep     grad-op moe_token_unpermute_with_ep_grad (permuted_tokens, probs)
moe_token_permute               grad-op moe_token_permute_grad (tokens)
moe_token_unpermute             grad-op moe_token_unpermute_grad (permuted_tokens, probs)
moe_init_routing_v2             grad-op moe_init_routing_v2_grad (x)
moe_init_routing_v3             grad-op moe_init_routing_v2_grad (x; quant_mode -1 only: quantised outputs are int8).
                                Pairs dropped by the active range / active_num and row_idx_type 1 are mapped to the
                                grad op's drop/pad form (the rows viewed as one expert of capacity rows, -1 = no row)
moe_finalize_routing            grad-op moe_finalize_routing_v2_grad (expanded_permuted_rows, scales; modes 0-3, the
                                k-major modes 0/1 reindexed row-major); composite: skip1, skip2 (the incoming
                                gradient), bias (index_add of the weighted gradient) and the bias term of scales
moe_gating_top_k                composite (no grad operator in scope): softmax / sigmoid backward of the selected
                                weights (and of norm_out when out_flag), w.r.t. x; bias only ranks, no gradient
moe_gating_top_k_softmax(_v2)    composite: softmax backward of the top-k (renorm 0, plus softmax_result's
                                gradient) or of the softmax over the top-k logits (V2 renorm 1), w.r.t. x
moe_token_permute_with_routing_map
                                grad-op moe_token_permute_with_routing_map_grad (tokens, probs); composite for an
                                empty routing map (T or E 0) and for the probs gradient when probs have another
                                dtype than the tokens (fp32 with bf16: the grad op takes both in one dtype)
moe_token_unpermute_with_routing_map
                                grad-op moe_token_unpermute_with_routing_map_grad (permuted_tokens, probs), drop/pad
                                with the forward's out_index / permute_token_id, else its sorted_indices as both
                                (MindSpeed's call); plus, composite, the probs term of the permute_probs output's
                                gradient. Composite where the grad op's contract does not cover the call (shapes):
                                rows of permuted_tokens other than len(sorted_indices), K > E with probs,
                                capacity > T, and the forward's empty case
============================== ==================================================================================

Gradients are computed in the dtype of the forward's tensors (the grad operators accumulate in fp32).
"""
from __future__ import annotations

import torch
from torch._C import _after_autograd_keyset

from ._library import CPU_KERNELS, NAMESPACE, _lib, _registered

_OPS = torch.ops.aclnn_moe
_CPU, _AD_INPLACE_OR_VIEW = torch._C.DispatchKey.CPU, torch._C.DispatchKey.ADInplaceOrView
REGISTERED: dict[str, str] = {}  # op -> "grad-op" | "composite" (what backs its backward; see the table above)


_TENSOR = torch.Tensor


def _wants_grad(args, kwargs) -> bool:
    """Whether a tensor argument (nn.Parameter included) requires grad (loops, not any() over a generator: this
    runs on every call)."""
    for v in args:
        if isinstance(v, _TENSOR) and v.requires_grad:
            return True
    for v in kwargs.values():
        if isinstance(v, _TENSOR) and v.requires_grad:
            return True
    return False


_CPU_NEXT: dict = {}  # DispatchKeySet.raw_repr() -> whether below autograd the CPU kernel is next


def _reaches_cpu(keyset) -> bool:
    raw = keyset.raw_repr()
    hit = _CPU_NEXT.get(raw)
    if hit is None:
        below = (keyset & _after_autograd_keyset).remove(_AD_INPLACE_OR_VIEW)
        hit = _CPU_NEXT[raw] = below.highestPriorityTypeId() == _CPU
    return hit


def _fill(arguments, args, kwargs) -> dict:
    """Every argument by name, defaults included (the dispatcher drops arguments equal to their default).
    ``arguments``: (name, kwarg_only, default) of each schema argument, read once by _register
    (``schema.arguments`` builds new Argument objects on every access, which cost more than a small op call)."""
    out = {}
    for i, (name, kwarg_only, default) in enumerate(arguments):
        if not kwarg_only and i < len(args):
            out[name] = args[i]
        else:
            out[name] = kwargs.get(name, default)
    return out


def _register(name: str, setup, backward, kind: str) -> None:
    """An Autograd kernel for aclnn_moe::<name>: ``setup(ctx, inputs: dict, output)``, ``backward(ctx, *grads)
    -> dict name -> grad`` (missing names get None)."""
    if name not in _registered:
        return
    op = getattr(_OPS, name).default
    schema = op._schema
    arguments = tuple((a.name, a.kwarg_only, a.default_value) for a in schema.arguments)
    cpu = CPU_KERNELS.get(name)
    names = [a[0] for a in arguments]
    kw = {a.name for a in schema.arguments if a.kwarg_only}

    def split(values):
        return ([values[n] for n in names if n not in kw], {n: values[n] for n in names if n in kw})

    class Fn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, keyset, *flat):
            values = dict(zip(names, flat))
            args, kwargs = split(values)
            with torch._C._AutoDispatchBelowAutograd():
                out = op.redispatch(keyset & _after_autograd_keyset, *args, **kwargs)
            outs = out if isinstance(out, tuple) else (out,)
            ctx.mark_non_differentiable(*[o for o in outs if not o.is_floating_point()])
            ctx.set_materialize_grads(False)
            setup(ctx, values, out)
            return out

        @staticmethod
        def backward(ctx, *grads):
            got = backward(ctx, *grads)
            return (None,) + tuple(got.get(n) for n in names)

    Fn.__name__ = f"{name}_autograd"

    def kernel(keyset, *args, **kwargs):
        if torch.is_grad_enabled() and _wants_grad(args, kwargs):
            values = _fill(arguments, args, kwargs)
            return Fn.apply(keyset, *[values[n] for n in names])
        if cpu is not None and _reaches_cpu(keyset):
            # what the redispatch would reach (ADInplaceOrView falls through for these ops), without a second
            # trip through the boxed dispatcher, which costs more than a small op call; no guard needed: no input
            # wants a gradient and the CPU kernel only wraps fresh arrays as tensors
            return cpu(*args, **kwargs)
        with torch._C._AutoDispatchBelowAutograd():  # (no gradient wanted: the arguments as they came)
            return op.redispatch(keyset & _after_autograd_keyset, *args, **kwargs)

    _lib.impl(name, kernel, "Autograd", with_keyset=True)
    REGISTERED[name] = kind


def _zeros_like(t, g=None):
    return torch.zeros_like(t) if g is None else g


def _need(ctx, *names):
    return any(ctx.needs.get(n, False) for n in names)


def _save(ctx, values, out, tensors, attrs=()):
    """Save named tensors (None allowed) and attributes; ctx.needs says which inputs want a gradient."""
    ctx.names = tuple(tensors)
    ctx.save_for_backward(*[values[n] if n in values else out[n] for n in tensors])
    for n in attrs:
        setattr(ctx, n, values[n])
    ctx.needs = {n: isinstance(v, torch.Tensor) and v.requires_grad for n, v in values.items()}


def _saved(ctx):
    return dict(zip(ctx.names, ctx.saved_tensors))


def _float_grad(t, g):
    """A gradient for float tensor t (None for a missing one or a non-float t)."""
    if t is None or not t.is_floating_point() or g is None:
        return None
    return g.to(t.dtype)


# ---------------------------------------------------------------------------------------------- permute family
def _window(total, range_, num_out_tokens):
    from ..reference.token_permute_with_ep import resolve_window  # the operator's own resolution (pure Python)

    return resolve_window(total, list(range_) if range_ is not None and len(range_) else None, num_out_tokens)


def _permute_ep_setup(ctx, v, out):
    _save(ctx, v, {"sorted_indices": out[1]}, ("tokens", "indices", "probs", "sorted_indices"),
          ("range", "num_out_tokens", "padded_mode"))


def _permute_ep_backward(ctx, g_tokens, g_sorted, g_probs):
    s = _saved(ctx)
    tokens, indices, probs, si = s["tokens"], s["indices"], s["probs"], s["sorted_indices"]
    total = si.shape[0]
    k = indices.shape[1] if indices.dim() == 2 else 1
    start, rows = _window(total, ctx.range, ctx.num_out_tokens)
    t = tokens.shape[0]
    h = torch.Size(tokens.shape[1:]).numel()
    g_tokens = torch.zeros((rows,) + tuple(tokens.shape[1:]), dtype=tokens.dtype) if g_tokens is None else g_tokens
    g2 = g_tokens.reshape(rows, h)
    want_probs = probs is not None and ctx.needs.get("probs", False)
    if want_probs and g_probs is None:
        g_probs = torch.zeros(rows, dtype=probs.dtype)
    if start + rows <= total and total > 0:
        tg, pg = _OPS.moe_token_permute_with_ep_grad(g2, si, permuted_probs_output_grad=g_probs if want_probs
                                                     else None, num_topk=k, range=[start, start + rows],
                                                     padded_mode=ctx.padded_mode)
    else:  # the wrapped window (start == end > 0) or no pairs: composite
        d = si.view(t, k).long() - start
        use = (d >= 0) & (d < rows)
        dd = d.clamp(0, max(rows - 1, 0))
        tg = (g2[dd] * use.unsqueeze(-1).to(g2.dtype)).sum(1) if rows else torch.zeros((t, h), dtype=g2.dtype)
        pg = (g_probs[dd] * use.to(g_probs.dtype)) if want_probs and rows else (
            torch.zeros((t, k), dtype=tokens.dtype) if want_probs else None)
    return {"tokens": tg.reshape(tokens.shape),
            "probs": pg.reshape(probs.shape).to(probs.dtype) if want_probs else None}


def _unpermute_ep_setup(ctx, v, out):
    _save(ctx, v, {}, ("permuted_tokens", "sorted_indices", "probs"), ("num_topk", "range", "padded_mode"))


def _unpermute_ep_backward(ctx, g):
    s = _saved(ctx)
    pt, si, probs = s["permuted_tokens"], s["sorted_indices"], s["probs"]
    k = probs.shape[1] if probs is not None else (ctx.num_topk if ctx.num_topk is not None else 1)
    pg, prg = _OPS.moe_token_unpermute_with_ep_grad(g, si, permuted_tokens=pt, probs=probs,
                                                    padded_mode=ctx.padded_mode,
                                                    range=list(ctx.range) if ctx.range else None, topk_num=k)
    return {"permuted_tokens": pg, "probs": prg if probs is not None else None}


def _permute_setup(ctx, v, out):
    _save(ctx, v, {"sorted_indices": out[1]}, ("tokens", "indices", "sorted_indices"), ("padded_mode",))


def _permute_backward(ctx, g, g_sorted):
    s = _saved(ctx)
    tokens, indices, si = s["tokens"], s["indices"], s["sorted_indices"]
    if not tokens.is_floating_point() or g is None:
        return {}
    k = indices.shape[1] if indices.dim() == 2 else 1
    rows = g.shape[0]
    h = int(torch.Size(tokens.shape[1:]).numel())
    tg = _OPS.moe_token_permute_grad(g.reshape(rows, h), si, k, ctx.padded_mode)
    return {"tokens": tg.reshape(tokens.shape)}


def _unpermute_setup(ctx, v, out):
    _save(ctx, v, {}, ("permuted_tokens", "sorted_indices", "probs"), ("padded_mode",))


def _unpermute_backward(ctx, g):
    s = _saved(ctx)
    pt, si, probs = s["permuted_tokens"], s["sorted_indices"], s["probs"]
    pg, prg = _OPS.moe_token_unpermute_grad(pt, g, si, probs=probs, padded_mode=ctx.padded_mode)
    return {"permuted_tokens": pg, "probs": prg if probs is not None else None}


# -------------------------------------------------------------------------------------------- init routing
def _init_v2_setup(ctx, v, out):
    _save(ctx, v, {"expanded_row_idx": out[1]}, ("x", "expert_idx", "expanded_row_idx"),
          ("active_num", "drop_pad_mode"))


def _init_v2_backward(ctx, g, *_):
    s = _saved(ctx)
    x, ei, idx = s["x"], s["expert_idx"], s["expanded_row_idx"]
    if g is None:
        return {}
    k = ei.shape[1]
    n = idx.shape[0]
    if n == 0:
        return {"x": torch.zeros_like(x)}
    active = g.shape[0] if ctx.drop_pad_mode == 0 and g.shape[0] < n else 0
    return {"x": _OPS.moe_init_routing_v2_grad(g, idx, k, drop_pad_mode=ctx.drop_pad_mode, active_num=active)}


def _init_v3_setup(ctx, v, out):
    _save(ctx, v, {"expanded_row_idx": out[1]}, ("x", "expert_idx", "expanded_row_idx"),
          ("drop_pad_mode", "row_idx_type", "quant_mode"))


def _init_v3_backward(ctx, g, *_):
    s = _saved(ctx)
    x, ei, idx = s["x"], s["expert_idx"], s["expanded_row_idx"]
    if g is None or ctx.quant_mode != -1 or not x.is_floating_point():
        return {}
    k = ei.shape[1]
    n = idx.shape[0]
    if n == 0 or g.numel() == 0:
        return {"x": torch.zeros_like(x)}
    if ctx.row_idx_type == 1:  # gather form [j] = pair -> scatter form [pair] = j
        valid = idx >= 0
        target = torch.where(valid, idx.long(), n)
        inv = torch.full((n + 1,), -1, dtype=torch.int32)
        inv = inv.scatter(0, target, torch.arange(n, dtype=torch.int32))
        idx = inv[:n]
    if ctx.drop_pad_mode == 1:
        return {"x": _OPS.moe_init_routing_v2_grad(g, idx, k, drop_pad_mode=1)}
    rows = g.shape[0]
    idx = torch.where((idx >= 0) & (idx < rows), idx, -1)
    # dropless with dropped pairs: the grad op's drop/pad form (one expert of capacity rows; -1 adds nothing)
    return {"x": _OPS.moe_init_routing_v2_grad(g.view(1, rows, g.shape[1]), idx, k, drop_pad_mode=1)}


# ---------------------------------------------------------------------------------------------- finalize
def _finalize_setup(ctx, v, out):
    _save(ctx, v, {}, ("expanded_permuted_rows", "skip1", "skip2", "bias", "scales", "expanded_src_to_dst_row",
                       "export_for_source_row"), ("drop_pad_mode",))


def _finalize_backward(ctx, g):
    s = _saved(ctx)
    x, bias, scales = s["expanded_permuted_rows"], s["bias"], s["scales"]
    r, eidx = s["expanded_src_to_dst_row"], s["export_for_source_row"]
    mode = ctx.drop_pad_mode
    res = {"skip1": _float_grad(s["skip1"], g), "skip2": _float_grad(s["skip2"], g)}
    n, h = g.shape
    k = scales.shape[1] if scales is not None else 1
    if mode in (0, 1):  # k-major p = k*N + i -> row-major i*K + k
        r = r.view(k, n).t().reshape(-1)
        if eidx is not None:
            eidx = eidx.reshape(n, k)
    valid = (r >= 0).view(n, k)
    xv = x if mode in (1, 3) else x.view(1, x.shape[0], h)
    want_x = ctx.needs.get("expanded_permuted_rows", False)
    want_s = scales is not None and ctx.needs.get("scales", False)
    if want_x or want_s:
        if n * k == 0 or xv.numel() == 0:
            gx = torch.zeros_like(x)
            gs = torch.zeros_like(scales) if scales is not None else None
        else:
            gx, gs = _OPS.moe_finalize_routing_v2_grad(
                g, r, expanded_x=xv, scales=scales.to(g.dtype) if scales is not None else None, drop_pad_mode=1,
                expert_num=xv.shape[0], expert_capacity=xv.shape[1])
        res["expanded_permuted_rows"] = gx.reshape(x.shape) if want_x else None
        if want_s:
            gs = gs.float()
            if bias is not None:  # the bias term of the scale gradient (kept pairs only, as the forward adds)
                b = bias.float()[eidx.reshape(-1).long()].view(n, k, h)
                gs = gs + torch.where(valid, (b * g.float().unsqueeze(1)).sum(-1), 0.0)
            res["scales"] = gs.to(scales.dtype)
    if bias is not None and ctx.needs.get("bias", False):
        w = valid.float() * (scales.float() if scales is not None else 1.0)
        contrib = (w.unsqueeze(-1) * g.float().unsqueeze(1)).reshape(n * k, h)
        gb = torch.zeros(bias.shape, dtype=torch.float32).index_add(0, eidx.reshape(-1).long(), contrib)
        res["bias"] = gb.to(bias.dtype)
    return res


# ---------------------------------------------------------------------------------------------- gating
def _gating_setup(ctx, v, out):
    _save(ctx, v, {"expert_idx": out[1]}, ("x", "expert_idx"),
          ("norm_type", "routed_scaling_factor", "eps", "out_flag"))


def _gating_backward(ctx, g_y, g_idx, g_norm):
    s = _saved(ctx)
    x, idx = s["x"], s["expert_idx"].long()
    xf = x.float()
    sc = torch.softmax(xf, -1) if ctx.norm_type == 0 else torch.sigmoid(xf)
    g_s = torch.zeros_like(sc) if g_norm is None or not ctx.out_flag else g_norm.float().clone()
    if g_y is not None:
        gy = g_y.float() * ctx.routed_scaling_factor
        sel = sc.gather(1, idx)
        if ctx.norm_type == 1:  # y = sel / (sum(sel) + eps)
            den = sel.sum(1, keepdim=True) + ctx.eps
            gsel = gy / den - (gy * sel).sum(1, keepdim=True) / (den * den)
        else:
            gsel = gy
        g_s = g_s.scatter_add(1, idx, gsel)
    if ctx.norm_type == 0:
        gx = sc * (g_s - (g_s * sc).sum(-1, keepdim=True))
    else:
        gx = g_s * sc * (1 - sc)
    return {"x": gx.to(x.dtype)}


def _softmax_setup(ctx, v, out):
    _save(ctx, v, {"expert_idx": out[1]}, ("x", "expert_idx"), ("k",))
    ctx.renorm = v.get("renorm", 0)


def _softmax_backward(ctx, g_y, g_idx, g_third):
    """y = top-k of softmax(x) (V1, V2 renorm 0; V2's softmax_result adds its gradient), or softmax over the top-k
    logits (V2 renorm 1). Finished rows carry expert E: their experts are re-ranked (stable sort, ties to the lower
    index, as the operator ranks)."""
    s = _saved(ctx)
    x, idx = s["x"], s["expert_idx"]
    e = x.shape[-1]
    xf = x.float().reshape(-1, e)
    idx = idx.reshape(-1, idx.shape[-1]).long()
    renorm = ctx.renorm
    base = xf if renorm == 1 else torch.softmax(xf, -1)
    ranked = torch.sort(base, dim=-1, descending=True, stable=True).indices[:, :idx.shape[1]]
    idx = torch.where(idx >= e, ranked, idx)
    gy = torch.zeros(idx.shape) if g_y is None else g_y.float().reshape(idx.shape)
    if renorm == 1:
        y = torch.softmax(xf.gather(1, idx), -1)
        gv = y * (gy - (gy * y).sum(-1, keepdim=True))
        gx = torch.zeros_like(xf).scatter_add(1, idx, gv)
    else:
        sm = base
        g_s = torch.zeros_like(sm).scatter_add(1, idx, gy)
        if g_third is not None and g_third.numel() == sm.numel() and g_third.is_floating_point():
            g_s = g_s + g_third.float().reshape(sm.shape)
        gx = sm * (g_s - (g_s * sm).sum(-1, keepdim=True))
    return {"x": gx.reshape(x.shape).to(x.dtype)}


# --------------------------------------------------------------------------------------- routing-map pair
def _rank_in(mask):
    """The 0-based position of each True entry of mask in its row-major order (-1 elsewhere)."""
    flat = mask.reshape(-1).long()
    return torch.where(mask, (torch.cumsum(flat, 0) - 1).view(mask.shape), -1)


def _take(v, pos, ok):
    """v[pos] where ok (pos any shape, 0 elsewhere); v 1-D or 2-D."""
    if v.shape[0] == 0:
        return torch.zeros(pos.shape + v.shape[1:], dtype=v.dtype)
    p = torch.where(ok, pos, 0).clamp(0, v.shape[0] - 1)
    out = v[p]
    m = ok if v.dim() == 1 else ok.unsqueeze(-1)
    return out * m.to(v.dtype)


def _pmap_setup(ctx, v, out):
    _save(ctx, v, {"sorted_indices": out[2]}, ("tokens", "routing_map", "probs", "sorted_indices"),
          ("drop_and_pad",))


def _pmap_composite(tokens, m, probs, si, drop_and_pad, g_tok, g_probs, want_probs):
    """The backward as torch ops: empty routing maps (the grad operator wants T, E > 0) and the probs gradient of a
    probs dtype other than the tokens' (the grad operator takes both gradients in one dtype)."""
    t, e = m.shape
    rows = si.shape[0]
    res = {}
    if drop_and_pad:  # row i = tokens[si[i]], probs[si[i], i // C]
        c = rows // max(e, 1)
        src = si.long()
        if g_tok is not None:
            res["tokens"] = torch.zeros_like(tokens).index_add(0, src, g_tok)
        if want_probs:
            col = torch.arange(rows) // max(c, 1)
            res["probs"] = torch.zeros_like(probs).index_put((src, col), g_probs.to(probs.dtype), accumulate=True)
        return res
    # rows list the (e, t) pairs expert-major: row of pair (t, e) = its rank in routing_map.T
    row = _rank_in(m.t().contiguous()).t()  # [T, E]
    ok = (row >= 0) & (row < rows)
    if g_tok is not None:
        res["tokens"] = _take(g_tok, row, ok).sum(1).to(tokens.dtype)
    if want_probs:
        res["probs"] = _take(g_probs, row, ok).to(probs.dtype)
    return res


def _pmap_backward(ctx, g_tok, g_probs, g_si):
    s = _saved(ctx)
    tokens, m, probs, si = s["tokens"], s["routing_map"], s["probs"], s["sorted_indices"]
    t, e = m.shape
    rows = si.shape[0]
    want_probs = probs is not None and g_probs is not None
    if g_tok is None and not want_probs:
        return {}
    if t == 0 or e == 0:
        return _pmap_composite(tokens, m.bool(), probs, si, ctx.drop_and_pad, g_tok, g_probs, want_probs)
    g = g_tok if g_tok is not None else torch.zeros((rows,) + tuple(tokens.shape[1:]), dtype=tokens.dtype)
    op_probs = want_probs and g_probs.dtype == g.dtype  # the operator's probs gradient has the tokens dtype
    tg, pg = _OPS.moe_token_permute_with_routing_map_grad(g, g_probs if op_probs else None, si, m, e, t,
                                                          ctx.drop_and_pad)
    res = {"tokens": tg.to(tokens.dtype) if g_tok is not None else None}
    if op_probs:
        res["probs"] = pg.to(probs.dtype)
    elif want_probs:
        res["probs"] = _pmap_composite(tokens, m.bool(), probs, si, ctx.drop_and_pad, None, g_probs, True)["probs"]
    return res


def _umap_setup(ctx, v, out):
    _save(ctx, v, {"out_index": out[1], "permute_token_id": out[2]},
          ("permuted_tokens", "sorted_indices", "probs", "routing_map", "out_index", "permute_token_id"),
          ("drop_and_pad", "restore_shape"))


def _umap_grad_op_fits(pt, si, probs, t, drop_and_pad):
    """Whether the grad operator's contract covers this call, decided on shapes only (a backward must trace under
    torch.compile): the forward's own layouts. Index data are the permute's (each row once, -1 = unused slot); a
    sorted_indices repeating a row or naming one past the rows is an error of the grad operator (161002)."""
    rows, n = pt.shape[0], si.shape[0]
    if n == 0 or t == 0:
        return False  # the forward's empty case: the gradient is zeros
    if drop_and_pad:
        return probs is None or (n % probs.shape[1] == 0 and n // probs.shape[1] <= t)  # C <= T
    return rows == n and (probs is None or n // t <= probs.shape[1])  # [L, H] rows; K <= E with probs


def _umap_pp_term(probs, m, si, drop_and_pad, g_pp):
    """The probs gradient of the forward's permute_probs output (which the grad operator does not take): fp32."""
    n = si.shape[0]
    if drop_and_pad:
        col = torch.arange(n) // max(n // max(probs.shape[1], 1), 1)
        return torch.zeros(probs.shape).index_put((si.long(), col), g_pp.float(), accumulate=True)
    pos = _rank_in(m.bool())  # the j-th routing-map entry (row-major) is permute_probs[j]
    return _take(g_pp.float(), pos, (pos >= 0) & (pos < n))


def _umap_composite(ctx, pt, si, probs, m, g, g_pp):
    """The backward as torch ops, for the calls the grad operator does not express (see _umap_grad_op_fits)."""
    rows, h = pt.shape
    n = si.shape[0]
    si = si.long()
    res = {}
    if ctx.drop_and_pad:  # out[si[i]] += pt[i] * w[i], w[i] = probs[si[i], i // C]
        gt = g.float()[si] if g is not None else torch.zeros((n, h))
        if probs is None:
            res["permuted_tokens"] = gt.to(pt.dtype)
            return res
        e = probs.shape[1]
        c = n // max(e, 1)
        col = torch.arange(n) // max(c, 1)
        w = probs.float()[si, col]
        res["permuted_tokens"] = (gt * w.unsqueeze(1)).to(pt.dtype)
        gw = (pt.float() * gt).sum(1)
        if g_pp is not None:
            gw = gw + g_pp.float()
        res["probs"] = torch.zeros_like(probs, dtype=torch.float32).index_put((si, col), gw, accumulate=True).to(
            probs.dtype)
        return res
    t = probs.shape[0] if probs is not None else g.shape[0]
    k = n // max(t, 1)
    d = si.view(t, k)
    use = (d >= 0) & (d < rows)
    gf = g.float() if g is not None else torch.zeros((t, h))
    if probs is not None:
        mb = m.bool()
        pos = _rank_in(mb)  # slot of (t, e) in permute_probs = probs[routing_map], padded to n
        okp = (pos >= 0) & (pos < n)
        w = torch.zeros(n, dtype=torch.float32).index_put((torch.where(okp, pos, n - 1).reshape(-1),),
                                                           (probs.float() * okp).reshape(-1), accumulate=True)
        w = w.view(t, k)
    else:
        w = torch.ones((t, k))
    contrib = (gf.unsqueeze(1) * (w * use).unsqueeze(-1)).reshape(n, h)
    dd = torch.where(use, d, rows).reshape(-1)
    gpt = torch.zeros((rows + 1, h)).index_add(0, dd, contrib)[:rows]
    res["permuted_tokens"] = gpt.to(pt.dtype)
    if probs is not None:
        gw = (_take(pt.float(), d, use) * gf.unsqueeze(1)).sum(-1).reshape(n)
        if g_pp is not None:
            gw = gw + g_pp.float()
        res["probs"] = _take(gw, pos, okp).to(probs.dtype)
    return res


def _umap_backward(ctx, g, g_oi, g_pid, g_pp):
    s = _saved(ctx)
    pt, si, probs, m = s["permuted_tokens"], s["sorted_indices"], s["probs"], s["routing_map"]
    if g is None:
        g = torch.zeros(tuple(ctx.restore_shape), dtype=pt.dtype)
    t = probs.shape[0] if probs is not None else int(ctx.restore_shape[0])
    if not _umap_grad_op_fits(pt, si, probs, t, ctx.drop_and_pad):
        return _umap_composite(ctx, pt, si, probs, m, g, g_pp)
    if ctx.drop_and_pad:  # the forward's (out_index, permute_token_id); the routing map is not read in this mode
        oi, pid = s["out_index"], s["permute_token_id"]
        if probs is not None and m is None:
            m = torch.zeros(probs.shape, dtype=torch.bool)
    else:  # MindSpeed's call: the forward's sorted_indices as both
        oi = pid = si
    pg, prg = _OPS.moe_token_unpermute_with_routing_map_grad(
        g.to(pt.dtype), oi, pid, routing_map=m if probs is not None else None,
        permuted_tokens=pt if probs is not None else None, probs=probs, drop_and_pad=ctx.drop_and_pad,
        restore_shape=list(ctx.restore_shape))
    res = {"permuted_tokens": pg}
    if probs is not None:
        if g_pp is not None:
            prg = (prg.float() + _umap_pp_term(probs, m, si, ctx.drop_and_pad, g_pp)).to(probs.dtype)
        res["probs"] = prg
    return res


_register("moe_token_permute_with_ep", _permute_ep_setup, _permute_ep_backward, "grad-op")
_register("moe_token_unpermute_with_ep", _unpermute_ep_setup, _unpermute_ep_backward, "grad-op")
_register("moe_token_permute", _permute_setup, _permute_backward, "grad-op")
_register("moe_token_unpermute", _unpermute_setup, _unpermute_backward, "grad-op")
_register("moe_init_routing_v2", _init_v2_setup, _init_v2_backward, "grad-op")
_register("moe_init_routing_v3", _init_v3_setup, _init_v3_backward, "grad-op")
_register("moe_finalize_routing", _finalize_setup, _finalize_backward, "grad-op")
_register("moe_gating_top_k", _gating_setup, _gating_backward, "composite")
_register("moe_gating_top_k_softmax", _softmax_setup, _softmax_backward, "composite")
_register("moe_gating_top_k_softmax_v2", _softmax_setup, _softmax_backward, "composite")
_register("moe_token_permute_with_routing_map", _pmap_setup, _pmap_backward, "grad-op")
_register("moe_token_unpermute_with_routing_map", _umap_setup, _umap_backward, "grad-op")

__all__ = ["NAMESPACE", "REGISTERED"]
