"""numpy reference of aclnnMoeTokenUnpermuteWithRoutingMapGrad, written from its documentation, the official golden
(ops-transformer moe_token_unpermute_with_routing_map_grad tests/st executor) and kernel.

T, H = unpermuted_tokens_grad.shape; L = len(out_index); rows of permuted_tokens_grad [L, H] nothing selects are 0.
drop_and_pad False (K = L // T; out_index = the forward's sorted_indices, -1 = unused slot):
    w = probs[routing_map] (row-major), 0-padded to L (1 everywhere without probs)
    permuted_tokens_grad[out_index[i]] = grad[i // K] * w[i]                 (fp32, one rounding)
    probs_grad[t_j, e_j] = dot(grad[j // K], permuted_tokens[out_index[j]])  for the j-th map entry (t_j, e_j)
drop_and_pad True (E = probs.shape[1], C = L // E; tid = permuted_token_id):
    permuted_tokens_grad[out_index[i]] = grad[tid[i]] * probs[tid[i], out_index[i] // C]   (1 without probs)
    probs_grad[tid[i], out_index[i] // C] = dot(grad[tid[i]], permuted_tokens[out_index[i]]), i ascending
dot: the 64-lane fixed order of the grad family (reference._grad.dot_lanes).
"""
import numpy as np

from ._grad import check_index, check_unique, dot_lanes

MAX_TOPK = 512


def moe_token_unpermute_with_routing_map_grad(unpermuted_tokens_grad, out_index, permuted_token_id, routing_map=None,
                                              permuted_tokens=None, probs=None, drop_and_pad=False,
                                              restore_shape=None):
    """Return ``(permuted_tokens_grad [L, H], probs_grad [T, E] or None)``."""
    G = np.asarray(unpermuted_tokens_grad)
    if G.ndim != 2:
        raise ValueError("unpermuted_tokens_grad must be [T, H]")
    T, H = G.shape
    OI = np.asarray(out_index).astype(np.int64)
    TID = np.asarray(permuted_token_id).astype(np.int64)
    L = OI.size
    if TID.size != L:
        raise ValueError("out_index and permuted_token_id must have the same length")
    P = None if probs is None else np.asarray(probs)
    Gf = G.astype(np.float32)
    if P is not None:
        if routing_map is None or permuted_tokens is None:
            raise ValueError("probs need routing_map and permuted_tokens")
        M = np.asarray(routing_map)
        X = np.asarray(permuted_tokens)
        if P.ndim != 2 or P.shape[0] != T or M.shape != P.shape or X.shape != (L, H):
            raise ValueError("probs / routing_map [T, E], permuted_tokens [L, H] expected")
        if M.dtype != np.bool_ and M.size and (M.min() < 0 or M.max() > 1):
            raise ValueError("routing_map values must be 0 or 1")
        E = P.shape[1]
    if not drop_and_pad:
        if (T == 0 and L) or (T and L % T):
            raise ValueError("len(out_index) must be a multiple of T")
        K = L // T if T else 0
        if P is not None and (K > MAX_TOPK or K > E):
            raise ValueError("bad top-k")
        check_index(OI, 0, L, True, "out_index")
        token = np.arange(L) // max(K, 1)
    else:
        if P is not None:
            if E == 0 or L % E:
                raise ValueError("len(out_index) must be a multiple of E")
            C = L // E
            if C > T:
                raise ValueError("capacity must not exceed T")
        check_index(OI, 0, L, False, "out_index")
        check_index(TID, 0, T, False, "permuted_token_id")
        token = TID
    check_unique(OI, "out_index")
    use = OI >= 0
    # the weight of each slot
    if P is None:
        w = np.ones(L, np.float32)
    elif not drop_and_pad:
        te = np.argwhere(M.astype(bool))  # (t, e) row-major
        if te.shape[0] > L:
            raise ValueError("routing_map selects more entries than len(out_index)")
        w = np.zeros(L, np.float32)
        w[:te.shape[0]] = P.astype(np.float32)[te[:, 0], te[:, 1]]
    else:
        w = P.astype(np.float32)[TID, OI // C] if L else np.zeros(0, np.float32)
    out = np.zeros((L, H), np.float32)
    rows = np.nonzero(use)[0]
    out[OI[rows]] = Gf[token[rows]] * w[rows, None]
    permuted_tokens_grad = out.astype(G.dtype)
    if P is None:
        return permuted_tokens_grad, None
    probs_grad = np.zeros((T, E), np.float32)
    Xf = X.astype(np.float32)
    if not drop_and_pad:
        n = te.shape[0]
        sel = np.arange(n)
        d = np.zeros(n, np.float32)
        ok = OI[sel] >= 0
        if ok.any() and H:
            d[ok] = dot_lanes(Gf[token[sel[ok]]], Xf[OI[sel[ok]]])
        probs_grad[te[:, 0], te[:, 1]] = d
    elif L:
        d = dot_lanes(Gf[TID], Xf[OI]) if H else np.zeros(L, np.float32)
        for i in range(L):  # ascending: a repeated pair keeps the last
            probs_grad[TID[i], OI[i] // C] = d[i]
    return permuted_tokens_grad, probs_grad.astype(P.dtype)
