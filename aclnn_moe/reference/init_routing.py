"""numpy reference of aclnnMoeInitRouting (V1, torch_npu.npu_moe_init_routing), written from spec/semantics.md
section 6 (V1): a stable sort of the flattened expert ids (ties -> lower flat position i*K + k)."""
import numpy as np


def moe_init_routing(x, row_idx, expert_idx, active_num):
    """Return ``(expanded_x, expanded_row_idx, expanded_expert_idx)``.

    expanded_expert_idx = sorted expert ids; expanded_row_idx[row_idx_flat[order[j]]] = j;
    expanded_x[j] = x[row_idx_flat[order[j]] % N] for j < min(N, active_num) * K.
    """
    x = np.asarray(x)
    row_idx = np.asarray(row_idx)
    expert_idx = np.asarray(expert_idx)
    if x.ndim != 2 or row_idx.ndim != 2 or expert_idx.shape != row_idx.shape or expert_idx.shape[0] != x.shape[0]:
        raise ValueError("x [N, H], row_idx and expert_idx [N, K] expected")
    if active_num < 0:
        raise ValueError("active_num must be >= 0")
    N, K = expert_idx.shape
    fe = expert_idx.reshape(-1).astype(np.int64)
    fr = row_idx.reshape(-1).astype(np.int64)
    if fr.size and (fr.min() < 0 or fr.max() >= N * K or np.unique(fr).size != fr.size):
        raise ValueError("row_idx must be a permutation of [0, N*K)")
    order = np.argsort(fe, kind="stable")
    expanded_expert_idx = fe[order].astype(np.int32)
    d2s = fr[order]
    expanded_row_idx = np.empty(N * K, np.int32)
    expanded_row_idx[d2s] = np.arange(N * K, dtype=np.int32)
    active = min(active_num, N) * K
    expanded_x = x[d2s[:active] % N] if N else np.zeros((0, x.shape[1]), x.dtype)
    return expanded_x, expanded_row_idx, expanded_expert_idx
