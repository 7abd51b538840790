"""numpy reference of aclnnMoeTokenUnpermuteWithRoutingMap, written from its documentation and the official golden
(ops-transformer moe_token_unpermute_with_routing_map tests/st executor).

T = probs.shape[0] (else restore_shape[0]), L = len(sorted_indices)
drop_and_pad False (K = L // T slots per token, -1 = unused slot):
    permute_probs = probs[routing_map] (row-major, token-major) padded with 0 to L
    out[t] = sum_k permuted_tokens[d] * permute_probs[t*K + k] over d = sorted_indices[t*K + k] in [0, rows)
             with a non-zero weight, fp32, k ascending; out_index = arange(L), permute_token_id = arange(L) // K
drop_and_pad True (E = probs.shape[1], C = L // E; sorted_indices are token ids, expert-major):
    permute_probs[i] = probs[sorted_indices[i], i // C]
    permute_token_id, out_index = stable ascending sort of sorted_indices
    out[permute_token_id[i]] += w(out_index[i]), i ascending, in fp32, where w(j) = permuted_tokens[j] *
    permute_probs[j] rounded to the tokens dtype (in fp32 for fp32 probs with bf16 tokens)
"""
import numpy as np

from .token_unpermute import combine

MAX_TOPK = 512


def _round(a, dtype):
    return a.astype(dtype).astype(np.float32)


def moe_token_unpermute_with_routing_map(permuted_tokens, sorted_indices, restore_shape, *, probs=None,
                                         routing_map=None, drop_and_pad=False):
    padded_mode = bool(drop_and_pad)
    """Return ``(unpermuted_tokens [T, H], out_index int32 [L], permute_token_id int32 [L], permute_probs [L] or
    None)``."""
    X = np.asarray(permuted_tokens)
    S = np.asarray(sorted_indices).astype(np.int64)
    if X.ndim != 2 or S.ndim != 1:
        raise ValueError("permuted_tokens [rows, H] and sorted_indices [L] expected")
    rows, H = X.shape
    L = S.size
    P = None if probs is None else np.asarray(probs)
    if P is not None:
        if P.ndim != 2:
            raise ValueError("probs must be 2-D [T, E]")
        T, E = P.shape
    else:
        if restore_shape is None or len(restore_shape) != 2:
            raise ValueError("restore_shape [T, H] is needed without probs")
        T = int(restore_shape[0])
    out_probs = None if P is None else np.zeros(L, P.dtype)
    if L == 0 or (not padded_mode and rows == 0):
        z = np.zeros(L, np.int32)
        return np.zeros((T, H), X.dtype), z, z.copy(), out_probs
    if T == 0 or rows // T > MAX_TOPK:
        raise ValueError("bad token count or top-k")
    if not padded_mode:
        if L % T:
            raise ValueError("len(sorted_indices) must be a multiple of T")
        K = L // T
        W = None
        if P is not None:
            M = np.asarray(routing_map)
            if M.shape != P.shape:
                raise ValueError("routing_map must have the shape of probs")
            if M.dtype != np.bool_ and M.size and (M.min() < 0 or M.max() > 1):
                raise ValueError("routing_map values must be 0 or 1")
            sel = P[M.astype(bool)]
            if sel.size > L:
                raise ValueError("routing_map selects more entries than sorted_indices has slots")
            out_probs[:sel.size] = sel
            W = out_probs.astype(np.float32).reshape(T, K)
        out = combine(X, S.reshape(T, K), W)
        idx = np.arange(L, dtype=np.int32)
        return out, idx, (idx // K).astype(np.int32), out_probs
    if rows != L:
        raise ValueError("permuted_tokens must have len(sorted_indices) rows in padded mode")
    if S.size and (S.min() < 0 or S.max() >= T):
        raise IndexError("sorted_indices must be token ids in [0, T)")
    Xf = X.astype(np.float32)
    if P is not None:
        if L % E:
            raise ValueError("len(sorted_indices) must be a multiple of E")
        C = L // E
        out_probs[:] = P[S, np.arange(L) // C]
        w = Xf * out_probs.astype(np.float32)[:, None]
        mixed = P.dtype == np.float32 and X.dtype != np.float32
        if not mixed and X.dtype != np.float32:
            w = _round(w, X.dtype)
    else:
        w = Xf
    order = np.argsort(S, kind="stable")
    acc = np.zeros((T, H), np.float32)
    np.add.at(acc, S[order], w[order])  # sequential: ascending token id, then position (the operator's order)
    return acc.astype(X.dtype), order.astype(np.int32), S[order].astype(np.int32), out_probs
