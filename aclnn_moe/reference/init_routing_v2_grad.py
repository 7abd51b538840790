"""numpy reference of aclnnMoeInitRoutingV2Grad (docs/aclnnMoeInitRoutingV2Grad.md):

    grad_x[i] = sum over k of grad_expanded_x[expanded_row_idx[i*K + k]]
    (rows >= active_num in the active layout and -1 in drop/pad add nothing; the K rows are summed as a binary tree
    in fp32, as the kernel's BinaryAdd; the result is rounded to the dtype)
"""
import numpy as np

from ._grad import check_index, tree_sum


def moe_init_routing_v2_grad(grad_expanded_x, expanded_row_idx, top_k, *, drop_pad_mode=0, active_num=0):
    """Return ``grad_x [N, H]``."""
    G = np.asarray(grad_expanded_x)
    R = np.asarray(expanded_row_idx).astype(np.int64)
    K = int(top_k)
    if drop_pad_mode not in (0, 1) or K <= 0 or active_num < 0 or R.ndim != 1 or R.size % K:
        raise ValueError("bad attributes")
    n = R.size
    if drop_pad_mode == 1:
        if G.ndim != 3:
            raise ValueError("grad_expanded_x must be [E, C, H]")
        rows = G.shape[0] * G.shape[1]
        check_index(R, 0, rows, True, "expanded_row_idx")
    else:
        if G.ndim != 2 or G.shape[0] != (active_num if active_num > 0 else n):
            raise ValueError("bad grad_expanded_x rows")
        rows = G.shape[0]
        check_index(R, 0, n, False, "expanded_row_idx")
    H = G.shape[-1]
    Gf = G.reshape(-1, H).astype(np.float32)
    D = R.reshape(n // K, K)
    use = (D >= 0) & (D < rows)
    terms = np.zeros((n // K, K, H), np.float32)
    terms[use] = Gf[D[use]]
    return tree_sum(terms).astype(G.dtype)
