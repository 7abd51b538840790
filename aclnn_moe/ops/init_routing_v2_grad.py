"""MoeInitRoutingV2Grad: the backward of MoeInitRoutingV2 / V3, summing each token's expanded gradient rows."""
from __future__ import annotations

import numpy as np

from .._spec import FLOATS, INT32, KW, Attr, OpSpec, Output, Tensor


def _examples(rng):
    from .._dtypes import bfloat16

    out = []
    for n, k, h, dt in ((2, 2, 2, np.float32), (64, 8, 256, bfloat16), (33, 3, 40, np.float16)):
        idx = rng.permutation(n * k).astype(np.int32)
        out.append(dict(grad_expanded_x=rng.standard_normal((n * k, h)).astype(dt), expanded_row_idx=idx, top_k=k))
        active = n * k // 2
        out.append(dict(grad_expanded_x=rng.standard_normal((active, h)).astype(dt), expanded_row_idx=idx, top_k=k,
                        active_num=active))
        e, c = 4, max(n * k // 8, 1)
        drop = np.full(n * k, -1, np.int32)
        drop[rng.permutation(n * k)[:e * c]] = rng.permutation(e * c)
        out.append(dict(grad_expanded_x=rng.standard_normal((e, c, h)).astype(dt), expanded_row_idx=drop, top_k=k,
                        drop_pad_mode=1))
    return out


SPEC = OpSpec(
    operator="MoeInitRoutingV2Grad", api="aclnnMoeInitRoutingV2Grad", function="moe_init_routing_v2_grad",
    params=(Tensor("grad_expanded_x", "gradExpandedX", dtypes=FLOATS, ndim=(2, 3)),
            Tensor("expanded_row_idx", "expandedRowIdx", dtypes=INT32, ndim=1),
            Attr("top_k", "topK"),
            KW,
            Attr("drop_pad_mode", "dropPadMode", default=0),
            Attr("active_num", "activeNum", default=0)),
    outputs=(Output("out", "out",
                    shape=lambda a: (a.expanded_row_idx.shape[0] // max(a.top_k, 1), a.grad_expanded_x.shape[-1]),
                    dtype=lambda a: a.grad_expanded_x.dtype),),
    examples=_examples,
    doc="""``aclnnMoeInitRoutingV2Grad``.

    grad_expanded_x fp16/bf16/fp32: [N*K, H] (dropless, drop_pad_mode 0 and active_num 0), [active_num, H]
    (active) or [E, C, H] (drop_pad_mode 1); expanded_row_idx int32 [N*K] as MoeInitRoutingV2 / V3 return it
    (row-major; -1 marks a dropped token in drop/pad); top_k = K > 0. Attribute and shape rules: status 561002.

    Returns ``grad_x [N, H]``: the sum over k of the rows expanded_row_idx[i*K + k] (rows >= active_num and -1 add
    nothing), added in fp32 as a binary tree like the NPU kernel, rounded to nearest-even.""")
