"""The two expert-parallel dispatcher/combiner pairs, on the torch operators of ``aclnn_moe.torch``.

Notation: R ranks in the group, E experts, L = E / R local experts (rank r owns experts [r*L, (r+1)*L)),
T tokens on this rank, K experts per token, H hidden size, A rows this rank receives.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from . import _collectives as C

_OPS = None


def _ops():
    global _OPS
    if _OPS is None:
        import aclnn_moe.torch  # noqa: F401  (registers torch.ops.aclnn_moe.*)

        _OPS = torch.ops.aclnn_moe
    return _OPS


DIFFERENTIABLE_OPS = {"a2a": ("moe_init_routing_v2", "moe_finalize_routing"),
                      "ag": ("moe_token_permute_with_ep", "moe_token_unpermute_with_ep")}


def ops_have_autograd(kind: str) -> list:
    """The operators a dispatcher's backward needs whose autograd is not registered (empty: it trains)."""
    _ops()
    return [n for n in DIFFERENTIABLE_OPS[kind]
            if not torch._C._dispatch_has_kernel_for_dispatch_key(f"aclnn_moe::{n}", "Autograd")
            and not torch._C._dispatch_has_kernel_for_dispatch_key(f"aclnn_moe::{n}", "AutogradCPU")]


class _Phases:
    """Wall time per phase (seconds, summed over calls): routing, exchange, experts, combine. On NPU the
    figures are enqueue times unless the caller synchronises the stream."""

    def __init__(self, timings):
        self.timings = timings

    @contextlib.contextmanager
    def __call__(self, name):
        if self.timings is None:
            yield
            return
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0


def _group_shape(group, num_experts):
    world = dist.get_world_size(group)
    if num_experts <= 0 or num_experts % world:
        raise ValueError(f"num_experts must be a positive multiple of the group size {world}, got {num_experts}")
    return dist.get_rank(group), world, num_experts // world


def _check_routing(hidden, topk_ids, topk_weights):
    if hidden.dim() != 2:
        raise ValueError(f"hidden must be [T, H], got shape {tuple(hidden.shape)}")
    if topk_ids.dim() != 2 or topk_ids.shape[0] != hidden.shape[0]:
        raise ValueError(f"topk_ids must be [T, K] with T = {hidden.shape[0]}, got shape {tuple(topk_ids.shape)}")
    if topk_weights.shape != topk_ids.shape:
        raise ValueError(f"topk_weights must have the shape of topk_ids {tuple(topk_ids.shape)}, "
                         f"got {tuple(topk_weights.shape)}")


def quantize_rows(x: torch.Tensor):
    """Dynamic per-row symmetric int8 quantisation (what dispatch does before the exchange when ``quant``):
    returns (int8 rows, fp32 scales) with x ~= rows * scales[:, None]."""
    xf = x.detach().to(torch.float32)
    scale = xf.abs().amax(dim=1).clamp_min(1e-30) / 127.0
    return torch.round(xf / scale[:, None]).clamp(-127, 127).to(torch.int8), scale


# ------------------------------------------------------------------------------------------- re_routing, undone
def _as_movable(t):
    """moe_re_routing moves fp16/bf16/int8 rows; an fp32 row is moved as its bytes (a reorder needs no math)."""
    if t.dtype == torch.float32:
        return t.contiguous().view(torch.int8)
    return t.contiguous()


def _re_route(tokens, counts_rl, scales):
    if tokens.shape[0] == 0:  # this rank received nothing (its experts were not chosen)
        return tokens, scales, torch.zeros(0, dtype=torch.int64), counts_rl.new_zeros(counts_rl.shape[1])
    ops = _ops()
    moved, moved_scales, idx, expert_tokens = ops.moe_re_routing(_as_movable(tokens), counts_rl,
                                                                 per_token_scales=scales)
    return moved.view(tokens.dtype), (moved_scales if scales is not None else None), idx.to(torch.int64), \
        expert_tokens


def _undo(rows, idx):
    out = torch.empty_like(rows)
    out[idx] = rows
    return out


