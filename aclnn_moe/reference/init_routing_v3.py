"""numpy reference of aclnnMoeInitRoutingV3 (torch_npu.npu_moe_init_routing_v2), written from its documentation and
golden (spec/semantics.md section 6, V3) and the kernels' numerics.

    fe = expert_idx.reshape(-1)                p = i*K + k
    in range: start <= fe < end                ([start, end) = active_expert_range, default [0, expert_num))
    order = stable argsort with the in-range ids first (ascending), ties -> lower p;  avail = #in range
    expanded_row_idx: row_idx_type 0: [order[j]] = j for j < avail, -1 elsewhere;
                      row_idx_type 1: [j] = order[j] for j < avail, -1 after (unwritten on the NPU)
    dropless: rows = N*K if active_num in (-1, 0) else min(active_num, N*K); expanded_x[j] = q(x[order[j] // K]) for
              j < min(rows, avail), zero rows after (unwritten on the NPU)
    drop/pad: the first expert_capacity pairs of expert e (sorted order) fill slots e*C + pos, -1 for the others,
              empty slots zero
    counts (int64, when expert_tokens_num_flag): type 0 inclusive cumsum over the range, 1 counts, 2 [expert_num, 2]
              (id, count) rows for the experts with tokens, then zero rows
    quant_mode -1: expanded_scale[j] = scale[token] when scale [N] is given (0 for empty rows)
    quant_mode 0: int8(rint(x * scale[0] + offset[0])) in fp32 (the V3 kernel; its UT golden computes in fp16)
    quant_mode 1: xs = x * smooth (scale [1, H] or [end - start, H] by expert - start), s = max|xs| / 127,
              q = rint(xs / s) (ties to even), expanded_scale = s (0 for empty rows)
Returns (expanded_x, expanded_row_idx, expert_tokens_count_or_cumsum or None, expanded_scale or None).
"""
import numpy as np

from .init_routing_quant import dynamic_quant, saturate_i8


def moe_init_routing_v3(x, expert_idx, *, scale=None, offset=None, active_num=-1, expert_capacity=-1, expert_num=-1,
                        drop_pad_mode=0, expert_tokens_num_type=0, expert_tokens_num_flag=False, quant_mode=-1,
                        active_expert_range=(), row_idx_type=0, x_dtype=None):
    x = np.asarray(x)
    expert_idx = np.asarray(expert_idx)
    if x.ndim != 2 or expert_idx.ndim != 2 or x.shape[0] != expert_idx.shape[0]:
        raise ValueError("x [N, H] and expert_idx [N, K] expected")
    E = int(expert_num)
    if E <= 0 or drop_pad_mode not in (0, 1) or expert_tokens_num_type not in (0, 1, 2) or quant_mode not in (-1, 0, 1):
        raise ValueError("invalid attribute")
    start, end = (0, E) if not active_expert_range else (int(active_expert_range[0]), int(active_expert_range[1]))
    if not 0 <= start < end <= E:
        raise ValueError("active_expert_range must satisfy 0 <= start < end <= expert_num")
    N, K = expert_idx.shape
    H = x.shape[1]
    total = N * K
    C = int(expert_capacity)
    if drop_pad_mode == 1 and (not 0 < C <= N or (start, end) != (0, E) or row_idx_type != 0):
        raise ValueError("drop/pad needs 0 < expert_capacity <= N, the full range and row_idx_type 0")
    fe = expert_idx.reshape(-1).astype(np.int64)
    if fe.size and (fe.min() < 0 or fe.max() >= E):
        raise IndexError("expert ids must lie in [0, expert_num)")
    inr = (fe >= start) & (fe < end)
    avail = int(inr.sum())
    order = np.argsort(np.where(inr, fe, np.iinfo(np.int64).max), kind="stable")
    count = np.bincount(fe[inr] - start, minlength=end - start).astype(np.int64)

    row_idx = np.full(total, -1, np.int32)
    if drop_pad_mode == 1:
        sorted_e = fe[order]
        seg = np.concatenate([[0], np.cumsum(count)[:-1]])
        pos = np.arange(total) - seg[sorted_e]
        keep = pos < C
        slots = sorted_e[keep] * C + pos[keep]
        row_idx[order[keep]] = slots
        nrows = E * C
        src = np.full(nrows, -1, np.int64)
        src[slots] = order[keep]
    else:
        if row_idx_type == 1:
            row_idx[:avail] = order[:avail]
        else:
            row_idx[order[:avail]] = np.arange(avail)
        nrows = total if active_num in (-1, 0) else min(int(active_num), total)
        src = np.full(nrows, -1, np.int64)
        m = min(nrows, avail)
        src[:m] = order[:m]
    filled = src >= 0
    tok = np.where(filled, src // max(K, 1), 0)
    row_expert = np.where(filled, fe[np.where(filled, src, 0)] if fe.size else 0, 0)

    counts = None
    if expert_tokens_num_flag:
        if expert_tokens_num_type == 2:
            counts = np.zeros((E, 2), np.int64)
            ids = np.nonzero(count)[0]
            counts[:ids.size, 0] = ids + start
            counts[:ids.size, 1] = count[ids]
        else:
            counts = np.cumsum(count) if expert_tokens_num_type == 0 else count
            counts = counts.astype(np.int64)

    rows = x[tok] if x.shape[0] else np.zeros((nrows, H), x.dtype)
    expanded_scale = None
    if quant_mode == -1:
        out_dtype = x.dtype
        ex = np.where(filled[:, None], rows, np.zeros((), x.dtype)).astype(out_dtype)
        if scale is not None:
            sc = np.asarray(scale, np.float32)
            expanded_scale = np.where(filled, sc[tok] if sc.size else 0, 0).astype(np.float32)
    elif quant_mode == 0:
        sc = np.float32(np.asarray(scale, np.float32)[0])
        off = np.float32(np.asarray(offset, np.float32)[0])
        v = (rows.astype(np.float32) * sc).astype(np.float32) + off
        ex = saturate_i8(np.rint(v))
        ex[~filled] = 0
    else:
        xs = rows.astype(np.float32)
        if scale is not None:
            sm = np.asarray(scale, np.float32)
            xs = xs * (sm[0] if sm.shape[0] == 1 else sm[np.where(filled, row_expert - start, 0)])
        ex, s = dynamic_quant(xs, ties="even")
        ex[~filled] = 0
        expanded_scale = np.where(filled, s, 0).astype(np.float32)
    if drop_pad_mode == 1:
        ex = ex.reshape(E, C, H)
    return ex, row_idx, counts, expanded_scale
