"""numpy reference of aclnnMoeTokenPermute, written from spec/semantics.md section 5 (MoeTokenPermute).

    flat  = indices.reshape(-1)                   p = t*K + k
    first = stable argsort of flat                ties -> lower p
    sorted_indices[first[j]] = j                  (int32, indexed by the flat position: a scatter index)
    n_out = num_out_tokens (+ T*K when <= 0), clamped to [0, T*K]
    permuted_tokens[j] = tokens[first[j] // K]    for j < n_out
"""
import numpy as np

SORT_LIMIT = 16777215
MAX_TOPK = 512


def resolve_num_out_tokens(total, num_out_tokens):
    """Rows of permuted_tokens: 0 keeps all, > 0 the first n, < 0 all but the last |n| (Python slicing)."""
    n = int(num_out_tokens or 0)
    n = n + total if n <= 0 else n
    return max(min(n, total), 0)


def moe_token_permute(tokens, indices, num_out_tokens=None, padded_mode=False):
    """Return ``(permuted_tokens [n_out, ...], sorted_indices int32 [T*K])``."""
    tokens = np.asarray(tokens)
    indices = np.asarray(indices)
    if padded_mode:
        raise ValueError("padded_mode=True is not supported")
    if tokens.ndim < 2 or indices.ndim not in (1, 2) or indices.shape[0] != tokens.shape[0]:
        raise ValueError("tokens [T, H] and indices [T, K] or [T] expected")
    T = tokens.shape[0]
    K = indices.shape[1] if indices.ndim == 2 else 1
    if K > MAX_TOPK:
        raise ValueError(f"top-k must not exceed {MAX_TOPK}")
    total = T * K
    if total >= SORT_LIMIT:
        raise ValueError("too many indices")
    flat = indices.reshape(-1).astype(np.int64)
    if flat.size and (flat.min() < 0 or flat.max() >= SORT_LIMIT):
        raise IndexError(f"indices must be in [0, {SORT_LIMIT})")
    n_out = resolve_num_out_tokens(total, num_out_tokens)
    first = np.argsort(flat, kind="stable")
    sorted_indices = np.empty(total, np.int32)
    sorted_indices[first] = np.arange(total, dtype=np.int32)
    rows2d = tokens.reshape(T, -1) if T else tokens.reshape(0, int(np.prod(tokens.shape[1:])))
    permuted = rows2d[first[:n_out] // max(K, 1)].reshape((n_out,) + tokens.shape[1:])
    return permuted, sorted_indices
