"""numpy reference of aclnnMoeTokenPermuteWithEpGrad (ep_torch.md section 4; the kernel and the golden settle the
doc's shapes):

    token_grad[t] = sum over k ascending of grad[d - start] for d = sorted_indices[t*K + k] in [start, end)
    probs_grad[t, k] = probs_grad_in[d - start] for d in [start, end), else 0

fp32 accumulation, rounded to the gradient's dtype. range None: MoeTokenPermuteGrad (start 0, end = rows of the
gradient; the probs gradient is ignored and None is returned for it).
"""
import numpy as np

from ._grad import check_index, sequential_sum

MAX_TOPK = 512


def moe_token_permute_with_ep_grad(permuted_tokens_output_grad, sorted_indices, *, permuted_probs_output_grad=None,
                                   num_topk=1, range=None, padded_mode=False):
    """Return ``(token_grad [T, H], probs_grad [T, K] or None)``."""
    G = np.asarray(permuted_tokens_output_grad)
    S = np.asarray(sorted_indices).astype(np.int64)
    K = int(num_topk)
    if padded_mode:
        raise ValueError("padded_mode=True is not supported")
    if not 1 <= K <= MAX_TOPK or G.ndim != 2 or S.ndim != 1 or S.size % K:
        raise ValueError("bad shapes or num_topk")
    n, T = S.size, S.size // K
    rows, H = G.shape
    if range is None or len(range) == 0:
        start, end = 0, rows
        permuted_probs_output_grad = None
        if rows > n:
            raise ValueError("more gradient rows than T*K")
    else:
        start, end = int(range[0]), int(range[1])
        if not 0 <= start <= end <= n or rows not in (end - start, (end - start) * K):
            raise ValueError("bad range or gradient rows")
    check_index(S, 0, np.iinfo(np.int64).max, False, "sorted_indices")
    D = S.reshape(T, K)
    use = (D >= start) & (D < end)
    terms = np.zeros((T, K, H), np.float32)
    terms[use] = G[D[use] - start].astype(np.float32)
    token_grad = sequential_sum(terms, use).astype(G.dtype)
    probs_grad = None
    if permuted_probs_output_grad is not None:
        P = np.asarray(permuted_probs_output_grad)
        if P.ndim != 1 or P.shape[0] not in (end - start, (end - start) * K):
            raise ValueError("bad probs gradient")
        probs_grad = np.zeros((T, K), P.dtype)
        probs_grad[use] = P[D[use] - start]
    return token_grad, probs_grad