class _ReRoute(torch.autograd.Function):
    """Rank-major -> expert-major with moe_re_routing; backward scatters the gradient back (the inverse)."""

    @staticmethod
    def forward(ctx, tokens, counts_rl, scales):
        moved, moved_scales, idx, expert_tokens = _re_route(tokens, counts_rl, scales)
        ctx.save_for_backward(idx)
        ctx.mark_non_differentiable(idx, expert_tokens)
        if moved_scales is not None:
            ctx.mark_non_differentiable(moved_scales)
        return moved, moved_scales, idx, expert_tokens

    @staticmethod
    def backward(ctx, grad, *_):
        (idx,) = ctx.saved_tensors
        return _undo(grad, idx), None, None


class _UndoReRoute(torch.autograd.Function):
    """Expert-major -> rank-major (``out[idx[j]] = rows[j]``); backward is the forward gather again."""

    @staticmethod
    def forward(ctx, rows, idx):
        ctx.save_for_backward(idx)
        return _undo(rows, idx)

    @staticmethod
    def backward(ctx, grad):
        (idx,) = ctx.saved_tensors
        return grad.index_select(0, idx), None


# ----------------------------------------------------------------------------------------------- all-to-all EP
@dataclass
class A2AHandle:
    """What combine needs from dispatch (like vllm-ascend's MoEAllToAllCombineMetadata)."""
    send_splits: list  # rows this rank sent to each rank
    recv_splits: list  # rows this rank received from each rank
    expanded_row_idx: torch.Tensor  # init_routing_v2's row-major sorted indices [T*K] int32
    permute_token_idx: torch.Tensor  # re_routing's gather index [A] int64
    topk_weights: torch.Tensor
    num_tokens: int


@dataclass
class Dispatched:
    tokens: torch.Tensor  # [A, H] expert-major (int8 when quantised)
    tokens_per_expert: torch.Tensor  # [L] int64 (count form, group_list_type 1)
    scales: torch.Tensor | None  # [A] fp32 when quantised
    handle: object


class AllToAllDispatcher:
    """init_routing_v2 -> counts exchanged first -> split sizes to the host (the one sync) -> tokens (and scales)
    exchanged with all_to_all_single -> moe_re_routing to expert-major -> experts -> undo -> reverse exchange ->
    moe_finalize_routing (drop_pad_mode 2) with the routing weights.

    ``quant=True`` sends int8 rows plus fp32 per-row scales (forward only: quantisation has no gradient); the
    experts then receive ``(tokens, tokens_per_expert, scales)``."""

    def __init__(self, num_experts: int, group=None, *, quant: bool = False, timings: dict | None = None):
        self.group = group
        self.rank, self.world, self.local_experts = _group_shape(group, num_experts)
        self.num_experts = num_experts
        self.quant = quant
        self.timings = timings
        self._phase = _Phases(timings)

    def dispatch(self, hidden, topk_ids, topk_weights) -> Dispatched:
        _check_routing(hidden, topk_ids, topk_weights)
        ops, R, L, E = _ops(), self.world, self.local_experts, self.num_experts
        with self._phase("routing"):
            expanded_x, expanded_row_idx, counts, _ = ops.moe_init_routing_v2(
                hidden, topk_ids.to(torch.int32), expert_num=E, expert_tokens_count_or_cumsum_flag=2)
            counts = counts.to(torch.int64)
            scales = None
            if self.quant:
                expanded_x, scales = quantize_rows(expanded_x)
        with self._phase("exchange"):
            recv_counts = C.exchange_counts(counts, self.group)  # [R*L]: from rank r for my expert l
            host = C.host_ints(torch.stack([counts.view(R, L).sum(1), recv_counts.view(R, L).sum(1)]))
            send_splits, recv_splits = host
            if scales is not None:  # scales first, as the quantised production paths do
                scales = C.all_to_all(scales, recv_splits, send_splits, self.group)
            received = C.all_to_all(expanded_x, recv_splits, send_splits, self.group)
        with self._phase("routing"):
            tokens, scales, idx, per_expert = _ReRoute.apply(received, recv_counts.view(R, L), scales)
        handle = A2AHandle(send_splits, recv_splits, expanded_row_idx, idx, topk_weights, hidden.shape[0])
        return Dispatched(tokens, per_expert.to(torch.int64), scales, handle)

    def combine(self, expert_out, handle: A2AHandle):
        ops = _ops()
        with self._phase("combine"):
            rows = _UndoReRoute.apply(expert_out, handle.permute_token_idx)
            back = C.all_to_all(rows, handle.send_splits, handle.recv_splits, self.group)
            w = handle.topk_weights.to(back.dtype)
            return ops.moe_finalize_routing(back, None, None, None, w, handle.expanded_row_idx, None,
                                            drop_pad_mode=2)

    def __call__(self, hidden, topk_ids, topk_weights, experts):
        d = self.dispatch(hidden, topk_ids, topk_weights)
        with self._phase("experts"):
            args = (d.tokens, d.tokens_per_expert) + ((d.scales,) if self.quant else ())
            out = experts(*args)
        if self.quant:
            out = out.to(hidden.dtype)
        return self.combine(out, d.handle)


