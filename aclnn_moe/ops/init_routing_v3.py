"""MoeInitRoutingV3: sort the (token, slot) pairs by expert id (stable), keep those whose expert lies in the active
range, and gather the token rows in that order, dropless or with a per-expert capacity, optionally quantised to int8
(static or dynamic per row), with per-expert token counts (``aclnnMoeInitRoutingV3``, which
``torch_npu.npu_moe_init_routing_v2`` runs)."""
from __future__ import annotations

import numpy as np

from .._errors import ArgumentError
from .._spec import FLOAT32, FLOATS, INT32, KW, Attr, IntList, OpSpec, Output, Tensor


def _range(a):
    return tuple(a.active_expert_range) if a.active_expert_range else (0, a.expert_num)


def _rows(a):
    total = a.expert_idx.shape[0] * a.expert_idx.shape[1]
    if a.drop_pad_mode == 1:
        return max(a.expert_num, 0) * max(a.expert_capacity, 0)
    return total if a.active_num <= 0 else min(a.active_num, total)


def _expanded_x_shape(a):
    if a.drop_pad_mode == 1:
        return (a.expert_num, a.expert_capacity, a.x.shape[1])
    return (_rows(a), a.x.shape[1])


def _counts_shape(a):
    if not a.expert_tokens_num_flag:
        return (1,)  # a required C tensor the operator neither checks nor writes without the flag
    if a.expert_tokens_num_type == 2:
        return (a.expert_num, 2)
    start, end = _range(a)
    return (end - start,)


def _writes_scale(a):
    return a.quant_mode == 1 or (a.quant_mode == -1 and a.scale is not None)


def _prepare(a):
    if a.x_dtype is not None:
        raise ArgumentError("x_dtype", "only None is supported: the fp8/HiF8/INT4 output types of Ascend 950 are not "
                                       "implemented by this library")


def _examples(rng):
    from .._dtypes import bfloat16

    cases = ((16, 4, 64, 8, np.float32, dict(expert_tokens_num_flag=True, expert_tokens_num_type=1,
                                             active_expert_range=[2, 6])),
             (32, 8, 128, 16, np.float16, dict(expert_tokens_num_flag=True, expert_tokens_num_type=2, row_idx_type=1,
                                               quant_mode=1)),
             (24, 2, 96, 4, bfloat16, dict(expert_capacity=10, drop_pad_mode=1, expert_tokens_num_flag=True,
                                           expert_tokens_num_type=1)),
             (12, 3, 40, 6, np.float32, dict(quant_mode=0, active_num=20, expert_tokens_num_flag=True,
                                             expert_tokens_num_type=0)),
             (20, 2, 48, 5, np.float16, dict(quant_mode=-1, active_expert_range=[1, 4], smooth="n")),
             (18, 3, 32, 6, bfloat16, dict(quant_mode=1, active_expert_range=[2, 5], smooth="eh")),
             (0, 2, 8, 4, np.float32, dict(expert_tokens_num_flag=True, expert_tokens_num_type=1)))
    out = []
    for n, k, h, e, dt, kw in cases:
        kw = dict(kw)
        smooth = kw.pop("smooth", None)
        if kw.get("quant_mode") == 0:
            kw.update(scale=np.array([7.5], np.float32), offset=np.array([0.25], np.float32))
        if smooth == "n":
            kw["scale"] = rng.uniform(0.5, 2, n).astype(np.float32)
        if smooth == "eh":
            r = kw["active_expert_range"]
            kw["scale"] = rng.uniform(0.5, 2, (r[1] - r[0], h)).astype(np.float32)
        out.append(dict(x=rng.standard_normal((n, h)).astype(dt), expert_idx=rng.integers(0, e, (n, k)).astype(np.int32),
                        expert_num=e, **kw))
    return out


