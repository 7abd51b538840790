"""MoeTokenUnpermuteWithEpGrad: the backward of MoeTokenUnpermuteWithEp, scattering each token's gradient (times its
routing probability) to the rows of one expert-parallel window, and the probs gradient as row dot products (aclnn
only; torch_npu has no binding)."""
from __future__ import annotations

import numpy as np

from .._spec import FLOATS, INT32, KW, Attr, IntList, OpSpec, Output, Tensor
from ..reference.token_unpermute_with_ep_grad import window


def _prepare(a):
    if a.topk_num is None:
        a.topk_num = a.probs.shape[1] if a.probs is not None else 1


def _k(a):
    return a.probs.shape[1] if a.probs is not None else max(a.topk_num, 1)


def _rows(a):
    """rows of the gradient of permuted_tokens: its shape, else the range length"""
    if a.permuted_tokens is not None:
        return a.permuted_tokens.shape[0]
    n = a.sorted_indices.shape[0]
    try:
        start, end = window(n, a.range, None)
    except ValueError:  # the operator reports the rule (561002)
        return n
    return end - start


def _examples(rng):
    from .._dtypes import bfloat16

    out = []
    for t, k, h, dt, pdt, win in ((3, 2, 2, np.float32, np.float32, (1, 5)),
                                  (64, 8, 256, np.float16, np.float32, (100, 300)),
                                  (128, 4, 1024, bfloat16, bfloat16, None),
                                  (33, 1, 16, np.float32, None, (0, 33)), (0, 2, 8, np.float16, np.float16, None)):
        rows = t * k if win is None else win[1] - win[0]
        out.append(dict(unpermuted_tokens_grad=rng.standard_normal((t, h)).astype(dt),
                        sorted_indices=rng.permutation(t * k).astype(np.int32),
                        permuted_tokens=rng.standard_normal((rows, h)).astype(dt),
                        probs=rng.random((t, k)).astype(pdt) if pdt is not None else None, range=win, topk_num=k))
    return out


SPEC = OpSpec(
    operator="MoeTokenUnpermuteWithEpGrad", api="aclnnMoeTokenUnpermuteWithEpGrad",
    function="moe_token_unpermute_with_ep_grad",
    params=(Tensor("unpermuted_tokens_grad", "unpermutedTokensGrad", dtypes=FLOATS, ndim=2),
            Tensor("sorted_indices", "sortedIndices", dtypes=INT32, ndim=1),
            KW,
            Tensor("permuted_tokens", "permutedTokensOptional", dtypes=FLOATS, ndim=2, optional=True,
                   same_dtype="unpermuted_tokens_grad", default=None),
            Tensor("probs", "probsOptional", dtypes=FLOATS, ndim=2, optional=True, default=None),
            Attr("padded_mode", "paddedMode", kind="bool", default=False),
            IntList("restore_shape", "restoreShapeOptional", default=None),
            IntList("range", "rangeOptional", default=None),
            Attr("topk_num", "topkNum", default=None)),
    outputs=(Output("permuted_tokens_grad", "permutedTokensGradOut",
                    shape=lambda a: (_rows(a), a.unpermuted_tokens_grad.shape[1]),
                    dtype=lambda a: a.unpermuted_tokens_grad.dtype),
             # a required output; written only with probs
             Output("probs_grad", "probsGradOut", shape=lambda a: (a.unpermuted_tokens_grad.shape[0], _k(a)),
                    dtype=lambda a: a.probs.dtype if a.probs is not None else a.unpermuted_tokens_grad.dtype,
                    returned=lambda a: a.probs is not None)),
    prepare=_prepare, examples=_examples,
    doc="""``aclnnMoeTokenUnpermuteWithEpGrad``: returns ``(permuted_tokens_grad, probs_grad)``.

    unpermuted_tokens_grad [T, H] fp16/bf16/fp32 (the gradient of the forward's out); sorted_indices int32 [T*K];
    permuted_tokens [rows, H] (the forward's input, same dtype; required with probs); probs [T, K] any float dtype;
    padded_mode False only; restore_shape None or [T, H]; range ``[start, end]`` (negative bounds count from T*K,
    clamped to [0, T*K]; None: [0, T*K)); topk_num = K without probs (default 1).

    permuted_tokens_grad [rows, H], rows = permuted_tokens' rows or the range length: for d = sorted_indices[t*K +
    k] in [start, end) (and below rows when start is 0) ``permuted_tokens_grad[d - start] = grad[t] * probs[t, k]``
    (other rows 0); probs_grad [T, K] (None without probs): ``sum_j permuted_tokens[d - start, j] * grad[t, j]``,
    0 outside the window.""")
