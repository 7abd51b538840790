"""numpy reference of aclnnMoeReRouting (torch_npu.npu_moe_re_routing), written from spec/semantics.md section 2.

Tokens arrive rank-major (rank r, then local expert e, ``cnt[r, e]`` rows each); the output is expert-major, then
source rank ascending, keeping the order inside every block. Pure data movement.
"""
import numpy as np


def moe_re_routing(tokens, expert_token_num_per_rank, *, per_token_scales=None, expert_token_num_type=1,
                   idx_type=0):
    """Return ``(permute_tokens, permute_per_token_scales, permute_token_idx, expert_token_num)``.

    ``permute_per_token_scales`` is zero-filled when no scales are given (the NPU leaves it undefined; the host
    runtime zero-fills it). ``permute_token_idx`` is the gather index: ``permute_tokens[j] == tokens[idx[j]]``.
    ``expert_token_num`` keeps the dtype of the counts.
    """
    tokens = np.asarray(tokens)
    cnt = np.asarray(expert_token_num_per_rank)
    if tokens.ndim != 2 or cnt.ndim != 2:
        raise ValueError("tokens and expert_token_num_per_rank must be 2-D")
    if expert_token_num_type != 1 or idx_type != 0:
        raise ValueError("only expert_token_num_type=1 (count) and idx_type=0 (gather) are supported")
    A = tokens.shape[0]
    N, E = cnt.shape
    c = cnt.astype(np.int64)
    if (c < 0).any():
        raise ValueError("expert_token_num_per_rank has a negative count")
    if int(c.sum()) != A:
        raise ValueError(f"sum(expert_token_num_per_rank) = {int(c.sum())} != A = {A}")

    total = c.sum(axis=0)                                   # [E]
    base = np.concatenate([[0], np.cumsum(total)[:-1]]) if E else np.zeros(0, np.int64)
    idx = np.empty(A, np.int64)
    dst_next = base.copy()
    src = 0
    for r in range(N):
        for e in range(E):
            n = int(c[r, e])
            d = int(dst_next[e])
            idx[d:d + n] = np.arange(src, src + n)
            dst_next[e] += n
            src += n
    permute_tokens = tokens[idx]
    if per_token_scales is not None:
        permute_scales = np.asarray(per_token_scales, dtype=np.float32)[idx]
    else:
        permute_scales = np.zeros(A, np.float32)
    return permute_tokens, permute_scales, idx.astype(np.int32), total.astype(cnt.dtype)
