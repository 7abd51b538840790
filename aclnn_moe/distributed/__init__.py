"""Expert parallelism across processes on ``torch.distributed`` (optional: needs torch; ``import aclnn_moe``
never imports this package).

Two dispatcher/combiner pairs over a process group (gloo for CPU tensors, HCCL for NPU tensors):

* ``AllToAllDispatcher``: init_routing_v2 -> counts all_to_all first -> split sizes (the one host sync) -> tokens
  (and int8 scales) all_to_all_single -> moe_re_routing -> experts -> undo -> reverse all_to_all ->
  moe_finalize_routing;
* ``AllGatherDispatcher``: all-gather tokens / ids / weights -> this rank's window from the global histogram ->
  moe_token_permute_with_ep -> experts -> moe_token_unpermute_with_ep -> reduce-scatter.

Both are ``layer(hidden, topk_ids, topk_weights, experts) -> [T, H]`` (or ``dispatch`` / ``combine``), where
``experts(tokens [A, H], tokens_per_expert [L]) -> [A, H]`` computes this rank's L = E / R experts on their
contiguous expert-major segments. Gradients flow through the collectives (split-swapped exchanges) and through
the operators' autograd (``aclnn_moe.torch``).
"""
from __future__ import annotations

try:
    import torch  # noqa: F401
    import torch.distributed  # noqa: F401
except ImportError as e:  # pragma: no cover
    raise ImportError("aclnn_moe.distributed needs torch (pip install torch)") from e

from ._collectives import all_gather, all_to_all, exchange_counts, host_ints, reduce_scatter
from ._dispatch import (A2AHandle, AGHandle, AllGatherDispatcher, AllToAllDispatcher, Dispatched,
                        quantize_rows)
from .launch import RankError, spawn, threads_per_rank

__all__ = ["AllToAllDispatcher", "AllGatherDispatcher", "Dispatched", "A2AHandle", "AGHandle", "all_to_all",
           "all_gather", "reduce_scatter", "exchange_counts", "host_ints", "quantize_rows", "spawn", "RankError",
           "threads_per_rank"]
