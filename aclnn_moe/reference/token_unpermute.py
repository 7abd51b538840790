"""numpy reference of aclnnMoeTokenUnpermute, written from spec/semantics.md section 5 (MoeTokenUnpermute) and
the NPU kernel's order of operations.

    K = probs.shape[1] (1 without probs), T = len(sorted_indices) // K
    for t: acc = 0 (fp32)
        for k ascending: d = sorted_indices[t*K + k]
            if d < rows and (probs is None or probs[t, k] != 0):
                acc += float32(permuted_tokens[d]) * float32(probs[t, k])   (product rounded to fp32)
        out[t] = acc rounded to the tokens dtype (RNE)

Rows d >= rows (dropped by num_out_tokens) are skipped. A negative d that would be read raises IndexError (the
operator returns ACLNN_ERR_PARAM_INVALID); with probs[t, k] == 0 it is skipped. restore_shape is ignored
(padded_mode False).
"""
import numpy as np

MAX_TOPK = 512


def combine(X, D, P):
    """out[t] = sum_k X[D[t, k]] * P[t, k] over 0 <= D < rows and P != 0, in fp32, k ascending (P may be None)."""
    rows, H = X.shape
    T, K = D.shape
    use = (D >= 0) & (D < rows)
    if P is not None:
        use &= P != 0
    Xf = X.astype(np.float32)
    acc = np.zeros((T, H), np.float32)
    for k in range(K):
        sel = np.nonzero(use[:, k])[0]
        term = Xf[D[sel, k]]
        if P is not None:
            term = term * P[sel, k][:, None]
        acc[sel] += term
    return acc.astype(X.dtype)


def moe_token_unpermute(permuted_tokens, sorted_indices, probs=None, padded_mode=False, restore_shape=None):
    """Return ``out [T, H]`` in the dtype of permuted_tokens."""
    X = np.asarray(permuted_tokens)
    S = np.asarray(sorted_indices).astype(np.int64)
    if padded_mode:
        raise ValueError("padded_mode=True is not supported")
    if X.ndim != 2 or S.ndim != 1:
        raise ValueError("permuted_tokens [rows, H] and sorted_indices [T*K] expected")
    if probs is not None:
        P = np.asarray(probs)
        if P.ndim != 2 or P.size != S.size:
            raise ValueError("probs must be [T, K] with T*K = len(sorted_indices)")
        T, K = P.shape
        if K > MAX_TOPK:
            raise ValueError(f"top-k must not exceed {MAX_TOPK}")
        P = P.astype(np.float32)
    else:
        T, K, P = S.size, 1, None
    D = S.reshape(T, K)
    if np.any((D < 0) & (True if P is None else (P != 0))):
        raise IndexError("sorted_indices holds a negative index with a non-zero weight")
    return combine(X, D, P)
