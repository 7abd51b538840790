"""MoeFinalizeRoutingV2Grad: the backward of MoeFinalizeRoutingV2 (row-major layouts): the gradients of the expanded
expert outputs and of the routing scales."""
from __future__ import annotations

import numpy as np

from .._spec import FLOATS, INT32, KW, Attr, OpSpec, Output, Tensor


def _gx_shape(a):
    h = a.grad_y.shape[1]
    if a.expanded_x is not None:
        return tuple(a.expanded_x.shape)
    n = a.expanded_row_idx.shape[0]
    if a.drop_pad_mode == 1:
        return (max(a.expert_num, 0), max(a.expert_capacity, 0), h)
    return (a.active_num if 0 < a.active_num < n else n, h)


def _examples(rng):
    from .._dtypes import bfloat16

    out = []
    for r, k, h, e, dt in ((2, 2, 2, 2, np.float32), (64, 8, 256, 16, bfloat16), (33, 3, 70, 5, np.float16)):
        gy = rng.standard_normal((r, h)).astype(dt)
        idx = rng.permutation(r * k).astype(np.int32)
        sc = rng.random((r, k)).astype(dt)
        ei = rng.integers(0, e, (r, k)).astype(np.int32)
        b = rng.standard_normal((e, h)).astype(dt)
        out.append(dict(grad_y=gy, expanded_row_idx=idx, expanded_x=rng.standard_normal((r * k, h)).astype(dt),
                        scales=sc, expert_idx=ei, bias=b))
        c = 3
        drop = np.full(r * k, -1, np.int32)
        kept = rng.permutation(r * k)[:min(e * c, r * k)]
        drop[kept] = rng.permutation(e * c)[:kept.size]
        out.append(dict(grad_y=gy, expanded_row_idx=drop, expanded_x=rng.standard_normal((e, c, h)).astype(dt),
                        scales=sc, drop_pad_mode=1, expert_num=e, expert_capacity=c))
        out.append(dict(grad_y=rng.standard_normal((r * k, h)).astype(dt), expanded_row_idx=idx))
    return out


SPEC = OpSpec(
    operator="MoeFinalizeRoutingV2Grad", api="aclnnMoeFinalizeRoutingV2Grad", function="moe_finalize_routing_v2_grad",
    params=(Tensor("grad_y", "gradY", dtypes=FLOATS, ndim=2),
            Tensor("expanded_row_idx", "expandedRowIdx", dtypes=INT32, ndim=1),
            KW,
            Tensor("expanded_x", "expandedXOptional", dtypes=FLOATS, ndim=(2, 3), optional=True, same_dtype="grad_y",
                   default=None),
            Tensor("scales", "scalesOptional", dtypes=FLOATS, ndim=2, optional=True, same_dtype="grad_y",
                   default=None),
            Tensor("expert_idx", "expertIdxOptional", dtypes=INT32, ndim=2, optional=True, default=None),
            Tensor("bias", "biasOptional", dtypes=FLOATS, ndim=2, optional=True, same_dtype="grad_y", default=None),
            Attr("drop_pad_mode", "dropPadMode", default=0),
            Attr("active_num", "activeNum", default=0),
            Attr("expert_num", "expertNum", default=0),
            Attr("expert_capacity", "expertCapacity", default=0)),
    outputs=(Output("grad_expanded_x", "gradExpandedXOut", shape=_gx_shape, dtype=lambda a: a.grad_y.dtype),
             # a required output; written only with scales
             Output("grad_scales", "gradScalesOut",
                    shape=lambda a: (a.grad_y.shape[0], a.scales.shape[1] if a.scales is not None else 1),
                    dtype=lambda a: a.grad_y.dtype, returned=lambda a: a.scales is not None)),
    examples=_examples,
    doc="""``aclnnMoeFinalizeRoutingV2Grad``: returns ``(grad_expanded_x, grad_scales)``.

    grad_y [R, H] fp16/bf16/fp32; expanded_row_idx int32 [R*K] (row-major p = i*K + k, as MoeInitRoutingV2 / V3
    return it; -1 = dropped in drop_pad_mode 1); expanded_x (required with scales, grad_y dtype) [R*K, H],
    [active_num, H] when 0 < active_num < R*K, or [expert_num, expert_capacity, H] (drop_pad_mode 1); scales [R, K]
    grad_y dtype (None: K = 1); expert_idx int32 [R, K] (required with bias); bias [E, H]; drop_pad_mode 0 or 1.
    Shape and attribute rules: status 561103.

    grad_expanded_x (expanded_x's shape): ``grad_y[p // K] * scales[p]`` at row expanded_row_idx[p], other rows 0;
    grad_scales [R, K] (None without scales): ``sum_j (expanded_x[row, j] + bias[expert_idx[p], j]) *
    grad_y[p // K, j]`` (the bias term only for a dropped p).""")
