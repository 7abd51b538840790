"""numpy reference of aclnnMoeInitRoutingQuantV2 (torch_npu.npu_moe_init_routing_quant), written from its
documentation and the kernels' rounding: the MoeInitRoutingV2 routing (spec/semantics.md section 6, V2) with the
gathered rows quantised to int8.

    quant_mode 0 (static): int8(rint(fp16(x) * fp16(scale[0]) + fp16(offset[0])))   (fp16 arithmetic)
    quant_mode 1 (dynamic): xs = x * smooth (scale [1, H] or [expert_num, H] by expert, or none) in fp32,
                            s = max|xs| / 127, q = round(xs / s) with ties AWAY from zero (the kernel truncates to
                            fp16 and casts with CAST_ROUND); s is the 5th output
Empty drop/pad slots are zero (scale 0); an all-zero row gives s = 0, q = 0.
Returns (expanded_x, expanded_row_idx, expert_tokens_count_or_cumsum or None, expert_tokens_before_capacity or None,
expanded_scale or None).
"""
import numpy as np

from .init_routing_quant import dynamic_quant, static_quant_f16
from .init_routing_v2 import moe_init_routing_v2 as _route_v2


def moe_init_routing_quant_v2(x, expert_idx, *, scale=None, offset=None, active_num=1024, expert_capacity=0,
                              expert_num=256, drop_pad_mode=0, expert_tokens_num_mode=0,
                              expert_tokens_before_capacity_flag=False, quant_mode=1):
    x = np.asarray(x)
    expert_idx = np.asarray(expert_idx)
    if quant_mode not in (0, 1):
        raise ValueError("quant_mode must be 0 or 1")
    N, K = expert_idx.shape if expert_idx.ndim == 2 else (0, 0)
    E, C = int(expert_num), int(expert_capacity)
    smooth = None if scale is None else np.asarray(scale, np.float32)
    if quant_mode == 0:
        if smooth is None or offset is None or smooth.shape != (1,) or np.asarray(offset).shape != (1,):
            raise ValueError("static quantisation needs scale [1] and offset [1]")
    elif smooth is not None:
        if smooth.ndim != 2 or smooth.shape[0] not in (1, E) or smooth.shape[1] != x.shape[1]:
            raise ValueError("dynamic smooth scale must be [1 or expert_num, H]")
        if smooth.shape[0] != 1 and expert_idx.size and expert_idx.max() >= E:
            raise IndexError("expert ids index the smooth scale")
    gathered, row_idx, counts, before = _route_v2(
        x, expert_idx, active_num=active_num, expert_capacity=C, expert_num=E, drop_pad_mode=drop_pad_mode,
        expert_tokens_count_or_cumsum_flag=expert_tokens_num_mode,
        expert_tokens_before_capacity_flag=expert_tokens_before_capacity_flag)
    H = x.shape[1]
    rows = gathered.reshape(-1, H)
    # the expert of every output row: the sorted ids (dropless), or e for the slots of expert e (drop/pad); empty
    # drop/pad slots stay int8 zero (the kernel zero-fills them and quantises only the kept rows)
    if drop_pad_mode == 1:
        row_expert = np.repeat(np.arange(E), C)
        filled = np.zeros(E * C, bool)
        filled[row_idx[row_idx >= 0]] = True
    else:
        row_expert = np.sort(expert_idx.reshape(-1).astype(np.int64), kind="stable")[:rows.shape[0]]
        filled = np.ones(rows.shape[0], bool)
    if quant_mode == 0:
        q = static_quant_f16(rows, smooth[0], np.asarray(offset, np.float32)[0])
        q[~filled] = 0
        return q.reshape(gathered.shape), row_idx, counts, before, None
    xs = rows.astype(np.float32)
    if smooth is not None:
        xs = xs * (smooth[0] if smooth.shape[0] == 1 else smooth[row_expert])
    q, s = dynamic_quant(xs, ties="away")
    s = np.where(filled, s, np.float32(0)).astype(np.float32)
    q[~filled] = 0
    return q.reshape(gathered.shape), row_idx, counts, before, s
