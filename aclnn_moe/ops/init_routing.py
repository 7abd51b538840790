"""MoeInitRouting (V1): sort the (token, slot) pairs by expert id (stable: ties keep token order, then slot) and
gather the token rows in that order (``torch_npu.npu_moe_init_routing``)."""
from __future__ import annotations

import numpy as np

from .._spec import FLOATS, INT32, Attr, OpSpec, Output, Tensor


def standard_row_idx(n: int, k: int) -> np.ndarray:
    """The usual row_idx: ``row_idx[i, k] = k*N + i`` (what MoeGatingTopKSoftmax produces)."""
    return np.arange(n * k, dtype=np.int32).reshape(k, n).T.copy()


def _examples(rng):
    from .._dtypes import bfloat16

    out = []
    for (n, k, h, e, dt, active) in ((3, 2, 4, 3, np.float32, 3), (430, 4, 200, 100, np.float16, 430),
                                     (520, 9, 256, 256, bfloat16, 100), (64, 8, 7168, 256, np.float16, 64),
                                     (0, 2, 8, 4, np.float32, 0)):
        out.append(dict(x=rng.standard_normal((n, h)).astype(dt), row_idx=standard_row_idx(n, k),
                        expert_idx=rng.integers(0, e, (n, k)).astype(np.int32), active_num=active))
    return out


def _nk(a):
    return a.expert_idx.shape[0] * a.expert_idx.shape[1]


SPEC = OpSpec(
    operator="MoeInitRouting", api="aclnnMoeInitRouting", function="moe_init_routing",
    torch_npu=('npu_moe_init_routing(Tensor x, Tensor row_idx, Tensor expert_idx, '
               'int active_num) -> (Tensor, Tensor, Tensor)',),
    params=(Tensor("x", "x", dtypes=FLOATS, ndim=2),
            Tensor("row_idx", "rowIdx", dtypes=INT32, ndim=2),
            Tensor("expert_idx", "expertIdx", dtypes=INT32, ndim=2),
            Attr("active_num", "activeNum")),
    outputs=(Output("expanded_x", "expandedXOut",
                    shape=lambda a: (max(min(a.x.shape[0], a.active_num), 0) * a.expert_idx.shape[1], a.x.shape[1]),
                    dtype=lambda a: a.x.dtype),
             Output("expanded_row_idx", "expandedRowIdxOut", shape=lambda a: (_nk(a),), dtype="int32"),
             Output("expanded_expert_idx", "expandedExpertIdxOut", shape=lambda a: (_nk(a),), dtype="int32")),
    examples=_examples,
    doc="""``torch_npu.npu_moe_init_routing``.

    x [N, H] fp16/bf16/fp32; row_idx [N, K] int32, a permutation of [0, N*K) (usually ``row_idx[i, k] = k*N + i``);
    expert_idx [N, K] int32 (ids in (-2^24, 2^24]); active_num >= 0.
    Returns ``(expanded_x [min(N, active_num)*K, H], expanded_row_idx [N*K] int32, expanded_expert_idx [N*K] int32)``:
    expanded_expert_idx is the stably sorted flattened expert_idx, ``expanded_row_idx[row_idx_flat[order[j]]] = j``
    and ``expanded_x[j] = x[row_idx_flat[order[j]] % N]``. active_num < 0 and shape mismatches are reported by
    the operator.""")
