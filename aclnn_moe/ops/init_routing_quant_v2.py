"""MoeInitRoutingQuantV2: MoeInitRoutingV2 (dropless or drop/pad, per-expert counts) with the gathered rows
quantised to int8, statically or dynamically per row (``aclnnMoeInitRoutingQuantV2``, which
``torch_npu.npu_moe_init_routing_quant`` runs)."""
from __future__ import annotations

import numpy as np

from .._spec import FLOAT32, FLOATS, INT32, KW, Attr, OpSpec, Output, Tensor


def _rows(a):
    total = a.expert_idx.shape[0] * a.expert_idx.shape[1]
    if a.drop_pad_mode == 1:
        return max(a.expert_num, 0) * max(a.expert_capacity, 0)
    return total if a.active_num <= 0 else min(a.active_num, total)


def _expanded_x_shape(a):
    if a.drop_pad_mode == 1:
        return (a.expert_num, a.expert_capacity, a.x.shape[1])
    return (_rows(a), a.x.shape[1])


def _examples(rng):
    from .._dtypes import bfloat16

    cases = ((3, 2, 4, 3, np.float32, dict(active_num=0, expert_capacity=2, drop_pad_mode=1,
                                            expert_tokens_before_capacity_flag=True, quant_mode=0)),
             (64, 8, 128, 16, np.float16, dict(active_num=0, expert_tokens_num_mode=2, quant_mode=1, smooth=1)),
             (40, 4, 96, 8, bfloat16, dict(active_num=100, expert_tokens_num_mode=1, quant_mode=1, smooth=8)),
             (32, 2, 64, 4, np.float32, dict(expert_capacity=12, drop_pad_mode=1, quant_mode=1)),
             (16, 3, 40, 6, np.float16, dict(active_num=30, expert_tokens_num_mode=1, quant_mode=0)),
             (0, 2, 8, 4, np.float32, dict(active_num=0, expert_tokens_num_mode=2)))
    out = []
    for n, k, h, e, dt, kw in cases:
        kw = dict(kw)
        if kw.get("quant_mode") == 0:
            kw.update(scale=np.array([0.3452], np.float32), offset=np.array([1.8369], np.float32))
        if "smooth" in kw:
            kw["scale"] = rng.uniform(0.5, 2.0, (kw.pop("smooth"), h)).astype(np.float32)
        out.append(dict(x=rng.standard_normal((n, h)).astype(dt), expert_idx=rng.integers(0, e, (n, k)).astype(np.int32),
                        expert_num=e, **kw))
    return out


SPEC = OpSpec(
    operator="MoeInitRoutingQuantV2", api="aclnnMoeInitRoutingQuantV2", function="moe_init_routing_quant_v2",
    torch_npu=('npu_moe_init_routing_quant(Tensor x, Tensor expert_idx, *, Tensor? scale=None, '
               'Tensor? offset=None, int active_num=1024, int expert_capacity=0, int expert_num=256, '
               'int drop_pad_mode=0, int expert_tokens_num_mode=0, '
               'bool expert_tokens_before_capacity_flag=False, int quant_mode=1) -> (Tensor, Tensor, '
               'Tensor, Tensor, Tensor)',),
    params=(Tensor("x", "x", dtypes=FLOATS, ndim=2),
            Tensor("expert_idx", "expertIdx", dtypes=INT32, ndim=2),
            KW,
            Tensor("scale", "scaleOptional", dtypes=FLOAT32, optional=True, default=None),
            Tensor("offset", "offsetOptional", dtypes=FLOAT32, optional=True, default=None),
            Attr("active_num", "activeNum", default=1024),
            Attr("expert_capacity", "expertCapacity", default=0),
            Attr("expert_num", "expertNum", default=256),
            Attr("drop_pad_mode", "dropPadMode", default=0),
            Attr("expert_tokens_num_mode", "expertTokensCountOrCumsumFlag", default=0),
            Attr("expert_tokens_before_capacity_flag", "expertTokensBeforeCapacityFlag", kind="bool", default=False),
            Attr("quant_mode", "quantMode", default=1)),
    outputs=(Output("expanded_x", "expandedXOut", shape=_expanded_x_shape, dtype="int8"),
             Output("expanded_row_idx", "expandedRowIdxOut",
                    shape=lambda a: (a.expert_idx.shape[0] * a.expert_idx.shape[1],), dtype="int32"),
             Output("expert_token_cumsum_or_count", "expertTokensCountOrCumsumOutOptional",
                    shape=lambda a: (a.expert_num,), dtype="int32",
                    when=lambda a: a.drop_pad_mode != 1 and a.expert_tokens_num_mode > 0),
             Output("expert_tokens_before_capacity", "expertTokensBeforeCapacityOutOptional",
                    shape=lambda a: (a.expert_num,), dtype="int32",
                    when=lambda a: a.drop_pad_mode == 1 and a.expert_tokens_before_capacity_flag),
             Output("expanded_scale", "dynamicQuantScaleOutOptional", shape=lambda a: (_rows(a),), dtype="float32",
                    when=lambda a: a.quant_mode == 1)),
    examples=_examples,
    doc="""``aclnnMoeInitRoutingQuantV2`` with the signature and defaults of ``torch_npu.npu_moe_init_routing_quant``.

    x [N, H] fp16/bf16/fp32; expert_idx [N, K] int32 (ids in [0, expert_num) whenever expert_num bounds them).
    Routing as ``moe_init_routing_v2``: dropless expanded_x [rows, H] (rows = N*K if active_num <= 0 else
    min(active_num, N*K)), ``expanded_row_idx[order[j]] = j``; drop/pad [expert_num, expert_capacity, H] with -1 for
    dropped pairs and zero slots. expert_token_cumsum_or_count int32 [expert_num] (dropless, expert_tokens_num_mode
    1 cumsum / 2 count, else None); expert_tokens_before_capacity int32 [expert_num] (drop/pad with the flag, else
    None).
    quant_mode 0 (scale [1], offset [1]): ``int8(rint(fp16(x) * fp16(scale) + fp16(offset)))`` in fp16 arithmetic;
    1 (optional smooth scale [1 or expert_num, H]): s = max|x*smooth| / 127 per row (expanded_scale fp32 [rows]),
    ``int8(round(x*smooth / s))`` with ties away from zero, as the NPU kernel; expanded_scale None for quant_mode 0.
    Returns ``(expanded_x, expanded_row_idx, expert_token_cumsum_or_count, expert_tokens_before_capacity,
    expanded_scale)``.""")
