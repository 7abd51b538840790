"""numpy reference of aclnnMoeTokenUnpermuteWithEpGrad (ep_torch.md section 4; the kernel writes row d - start in
both branches):

    d = sorted_indices[t*K + k] selected when start <= d < end (and d < rows of permuted_tokens when start is 0)
    permuted_tokens_grad[d - start] = grad[t] * probs[t, k]        (1 without probs; other rows 0)
    probs_grad[t, k] = sum_j permuted_tokens[d - start][j] * grad[t][j]   (64-lane order; 0 when not selected)

range as the tiling resolves it (negative bounds count from T*K, clamped to [0, T*K]). The gradient has the rows of
permuted_tokens when given, else the range length (out_rows overrides, e.g. T*K as the official infershape).
"""
import numpy as np

from ._grad import check_index, check_unique, dot_lanes

MAX_TOPK = 512


def window(n, range, permuted_rows):
    start, end = 0, n
    if range is not None and len(range):
        if len(range) != 2:
            raise ValueError("range must have 2 elements")
        start, end = int(range[0]), int(range[1])
        end = end + n if end < 0 else end
        start = start + n if start < 0 else start
        end, start = min(max(end, 0), n), min(max(start, 0), n)
        if end < start:
            raise ValueError("range[1] < range[0]")
    if start == 0 and permuted_rows is not None:
        end = min(end, permuted_rows)
    return start, end


def scatter_grad(grad, rows_sel, scale, x, n_rows, name):
    """rows_sel [T, K] (row or -1); scale [T, K] float32 or None; x [rows, H] or None."""
    G = np.asarray(grad)
    T, K = rows_sel.shape
    H = G.shape[1]
    check_unique(rows_sel.reshape(-1), name)
    Gf = G.astype(np.float32)
    out = np.zeros((n_rows, H), np.float32)
    use = rows_sel >= 0
    tt = np.nonzero(use)[0]
    vals = Gf[tt]
    if scale is not None:
        vals = vals * scale[use][:, None]
    out[rows_sel[use]] = vals
    dots = None
    if x is not None:
        Xf = np.asarray(x).astype(np.float32).reshape(-1, H)
        dots = np.zeros((T, K), np.float32)
        dots[use] = dot_lanes(Xf[rows_sel[use]], Gf[tt])
    return out.astype(G.dtype), dots


def moe_token_unpermute_with_ep_grad(unpermuted_tokens_grad, sorted_indices, *, permuted_tokens=None, probs=None,
                                     padded_mode=False, restore_shape=None, range=None, topk_num=None):
    """Return ``(permuted_tokens_grad [rows, H], probs_grad [T, K] or None)``."""
    return unpermute_with_ep_grad(unpermuted_tokens_grad, sorted_indices, permuted_tokens=permuted_tokens,
                                  probs=probs, padded_mode=padded_mode, range=range, topk_num=topk_num)


def unpermute_with_ep_grad(unpermuted_tokens_grad, sorted_indices, *, permuted_tokens=None, probs=None,
                           padded_mode=False, range=None, topk_num=None, out_rows=None):
    """The same with the output's rows chosen (``out_rows``, e.g. T*K as the official infershape)."""
    G = np.asarray(unpermuted_tokens_grad)
    S = np.asarray(sorted_indices).astype(np.int64)
    if padded_mode:
        raise ValueError("padded_mode=True is not supported")
    T, H = G.shape
    if probs is not None:
        probs = np.asarray(probs)
        K = probs.shape[1]
        if permuted_tokens is None:
            raise ValueError("permuted_tokens must be given with probs")
    else:
        K = 1 if topk_num is None else int(topk_num)
    if not 1 <= K <= MAX_TOPK or S.size != T * K:
        raise ValueError("bad shapes")
    X = None if permuted_tokens is None else np.asarray(permuted_tokens)
    start, end = window(S.size, range, None if X is None else X.shape[0])
    if out_rows is None:
        out_rows = X.shape[0] if X is not None else end - start
    check_index(S, 0, np.iinfo(np.int64).max, False, "sorted_indices")
    D = S.reshape(T, K)
    rows_sel = np.where((D >= start) & (D < end), D - start, -1)
    scale = probs.astype(np.float32) if probs is not None else None
    out, dots = scatter_grad(G, rows_sel, scale, X if probs is not None else None, out_rows, "sorted_indices")
    return out, (dots.astype(probs.dtype) if probs is not None else None)
