"""numpy reference of aclnnMoeTokenUnpermuteWithEp, written from spec/semantics.md section 5.

    for t: acc = 0 (fp32)
        for k ascending: d = sorted_indices[t*K + k]
            if start <= d < end and (probs is None or probs[t, k] != 0):
                acc += float32(permuted_tokens[d - start]) * float32(probs[t, k])   (product rounded to fp32)
        out[t] = acc rounded to the tokens dtype (RNE)

range None (or empty): the documented fallback to MoeTokenUnpermute, start = 0 and end = rows of
permuted_tokens (rows dropped by num_out_tokens are skipped). An explicit range with start >= end selects nothing.
A selected row d - start outside permuted_tokens, or a negative index, raises IndexError (the operator returns
ACLNN_ERR_PARAM_INVALID).
"""
import numpy as np

MAX_TOPK = 512


def moe_token_unpermute_with_ep(permuted_tokens, sorted_indices, *, probs=None, num_topk=None, range=None,
                                padded_mode=False, restore_shape=None):
    """Return ``out [T, H]`` in the dtype of permuted_tokens."""
    X = np.asarray(permuted_tokens)
    S = np.asarray(sorted_indices).astype(np.int64)
    if padded_mode:
        raise ValueError("padded_mode=True is not supported")
    if X.ndim != 2 or S.ndim != 1:
        raise ValueError("permuted_tokens [rows, H] and sorted_indices [T*K] expected")
    if num_topk is None:
        num_topk = np.asarray(probs).shape[1] if probs is not None else 1
    K = int(num_topk)
    if not 1 <= K <= MAX_TOPK:
        raise ValueError(f"num_topk must be in [1, {MAX_TOPK}]")
    if S.size % K:
        raise ValueError("len(sorted_indices) must be a multiple of num_topk")
    T = S.size // K
    rows, H = X.shape
    if probs is not None:
        probs = np.asarray(probs)
        if probs.shape != (T, K):
            raise ValueError(f"probs must be [{T}, {K}]")
        P = probs.astype(np.float32)
    if restore_shape is not None and len(restore_shape) and tuple(restore_shape) != (T, H):
        raise ValueError(f"restore_shape must be [{T}, {H}]")
    if range is None or len(range) == 0:
        start, end = 0, rows
    else:
        if len(range) != 2:
            raise ValueError("range must have 2 elements [start, end]")
        start, end = int(range[0]), int(range[1])
    if S.size and S.min() < 0:
        raise IndexError("sorted_indices must not be negative")

    Xf = X.astype(np.float32)
    D = S.reshape(T, K)
    use = (D >= start) & (D < end)
    if probs is not None:
        use &= P != 0
    if np.any(use & (D - start >= rows)):
        raise IndexError("sorted_indices selects a row outside permuted_tokens")
    acc = np.zeros((T, H), np.float32)
    for k in np.arange(K):
        sel = np.nonzero(use[:, k])[0]
        rowsk = Xf[D[sel, k] - start]
        if probs is not None:
            rowsk = rowsk * P[sel, k][:, None]
        acc[sel] += rowsk
    return acc.astype(X.dtype)
