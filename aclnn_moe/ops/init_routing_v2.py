"""MoeInitRoutingV2: sort the (token, slot) pairs by expert id (stable) and gather the token rows in that order,
dropless or with a per-expert capacity (drop/pad), plus per-expert token counts (``aclnnMoeInitRoutingV2``)."""
from __future__ import annotations

import numpy as np

from .._spec import FLOATS, INT32, KW, Attr, OpSpec, Output, Tensor


def _expanded_x_shape(a):
    n, h = a.x.shape
    total = a.expert_idx.shape[0] * a.expert_idx.shape[1]
    if a.drop_pad_mode == 1:
        return (a.expert_num, a.expert_capacity, h)
    return (total if a.active_num == 0 else min(a.active_num, total), h)


def _examples(rng):
    from .._dtypes import bfloat16

    cases = ((3, 2, 4, 3, np.float32, dict(expert_capacity=2, drop_pad_mode=1, expert_tokens_before_capacity_flag=True)),
             (3, 2, 4, 3, np.float32, dict(active_num=4, expert_tokens_count_or_cumsum_flag=1)),
             (256, 8, 512, 64, np.float16, dict(expert_tokens_count_or_cumsum_flag=2)),
             (128, 6, 1024, 16, bfloat16, dict(active_num=300)),
             (96, 4, 64, 8, bfloat16, dict(expert_capacity=20, drop_pad_mode=1, expert_tokens_before_capacity_flag=True)),
             (0, 2, 8, 4, np.float32, dict(expert_tokens_count_or_cumsum_flag=1)))
    return [dict(x=rng.standard_normal((n, h)).astype(dt), expert_idx=rng.integers(0, e, (n, k)).astype(np.int32),
                 expert_num=e, **kw) for n, k, h, e, dt, kw in cases]


SPEC = OpSpec(
    operator="MoeInitRoutingV2", api="aclnnMoeInitRoutingV2", function="moe_init_routing_v2",
    params=(Tensor("x", "x", dtypes=FLOATS, ndim=2),
            Tensor("expert_idx", "expertIdx", dtypes=INT32, ndim=2),
            KW,
            Attr("active_num", "activeNumOptional", default=0),
            Attr("expert_capacity", "expertCapacityOptional", default=0),
            Attr("expert_num", "expertNumOptional", default=0),
            Attr("drop_pad_mode", "dropPadModeOptional", default=0),
            Attr("expert_tokens_count_or_cumsum_flag", "expertTokensCountOrCumsumFlagOptional", default=0),
            Attr("expert_tokens_before_capacity_flag", "expertTokensBeforeCapacityFlagOptional", kind="bool",
                 default=False)),
    outputs=(Output("expanded_x", "expandedXOut", shape=_expanded_x_shape, dtype=lambda a: a.x.dtype),
             Output("expanded_row_idx", "expandedRowIdxOut",
                    shape=lambda a: (a.expert_idx.shape[0] * a.expert_idx.shape[1],), dtype="int32"),
             Output("expert_tokens_count_or_cumsum", "expertTokensCountOrCumsumOutOptional",
                    shape=lambda a: (a.expert_num,), dtype="int32",
                    when=lambda a: a.drop_pad_mode != 1 and a.expert_tokens_count_or_cumsum_flag != 0),
             Output("expert_tokens_before_capacity", "expertTokensBeforeCapacityOutOptional",
                    shape=lambda a: (a.expert_num,), dtype="int32",
                    when=lambda a: a.drop_pad_mode == 1 and a.expert_tokens_before_capacity_flag)),
    examples=_examples,
    doc="""``aclnnMoeInitRoutingV2``.

    x [N, H] fp16/bf16/fp32; expert_idx [N, K] int32.
    Dropless (drop_pad_mode 0): expanded_x [rows, H] with rows = N*K if active_num == 0 else min(active_num, N*K),
    ``expanded_x[j] = x[order[j] // K]``; expanded_row_idx int32 [N*K] with ``expanded_row_idx[order[j]] = j``
    (row-major, the sorted_indices of token permute); expert_tokens_count_or_cumsum int32 [expert_num] when the
    flag is 1 (inclusive cumsum) or 2 (count), else None.
    Drop/pad (drop_pad_mode 1): expanded_x [expert_num, expert_capacity, H], the first expert_capacity pairs of
    each expert in sorted order (empty slots zero), expanded_row_idx = e*C + pos or -1 for dropped pairs;
    expert_tokens_before_capacity int32 [expert_num] (the histogram) when the flag is set, else None.
    Expert ids must be in [0, expert_num) whenever counts are output or drop/pad is used, and never negative.
    Attribute rules (negative values, modes, capacity > N, ...) are reported by the operator (status 561103,
    as CANN's hand-written op_api does).
    Returns ``(expanded_x, expanded_row_idx, expert_tokens_count_or_cumsum, expert_tokens_before_capacity)``.""")
