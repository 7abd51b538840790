"""numpy reference of aclnnMoeInitRoutingV2, written from spec/semantics.md section 6 (V2).

    fe = expert_idx.reshape(-1)               p = i*K + k
    order = stable argsort of fe              ties -> lower p
dropless (drop_pad_mode 0):
    expanded_row_idx[order[j]] = j
    expanded_x[j] = x[order[j] // K] for j < rows, rows = N*K if active_num == 0 else min(active_num, N*K)
    expert_tokens_count_or_cumsum: histogram over [0, expert_num) (flag 2) or its inclusive cumsum (flag 1)
drop/pad (drop_pad_mode 1):
    the pos-th pair of expert e in sorted order is kept when pos < C: expanded_row_idx[p] = e*C + pos,
    expanded_x[e, pos] = x[p // K]; dropped pairs get -1; empty slots are zero;
    expert_tokens_before_capacity = histogram (when the flag is set).
Returns (expanded_x, expanded_row_idx, expert_tokens_count_or_cumsum or None, expert_tokens_before_capacity or None).
"""
import numpy as np


def moe_init_routing_v2(x, expert_idx, *, active_num=0, expert_capacity=0, expert_num=0, drop_pad_mode=0,
                        expert_tokens_count_or_cumsum_flag=0, expert_tokens_before_capacity_flag=False):
    x = np.asarray(x)
    expert_idx = np.asarray(expert_idx)
    if x.ndim != 2 or expert_idx.ndim != 2 or expert_idx.shape[0] != x.shape[0]:
        raise ValueError("x [N, H] and expert_idx [N, K] expected")
    if drop_pad_mode not in (0, 1):
        raise ValueError("drop_pad_mode must be 0 or 1")
    if active_num < 0 or expert_capacity < 0 or expert_num < 0:
        raise ValueError("active_num, expert_capacity and expert_num must not be negative")
    flag = int(expert_tokens_count_or_cumsum_flag)
    if flag not in (0, 1, 2):
        raise ValueError("expert_tokens_count_or_cumsum_flag must be 0, 1 or 2")
    if flag and expert_num <= 0:
        raise ValueError("expert_num must be positive with a count output")
    N, K = expert_idx.shape
    C, E = int(expert_capacity), int(expert_num)
    if drop_pad_mode == 1 and (C < 1 or E < 1 or C > N):
        raise ValueError("drop/pad mode needs 1 <= expert_capacity <= N and expert_num >= 1")
    total = N * K
    fe = expert_idx.reshape(-1).astype(np.int64)
    bounded = drop_pad_mode == 1 or flag != 0
    if fe.size and (fe.min() < 0 or (bounded and fe.max() >= E)):
        raise IndexError("expert ids out of range")
    order = np.argsort(fe, kind="stable")
    counts = np.bincount(fe, minlength=E)[:E].astype(np.int32) if bounded else None

    if drop_pad_mode == 0:
        expanded_row_idx = np.empty(total, np.int32)
        expanded_row_idx[order] = np.arange(total, dtype=np.int32)
        rows = total if active_num == 0 else min(int(active_num), total)
        expanded_x = x[order[:rows] // K]
        tokens = None
        if flag == 1:
            tokens = np.cumsum(counts).astype(np.int32)
        elif flag == 2:
            tokens = counts
        return expanded_x, expanded_row_idx, tokens, None

    seg = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    sorted_e = fe[order]
    pos = np.arange(total) - seg[sorted_e]
    keep = pos < C
    expanded_row_idx = np.full(total, -1, np.int32)
    expanded_row_idx[order[keep]] = (sorted_e[keep] * C + pos[keep]).astype(np.int32)
    expanded_x = np.zeros((E * C, x.shape[1]), x.dtype)
    expanded_x[sorted_e[keep] * C + pos[keep]] = x[order[keep] // K]
    before = counts if expert_tokens_before_capacity_flag else None
    return expanded_x.reshape(E, C, x.shape[1]), expanded_row_idx, None, before
