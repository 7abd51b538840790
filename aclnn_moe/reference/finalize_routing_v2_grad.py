"""numpy reference of aclnnMoeFinalizeRoutingV2Grad (docs/aclnnMoeFinalizeRoutingV2Grad.md, row-major index
p = i*K + k):

    grad_expanded_x[expanded_row_idx[p]] = grad_y[p // K] * scales[p // K, p % K]     (scales None: 1, K = 1)
    grad_scales[p] = sum_j (expanded_x[row][j] + bias[expert_idx[p]][j]) * grad_y[p // K][j]
    a dropped p (-1 in drop/pad, a row >= active_num when 0 < active_num < R*K) writes no row and keeps only the bias
    term of its scale gradient (0 without bias); unselected rows are 0. Products and sums in fp32 (64-lane dot
    order), rounded to the dtype.
"""
import numpy as np

from ._grad import check_index, dot_lanes
from .token_unpermute_with_ep_grad import scatter_grad


def moe_finalize_routing_v2_grad(grad_y, expanded_row_idx, *, expanded_x=None, scales=None, expert_idx=None,
                                 bias=None, drop_pad_mode=0, active_num=0, expert_num=0, expert_capacity=0):
    """Return ``(grad_expanded_x, grad_scales [R, K] or None)``; grad_expanded_x has expanded_x's shape (or
    [rows, H] / [E, C, H] without it)."""
    G = np.asarray(grad_y)
    I = np.asarray(expanded_row_idx).astype(np.int64)
    if drop_pad_mode not in (0, 1):
        raise ValueError("drop_pad_mode must be 0 or 1")
    R, H = G.shape
    n = I.size
    if drop_pad_mode == 1:
        if expert_num <= 0 or expert_capacity <= 0:
            raise ValueError("expert_num and expert_capacity must be > 0")
        rows = expert_num * expert_capacity
        shape = (expert_num, expert_capacity, H)
        check_index(I, 0, rows, True, "expanded_row_idx")
    else:
        rows = active_num if 0 < active_num < n else n
        shape = (rows, H)
        check_index(I, 0, n, False, "expanded_row_idx")
    if scales is None:
        if R != n:
            raise ValueError("grad_y rows must equal len(expanded_row_idx) without scales")
        K = 1
        scale = None
        bias = None
    else:
        scales = np.asarray(scales)
        K = scales.shape[1]
        if scales.shape[0] != R or R * K != n or expanded_x is None:
            raise ValueError("bad scales / expanded_x")
        scale = scales.astype(np.float32)
    rows_sel = np.where((I >= 0) & (I < rows), I, -1).reshape(R, K)
    X = None if scales is None else np.asarray(expanded_x)
    out, dots = scatter_grad(G, rows_sel, scale, X, rows, "expanded_row_idx")
    if scales is None:
        return out.reshape(shape), None
    if bias is not None:
        B = np.asarray(bias).astype(np.float32)
        E = np.asarray(expert_idx).astype(np.int64).reshape(R, K)
        check_index(E, 0, B.shape[0], False, "expert_idx")
        Gf = G.astype(np.float32)
        Xf = X.astype(np.float32).reshape(-1, H)
        v = B[E.reshape(-1)].reshape(R, K, H)
        use = rows_sel >= 0
        v[use] = v[use] + Xf[rows_sel[use]]
        dots = dot_lanes(v.reshape(-1, H), np.repeat(Gf, K, axis=0)).reshape(R, K)
    return out.reshape(shape), dots.astype(scales.dtype)
