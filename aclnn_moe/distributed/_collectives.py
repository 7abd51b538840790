"""The thin collective layer under both dispatchers: one code path for gloo (CPU tensors) and HCCL (NPU tensors).

* inputs are made contiguous (gloo refuses strided tensors);
* every uneven exchange (gather, reduce-scatter) is an ``all_to_all_single`` with explicit splits: gloo's list
  ``all_gather`` rejects uneven sizes, and one primitive keeps the byte accounting simple;
* bf16 and fp16 are moved as raw bytes (gloo in torch 2.13 rejects bf16 and int16; a move needs no arithmetic);
  reductions are done locally in fp32 in a fixed rank order, so results are deterministic and rounded once;
* autograd: the backward of an exchange is the same exchange with the splits swapped (Megatron's ``_AllToAll``),
  the backward of a gather is a reduce-scatter and vice versa.
Every call blocks for at most the process group's timeout (``init_process_group(timeout=...)``).
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist

# moved as raw bytes: gloo in torch 2.13 rejects bf16 and int16 ("Invalid scalar type"); a move needs no math
_AS_BYTES = (torch.bfloat16, torch.float16)


def _raw_a2a(x: torch.Tensor, out_splits, in_splits, group) -> torch.Tensor:
    """all_to_all_single of the rows of x; ``in_splits[r]`` rows go to rank r, ``out_splits[r]`` come from it."""
    out_splits = [int(s) for s in out_splits]
    in_splits = [int(s) for s in in_splits]
    if sum(in_splits) != x.shape[0]:
        raise ValueError(f"in_splits sum to {sum(in_splits)}, but the input has {x.shape[0]} rows")
    rows = tuple(x.shape[1:])
    src = x.contiguous()
    if src.dtype in _AS_BYTES:
        src = src.reshape(src.shape[0], math.prod(rows)).view(torch.uint8)
    out = src.new_empty((sum(out_splits),) + tuple(src.shape[1:]))
    dist.all_to_all_single(out, src, out_splits, in_splits, group=group)
    if out.dtype != x.dtype:
        out = out.view(x.dtype).reshape((out.shape[0],) + rows)
    return out


class _AllToAll(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, out_splits, in_splits, group):
        ctx.splits, ctx.group = (out_splits, in_splits), group
        return _raw_a2a(x, out_splits, in_splits, group)

    @staticmethod
    def backward(ctx, grad):
        out_splits, in_splits = ctx.splits
        return _raw_a2a(grad, in_splits, out_splits, ctx.group), None, None, None


def all_to_all(x: torch.Tensor, out_splits, in_splits, group=None) -> torch.Tensor:
    """Uneven row exchange (splits are host lists of ints); differentiable."""
    return _AllToAll.apply(x, list(out_splits), list(in_splits), group)


def _raw_gather(x, sizes, group):
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    if x.shape[0] != sizes[rank]:
        raise ValueError(f"this rank has {x.shape[0]} rows but sizes[{rank}] = {sizes[rank]}")
    # every rank sends its whole block to every rank: an all-gather with uneven sizes
    src = x.contiguous().expand((world,) + tuple(x.shape)).reshape((world * x.shape[0],) + tuple(x.shape[1:]))
    return _raw_a2a(src, sizes, [x.shape[0]] * world, group)


def _raw_reduce_scatter(x, sizes, group):
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    parts = _raw_a2a(x, [sizes[rank]] * world, sizes, group)
    parts = parts.view((world, sizes[rank]) + tuple(x.shape[1:]))
    acc = parts[0].to(torch.float32)
    for p in parts[1:]:  # fixed rank order: deterministic, accumulated in fp32, rounded once
        acc = acc + p.to(torch.float32)
    return acc.to(x.dtype)


class _AllGather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, sizes, group):
        ctx.sizes, ctx.group = sizes, group
        return _raw_gather(x, sizes, group)

    @staticmethod
    def backward(ctx, grad):
        return _raw_reduce_scatter(grad, ctx.sizes, ctx.group), None, None


class _ReduceScatter(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, sizes, group):
        ctx.sizes, ctx.group = sizes, group
        return _raw_reduce_scatter(x, sizes, group)

    @staticmethod
    def backward(ctx, grad):
        return _raw_gather(grad, ctx.sizes, ctx.group), None, None


def all_gather(x: torch.Tensor, sizes, group=None) -> torch.Tensor:
    """Concatenate every rank's rows in rank order (``sizes[r]`` rows from rank r, uneven allowed); differentiable
    (backward: reduce-scatter of the gradient)."""
    return _AllGather.apply(x, [int(s) for s in sizes], group)


def reduce_scatter(x: torch.Tensor, sizes, group=None) -> torch.Tensor:
    """Sum x over the ranks and keep this rank's ``sizes[rank]`` rows (uneven allowed, fp32 accumulation in rank
    order); differentiable (backward: all-gather of the gradient)."""
    return _ReduceScatter.apply(x, [int(s) for s in sizes], group)


def host_ints(t: torch.Tensor) -> list:
    """THE host synchronisation of a dispatch: the split sizes (and window bounds) are needed on the host to
    size the exchange; everything else stays on the device. One ``.tolist()`` per dispatch."""
    return t.to("cpu").tolist()


def exchange_counts(counts: torch.Tensor, group=None) -> torch.Tensor:
    """Equal-split all_to_all_single of the per-expert counts [E] (int64): returns [E] where entry r*L + l is the
    number of rows rank r sends to this rank's expert l (vllm-ascend's ``gather_sizes``)."""
    world = dist.get_world_size(group)
    counts = counts.to(torch.int64).contiguous()
    out = torch.empty_like(counts)
    dist.all_to_all_single(out, counts, [counts.shape[0] // world] * world, [counts.shape[0] // world] * world,
                           group=group)
    return out


def gather_rows_meta(meta: torch.Tensor, group=None) -> torch.Tensor:
    """Equal-size all-gather of a small int64 vector per rank -> [R, n] (through all_to_all_single)."""
    world = dist.get_world_size(group)
    meta = meta.to(torch.int64).reshape(1, -1)
    return _raw_gather(meta, [1] * world, group)