# ----------------------------------------------------------------------------------------------- all-gather EP
@dataclass
class AGHandle:
    sizes: list  # tokens per rank
    window: list  # [start, end) of this rank's rows in the global expert order
    sorted_indices: torch.Tensor | None
    weights_all: torch.Tensor
    tokens_all: torch.Tensor
    num_rows: int
    hidden: int


class AllGatherDispatcher:
    """All-gather tokens, expert ids and weights -> this rank's window of the global expert order from the global
    histogram -> moe_token_permute_with_ep(range) -> experts -> moe_token_unpermute_with_ep(range) (a partial
    sum: rows of other ranks' experts contribute 0) -> reduce-scatter back to each rank's tokens.

    The one host synchronisation: every rank's token count and expert histogram, gathered in one collective."""

    def __init__(self, num_experts: int, group=None, *, timings: dict | None = None):
        self.group = group
        self.rank, self.world, self.local_experts = _group_shape(group, num_experts)
        self.num_experts = num_experts
        self.timings = timings
        self._phase = _Phases(timings)

    def dispatch(self, hidden, topk_ids, topk_weights) -> Dispatched:
        _check_routing(hidden, topk_ids, topk_weights)
        ops, r, L, E = _ops(), self.rank, self.local_experts, self.num_experts
        ids = topk_ids.to(torch.int32)
        with self._phase("exchange"):
            hist = torch.bincount(ids.reshape(-1).to(torch.int64), minlength=E)
            if hist.shape[0] > E:
                raise ValueError(f"topk_ids must be in [0, {E}), got {int(ids.max())}")
            meta = C.host_ints(C.gather_rows_meta(torch.cat([hist.new_tensor([hidden.shape[0]]), hist]),
                                                  self.group))
            sizes = [m[0] for m in meta]
            glob = [sum(m[1 + e] for m in meta) for e in range(E)]
            start = sum(glob[:r * L])
            window = [start, start + sum(glob[r * L:(r + 1) * L])]
            x_all = C.all_gather(hidden, sizes, self.group)
            ids_all = C.all_gather(ids, sizes, self.group)
            w_all = C.all_gather(topk_weights, sizes, self.group)
        with self._phase("routing"):
            n_all = x_all.shape[0]
            if window[1] > window[0]:
                tokens, sorted_indices, _ = ops.moe_token_permute_with_ep(x_all, ids_all, range=window)
            else:  # nothing for my experts (start == end would mean "the whole permutation" to the operator)
                tokens, sorted_indices = x_all[:0], None
        per_expert = torch.tensor(glob[r * L:(r + 1) * L], dtype=torch.int64)
        handle = AGHandle(sizes, window, sorted_indices, w_all, x_all, n_all, hidden.shape[1])
        return Dispatched(tokens, per_expert, None, handle)

    def combine(self, expert_out, handle: AGHandle):
        ops = _ops()
        with self._phase("combine"):
            if handle.sorted_indices is not None:
                part = ops.moe_token_unpermute_with_ep(expert_out, handle.sorted_indices, probs=handle.weights_all,
                                                       range=handle.window)
            else:
                # no rows for my experts: a zero partial sum that still depends on the gathered tokens and
                # weights, so that every rank runs the same collectives in backward (SPMD autograd)
                part = expert_out.new_zeros((handle.num_rows, handle.hidden)) + expert_out.sum() * 0 \
                    + handle.tokens_all.sum() * 0 + handle.weights_all.sum().to(expert_out.dtype) * 0
            return C.reduce_scatter(part, handle.sizes, self.group)

    def __call__(self, hidden, topk_ids, topk_weights, experts):
        d = self.dispatch(hidden, topk_ids, topk_weights)
        with self._phase("experts"):
            out = experts(d.tokens, d.tokens_per_expert)
        return self.combine(out, d.handle)
