"""MoeTokenPermuteWithEpGrad: the backward of MoeTokenPermuteWithEp, summing each token's gradient rows of one
expert-parallel window and gathering its probs gradient (aclnn only; torch_npu has no binding)."""
from __future__ import annotations

import numpy as np

from .._spec import FLOATS, INT32, KW, Attr, IntList, OpSpec, Output, Tensor


def _examples(rng):
    from .._dtypes import bfloat16

    out = []
    for t, k, h, dt, window, with_probs in ((3, 2, 2, np.float32, (1, 5), True),
                                            (64, 8, 256, np.float16, (100, 300), True),
                                            (128, 4, 1024, bfloat16, None, False),
                                            (33, 1, 16, np.float32, (0, 33), False),
                                            (0, 2, 8, np.float16, (0, 0), True)):
        rows = t * k if window is None else window[1] - window[0]
        out.append(dict(permuted_tokens_output_grad=rng.standard_normal((rows, h)).astype(dt),
                        sorted_indices=rng.permutation(t * k).astype(np.int32),
                        permuted_probs_output_grad=rng.standard_normal(rows).astype(dt) if with_probs else None,
                        num_topk=k, range=window))
    return out


def _t(a):
    return a.sorted_indices.shape[0] // max(a.num_topk, 1)


SPEC = OpSpec(
    operator="MoeTokenPermuteWithEpGrad", api="aclnnMoeTokenPermuteWithEpGrad",
    function="moe_token_permute_with_ep_grad",
    params=(Tensor("permuted_tokens_output_grad", "permutedTokensOutputGrad", dtypes=FLOATS, ndim=2),
            Tensor("sorted_indices", "sortedIndices", dtypes=INT32, ndim=1),
            KW,
            Tensor("permuted_probs_output_grad", "permutedProbsOutputGradOptional", dtypes=FLOATS, ndim=1,
                   optional=True, same_dtype="permuted_tokens_output_grad", default=None),
            Attr("num_topk", "numTopk", default=1),
            IntList("range", "rangeOptional", default=None),
            Attr("padded_mode", "paddedMode", kind="bool", default=False)),
    outputs=(Output("token_grad", "tokenGradOut",
                    shape=lambda a: (_t(a), a.permuted_tokens_output_grad.shape[1]),
                    dtype=lambda a: a.permuted_tokens_output_grad.dtype),
             # a required output; written only with a probs gradient and a range (the fallback ignores them)
             Output("probs_grad", "probsGradOut", shape=lambda a: (_t(a), max(a.num_topk, 1)),
                    dtype=lambda a: a.permuted_tokens_output_grad.dtype,
                    returned=lambda a: a.permuted_probs_output_grad is not None and a.range is not None)),
    examples=_examples,
    doc="""``aclnnMoeTokenPermuteWithEpGrad``: returns ``(token_grad, probs_grad)``.

    permuted_tokens_output_grad [end - start, H] fp16/bf16/fp32 (the gradient of the forward's permute_tokens; the
    doc's [(end - start) * K, H] is accepted, only its first end - start rows are read); sorted_indices int32
    [T*K] (as MoeTokenPermuteWithEp returns it); permuted_probs_output_grad [end - start] (optional, same dtype);
    num_topk = K; range ``[start, end]`` with 0 <= start <= end <= T*K (None: MoeTokenPermuteGrad, start 0 and
    end = rows of the gradient, the probs gradient ignored); padded_mode False only.

    token_grad [T, H]: ``token_grad[t]`` sums, k ascending in fp32, the rows ``d - start`` of the gradient for
    d = sorted_indices[t*K + k] in [start, end); probs_grad [T, K] (None without a probs gradient or a range):
    the probs gradient at d - start, 0 outside the window.""")
