"""numpy reference of aclnnMoeTokenPermuteWithRoutingMapGrad, written from its documentation, op_api and kernel
(ops-transformer moe_token_permute_with_routing_map_grad).

drop_and_pad False (K = len(sorted_indices) // T):
    token_grad[t] = sum over k ascending of grad[d], d = sorted_indices[t*K + k], skipping -1 and d >= rows (fp32)
    probs_grad = zeros [T, E]; probs_grad.T[routing_map.T] = permuted_probs_grad[:nnz]   (expert-major scatter)
drop_and_pad True (C = rows // E; sorted_indices are token ids):
    token_grad[t] = sum over i ascending with sorted_indices[i] == t of grad[i] (fp32)
    probs_grad[sorted_indices[i], i // C] = permuted_probs_grad[i], i ascending
"""
import numpy as np

from ._grad import check_index

MAX_TOPK = 512


def moe_token_permute_with_routing_map_grad(permuted_tokens_output_grad, permuted_probs_output_grad, sorted_indices,
                                            routing_map, experts_num, tokens_num, drop_and_pad=False):
    """Return ``(token_grad [T, H], probs_grad [T, E] or None)``."""
    G = np.asarray(permuted_tokens_output_grad)
    S = np.asarray(sorted_indices).astype(np.int64)
    T, E = int(tokens_num), int(experts_num)
    if T <= 0 or E <= 0:
        raise ValueError("tokens_num and experts_num must be > 0")
    rows, H = G.shape
    L = S.size
    Gf = G.astype(np.float32)
    acc = np.zeros((T, H), np.float32)
    PG = None if permuted_probs_output_grad is None else np.asarray(permuted_probs_output_grad)
    if PG is not None and routing_map is None:
        raise ValueError("permuted_probs_output_grad needs routing_map")
    if not drop_and_pad:
        if L % T:
            raise ValueError("len(sorted_indices) must be a multiple of tokens_num")
        K = L // T
        if K > MAX_TOPK or rows > L:
            raise ValueError("bad top-k or gradient rows")
        check_index(S, 0, T * K, True, "sorted_indices")
        S2 = S.reshape(T, K)
        for k in range(K):
            d = S2[:, k]
            use = (d >= 0) & (d < rows)
            acc[use] += Gf[d[use]]
    else:
        if rows % E or L != rows:
            raise ValueError("the gradient must have E * capacity rows, one per sorted index")
        check_index(S, 0, T, False, "sorted_indices")
        for i in range(L):  # ascending positions: the fixed order
            acc[S[i]] += Gf[i]
    token_grad = acc.astype(G.dtype)
    if PG is None:
        return token_grad, None
    M = np.asarray(routing_map)
    if M.shape != (T, E):
        raise ValueError("routing_map must be [tokens_num, experts_num]")
    if M.dtype != np.bool_ and M.size and (M.min() < 0 or M.max() > 1):
        raise ValueError("routing_map values must be 0 or 1")
    M = M.astype(bool)
    probs_grad = np.zeros((T, E), PG.dtype)
    if not drop_and_pad:
        nnz = int(M.sum())
        if nnz > PG.size:
            raise ValueError("routing_map has more entries than permuted_probs_output_grad")
        pt = probs_grad.T.copy()
        pt[M.T] = PG[:nnz]
        probs_grad = np.ascontiguousarray(pt.T)
    elif L:
        C = L // E
        probs_grad[S, np.arange(L) // C] = PG  # numpy: the last of repeated pairs wins
    return token_grad, probs_grad
