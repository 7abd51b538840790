"""MoeGatingTopKSoftmax: the router of Qwen/Mixtral-style MoE layers, softmax of the logits and the top-k experts
by score, with the k-major row index MoeInitRouting (V1) expects (``torch_npu.npu_moe_gating_top_k_softmax``)."""
from __future__ import annotations

import numpy as np

from .._spec import FLOATS, Attr, OpSpec, Output, Tensor

MAX_K = 1024  # the tiling's limit on k


def separated_logits(rng, shape, dtype):
    """Logits whose softmax scores are pairwise apart by more than the rounding, so the ranking is unambiguous."""
    e = shape[-1]
    rows = int(np.prod(shape[:-1]))
    base = np.stack([rng.permutation(e) for _ in range(rows)]).astype(np.float64) if rows else np.zeros((0, e))
    return (base / max(e, 1) * 8.0 - 4.0).reshape(shape).astype(dtype)


def _examples(rng):
    from .._dtypes import bfloat16

    out = []
    for shape, k, dt, fin in (((16, 64), 8, np.float32, False), ((4, 7, 128), 6, bfloat16, True),
                              ((33, 8), 2, np.float16, True), ((3, 2, 1), 1, np.float32, False),
                              ((5, 2048), 1024, bfloat16, False)):
        finished = rng.random(shape[:-1]) < 0.3 if fin else None
        out.append(dict(x=separated_logits(rng, shape, dt), finished=finished, k=k))
    return out


SPEC = OpSpec(
    operator="MoeGatingTopKSoftmax", api="aclnnMoeGatingTopKSoftmax", function="moe_gating_top_k_softmax",
    torch_npu=('npu_moe_gating_top_k_softmax(Tensor x, Tensor? finished=None, int k=1) -> (Tensor, Tensor, '
               'Tensor)',),
    params=(Tensor("x", "x", dtypes=FLOATS, ndim=(2, 3)),
            Tensor("finished", "finishedOptional", dtypes=("bool",), ndim=(1, 2), optional=True, default=None),
            Attr("k", "k", default=1, lo=1, hi_from=lambda a: min(a.x.shape[-1], MAX_K),
                 why="the expert count of x, at most 1024")),
    outputs=(Output("y", "yOut", shape=lambda a: tuple(a.x.shape[:-1]) + (a.k,), dtype=lambda a: a.x.dtype),
             Output("expert_idx", "expertIdxOut", shape=lambda a: tuple(a.x.shape[:-1]) + (a.k,), dtype="int32"),
             Output("row_idx", "rowIdxOut", shape=lambda a: tuple(a.x.shape[:-1]) + (a.k,), dtype="int32")),
    examples=_examples,
    doc="""``torch_npu.npu_moe_gating_top_k_softmax``: returns ``(y, expert_idx, row_idx)``.

    x [N, E] or [B, S, E] fp16/bf16/fp32 (no zero dimension); finished (optional) bool of shape x.shape[:-1];
    1 <= k <= min(E, 1024). y [..., k]: the k largest softmax scores (fp32 softmax ``exp(x - max) * (1 / sum)``,
    ties to the lower expert), in x's dtype (fp16 nearest-even, bf16 nearest with ties away from zero, the
    kernel's CAST_ROUND); expert_idx [..., k] int32 (E for finished rows); row_idx [..., k] int32 with
    ``row_idx[r, j] = j*N + r`` over the flattened rows (the row_idx MoeInitRouting expects).""")