SPEC = OpSpec(
    operator="MoeInitRoutingV3", api="aclnnMoeInitRoutingV3", function="moe_init_routing_v3",
    torch_npu=('npu_moe_init_routing_v2(Tensor x, Tensor expert_idx, *, Tensor? scale=None, '
               'Tensor? offset=None, int active_num=-1, int expert_capacity=-1, int expert_num=-1, '
               'int drop_pad_mode=0, int expert_tokens_num_type=0, bool expert_tokens_num_flag=False, '
               'int quant_mode=-1, int[2] active_expert_range=[], int row_idx_type=0, '
               'int? x_dtype=None) -> (Tensor, Tensor, Tensor, Tensor)',),
    params=(Tensor("x", "x", dtypes=FLOATS + ("int8",), ndim=2),
            Tensor("expert_idx", "expertIdx", dtypes=INT32, ndim=2),
            KW,
            Tensor("scale", "scaleOptional", dtypes=FLOAT32, optional=True, default=None),
            Tensor("offset", "offsetOptional", dtypes=FLOAT32, optional=True, default=None),
            Attr("active_num", "activeNum", default=-1),
            Attr("expert_capacity", "expertCapacity", default=-1),
            Attr("expert_num", "expertNum", default=-1),
            Attr("drop_pad_mode", "dropPadMode", default=0),
            Attr("expert_tokens_num_type", "expertTokensNumType", default=0),
            Attr("expert_tokens_num_flag", "expertTokensNumFlag", kind="bool", default=False),
            Attr("quant_mode", "quantMode", default=-1),
            IntList("active_expert_range", "activeExpertRangeOptional", default=(), length=2),
            Attr("row_idx_type", "rowIdxType", default=0),
            Attr("x_dtype", None, default=None)),
    outputs=(Output("expanded_x", "expandedXOut", shape=_expanded_x_shape,
                    dtype=lambda a: "int8" if a.quant_mode in (0, 1) else a.x.dtype),
             Output("expanded_row_idx", "expandedRowIdxOut",
                    shape=lambda a: (a.expert_idx.shape[0] * a.expert_idx.shape[1],), dtype="int32"),
             Output("expert_token_cumsum_or_count", "expertTokensCountOrCumsumOut", shape=_counts_shape,
                    dtype="int64", returned=lambda a: a.expert_tokens_num_flag),
             Output("expanded_scale", "expandedScaleOut", shape=lambda a: (_rows(a),) if _writes_scale(a) else (1,),
                    dtype="float32", returned=_writes_scale)),
    prepare=_prepare,
    examples=_examples,
    doc="""``aclnnMoeInitRoutingV3`` with the signature of ``torch_npu.npu_moe_init_routing_v2``.

    x [N, H] fp16/bf16/fp32 (int8 unquantised); expert_idx [N, K] int32 with ids in [0, expert_num);
    active_expert_range [start, end) (empty: [0, expert_num)). Pairs whose expert is outside the range are dropped.
    Dropless (drop_pad_mode 0): expanded_x [rows, H], rows = N*K if active_num <= 0 else min(active_num, N*K), row j
    from token ``order[j] // K`` for j < the number of in-range pairs (zero after); expanded_row_idx int32 [N*K]:
    row_idx_type 0 ``[order[j]] = j`` (-1 for dropped pairs), 1 ``[j] = order[j]`` (-1 after the in-range pairs).
    Drop/pad (drop_pad_mode 1, full range, row_idx_type 0): expanded_x [expert_num, expert_capacity, H], the first
    expert_capacity pairs of each expert, empty slots zero, dropped pairs -1 in expanded_row_idx.
    expert_token_cumsum_or_count int64 when expert_tokens_num_flag: type 0 cumsum, 1 count ([end - start]), 2
    key_value [expert_num, 2] (id, count) rows for the experts with tokens; else None.
    quant_mode -1: x's dtype, expanded_scale = scale[token] (fp32 [rows]) when scale [N] is given, else None;
    0 (static, scale [1], offset [1]): int8(rint(x*scale + offset)) in fp32, expanded_scale None;
    1 (dynamic, optional smooth scale [1 or end - start, H]): s = max|x*smooth| / 127 per row, int8(rint(x*smooth /
    s)), expanded_scale = s. The fp8/MX/HiF8/INT4 quant modes of Ascend 950 are refused by the operator.
    Returns ``(expanded_x, expanded_row_idx, expert_token_cumsum_or_count, expanded_scale)``.""")
