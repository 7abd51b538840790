"""numpy reference of aclnnMoeTokenPermuteWithEp, written from spec/semantics.md section 5 (MoeTokenPermute and
MoeTokenPermuteWithEp).

    flat  = indices.reshape(-1)                  p = t*K + k
    first = stable argsort of flat               ties -> lower p
    sorted_indices[first[j]] = j                 (int32, indexed by the flat position)
    start, end = range, or 0, num_out_tokens when range is None / empty; both must lie in [0, T*K]
    n_out = end - start; n_out <= 0 -> n_out += T*K; n_out = clamp(n_out, 0, T*K)
    permute_tokens[r] = tokens[first[start + r] // K],  permute_probs[r] = probs.flat[first[start + r]]

When n_out == T*K (start == end, including range [0, 0]) the NPU kernel writes every row at its full sorted
position, so start counts as 0. Output rows with start + r >= T*K (possible when end < start) are not written by
the operator; they are zero here.
"""
import numpy as np

SORT_LIMIT = 16777215
MAX_TOPK = 512


def resolve_window(total, range=None, num_out_tokens=0):
    """(start, n_out) of the window of sorted rows that is output."""
    if range is None or len(range) == 0:
        start, end = 0, int(num_out_tokens)
    else:
        if len(range) != 2:
            raise ValueError("range must have 2 elements [start, end]")
        start, end = int(range[0]), int(range[1])
    if not (0 <= start <= total and 0 <= end <= total):  # the tiling checks the fallback [0, num_out_tokens] too
        raise ValueError(f"range start {start} and end {end} must be in [0, {total}]")
    n_out = end - start
    if n_out <= 0:
        n_out += total
    n_out = max(min(n_out, total), 0)
    if n_out == total:
        start = 0
    return start, n_out


def moe_token_permute_with_ep(tokens, indices, *, probs=None, range=None, num_out_tokens=0, padded_mode=False):
    """Return ``(permute_tokens [n_out, H], sorted_indices int32 [T*K], permute_probs [n_out] or None)``."""
    tokens = np.asarray(tokens)
    indices = np.asarray(indices)
    if padded_mode:
        raise ValueError("padded_mode=True is not supported")
    if tokens.ndim < 2 or indices.ndim not in (1, 2) or indices.shape[0] != tokens.shape[0]:
        raise ValueError("tokens [T, H] and indices [T, K] or [T] expected")
    T = tokens.shape[0]
    K = indices.shape[1] if indices.ndim == 2 else 1
    if not 1 <= K <= MAX_TOPK:
        raise ValueError(f"top-k must be in [1, {MAX_TOPK}]")
    total = T * K
    if total >= SORT_LIMIT:
        raise ValueError("too many indices")
    flat = indices.reshape(-1).astype(np.int64)
    if flat.size and (flat.min() < 0 or flat.max() >= SORT_LIMIT):
        raise IndexError(f"indices must be in [0, {SORT_LIMIT})")
    start, n_out = resolve_window(total, range, num_out_tokens)
    first = np.argsort(flat, kind="stable")
    sorted_indices = np.empty(total, np.int32)
    sorted_indices[first] = np.arange(total, dtype=np.int32)

    rows2d = tokens.reshape(T, int(np.prod(tokens.shape[1:], dtype=np.int64)))
    valid = max(min(n_out, total - start), 0)
    permute_tokens = np.zeros((n_out,) + tokens.shape[1:], tokens.dtype)
    src = first[start:start + valid]
    permute_tokens.reshape(n_out, rows2d.shape[1])[:valid] = rows2d[src // K]
    permute_probs = None
    if probs is not None:
        probs = np.asarray(probs)
        if probs.shape != indices.shape:
            raise ValueError("probs must have the shape of indices")
        permute_probs = np.zeros(n_out, probs.dtype)
        permute_probs[:valid] = probs.reshape(-1)[src]
    return permute_tokens, sorted_indices, permute_probs
