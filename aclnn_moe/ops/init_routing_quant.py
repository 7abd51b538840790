"""MoeInitRoutingQuant: MoeInitRouting (V1 index layout) with the gathered rows quantised to int8 with a static
scale and offset (``aclnnMoeInitRoutingQuant``; no torch_npu function calls it)."""
from __future__ import annotations

import numpy as np

from .._spec import FLOATS, INT32, Attr, OpSpec, Output, Tensor
from .init_routing import standard_row_idx


def _examples(rng):
    from .._dtypes import bfloat16

    out = []
    for n, k, h, e, dt, active, scale, offset in ((3, 2, 4, 3, np.float32, 3, 1.0, 1.0),
                                                  (64, 4, 96, 16, np.float16, 40, 31.7, -2.5),
                                                  (48, 3, 64, 8, bfloat16, 100, 55.0, 0.3),
                                                  (0, 2, 8, 4, np.float32, 0, 2.0, 0.0)):
        out.append(dict(x=rng.standard_normal((n, h)).astype(dt), row_idx=standard_row_idx(n, k),
                        expert_idx=rng.integers(0, e, (n, k)).astype(np.int32), active_num=active, scale=scale,
                        offset=offset))
    return out


def _nk(a):
    return a.expert_idx.shape[0] * a.expert_idx.shape[1]


SPEC = OpSpec(
    operator="MoeInitRoutingQuant", api="aclnnMoeInitRoutingQuant", function="moe_init_routing_quant",
    params=(Tensor("x", "x", dtypes=FLOATS, ndim=2),
            Tensor("row_idx", "rowIdx", dtypes=INT32, ndim=2),
            Tensor("expert_idx", "expertIdx", dtypes=INT32, ndim=2),
            Attr("active_num", "activeNum"),
            Attr("scale", "scale", kind="float"),
            Attr("offset", "offset", kind="float")),
    outputs=(Output("expanded_x", "expandedXOut",
                    shape=lambda a: (max(min(a.x.shape[0], a.active_num), 0) * a.expert_idx.shape[1], a.x.shape[1]),
                    dtype="int8"),
             Output("expanded_row_idx", "expandedRowIdxOut", shape=lambda a: (_nk(a),), dtype="int32"),
             Output("expanded_expert_idx", "expandedExpertIdxOut", shape=lambda a: (_nk(a),), dtype="int32")),
    examples=_examples,
    doc="""``aclnnMoeInitRoutingQuant``.

    x [N, H] fp16/bf16/fp32; row_idx [N, K] int32, a permutation of [0, N*K) (usually ``row_idx[i, k] = k*N + i``);
    expert_idx [N, K] int32; active_num >= 0; scale, offset: the static quantisation parameters.
    As ``moe_init_routing``: ``expanded_row_idx[row_idx_flat[order[j]]] = j``, expanded_expert_idx the stably sorted
    ids; ``expanded_x[j] = int8(rint(fp16(x[row_idx_flat[order[j]] % N]) * fp16(scale) + fp16(offset)))`` in fp16
    arithmetic, saturating, for j < min(N, active_num) * K.
    Returns ``(expanded_x int8, expanded_row_idx int32 [N*K], expanded_expert_idx int32 [N*K])``.""")
