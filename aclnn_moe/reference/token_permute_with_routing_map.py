"""numpy reference of aclnnMoeTokenPermuteWithRoutingMap, written from its documentation and the official golden
(ops-transformer moe_token_permute_with_routing_map tests/st executor), with the NPU's non-aligned path.

drop_and_pad False: K = num_out_tokens // T, n_out = K*T
    gather = for e ascending, the tokens t (ascending) with routing_map[t, e]    (expert-major rows)
    permuted_tokens[:nnz] = tokens[gather], permuted_probs[:nnz] = probs.T[routing_map.T]; later rows are 0
    sorted_indices = argsort(gather, stable) when nnz == T*K, else token t's r-th row at slot t*K + r and -1 in
    the unused slots (a row with more than K entries is then an error)
drop_and_pad True: C = num_out_tokens // E, n_out = C*E
    sorted_indices[e*C:(e+1)*C] = the first C of argsort(routing_map[:, e], descending, stable)
    permuted_tokens = tokens[sorted_indices], permuted_probs[e*C + j] = probs[sorted_indices[e*C + j], e]
"""
import numpy as np

MAX_TOPK = 512


def moe_token_permute_with_routing_map(tokens, routing_map, *, probs=None, num_out_tokens=None, drop_and_pad=False):
    """Return ``(permuted_tokens [n_out, H], permuted_probs [n_out] or None, sorted_indices int32 [n_out])``."""
    X = np.asarray(tokens)
    M = np.asarray(routing_map)
    if X.ndim != 2 or M.ndim != 2:
        raise ValueError("tokens [T, H] and routing_map [T, E] expected")
    if M.dtype != np.bool_ and M.size and (M.min() < 0 or M.max() > 1):
        raise ValueError("routing_map values must be 0 or 1")
    M = M.astype(bool)
    T, E = M.shape
    n = X.shape[0] if num_out_tokens is None else int(num_out_tokens)
    if not 0 <= n <= T * E:
        raise ValueError(f"num_out_tokens must be in [0, {T * E}]")
    align = max(E if drop_and_pad else T, 1)
    n_out = n // align * align
    P = None if probs is None else np.asarray(probs)
    out_tokens = np.zeros((n_out, X.shape[1]), X.dtype)
    out_probs = None if P is None else np.zeros(n_out, P.dtype)
    sorted_indices = np.zeros(n_out, np.int32)
    if T == 0 or E == 0:
        return out_tokens, out_probs, sorted_indices
    if X.shape[0] != T:
        raise ValueError("tokens and routing_map must have the same number of rows")
    if drop_and_pad:
        C = n_out // E
        src = np.concatenate([np.argsort(~M[:, e], kind="stable")[:C] for e in range(E)]).astype(np.int64)
        sorted_indices[:] = src
        out_tokens[:] = X[src]
        if P is not None:
            out_probs[:] = P[src, np.arange(n_out) // max(C, 1)]
        return out_tokens, out_probs, sorted_indices
    K = n // T
    if K > MAX_TOPK:
        raise ValueError(f"num_out_tokens // T must not exceed {MAX_TOPK}")
    te = np.argwhere(M.T)  # (e, t) pairs, expert-major, tokens ascending
    gather = te[:, 1]
    nnz = gather.size
    counts = M.sum(1)
    dest_sorted = np.argsort(gather, kind="stable")  # destinations in token-major order
    if nnz == T * K:
        sorted_indices[:] = dest_sorted
    else:
        if counts.max(initial=0) > K:
            raise ValueError("a routing_map row has more than num_out_tokens // T entries")
        sorted_indices[:] = -1
        tok = gather[dest_sorted]
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        slot = tok * K + (np.arange(nnz) - first[tok])
        sorted_indices[slot] = dest_sorted
    out_tokens[:nnz] = X[gather]
    if P is not None:
        out_probs[:nnz] = P.T[M.T]
    return out_tokens, out_probs, sorted_indices
