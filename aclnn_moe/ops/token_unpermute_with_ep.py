"""MoeTokenUnpermuteWithEp: put the expert outputs of one expert-parallel window back in token order, summing
each token's top-k rows weighted by its routing probabilities (aclnn only; torch_npu has no binding)."""
from __future__ import annotations

import numpy as np

from .._spec import FLOATS, INT32, KW, Attr, IntList, OpSpec, Output, Tensor


def _prepare(a):
    if a.num_topk is None:
        a.num_topk = a.probs.shape[1] if a.probs is not None else 1


def _examples(rng):
    from .._dtypes import bfloat16

    out = []
    for t, k, h, dt, pdt, window in ((3, 2, 2, np.float32, np.float32, (1, 5)),
                                     (64, 8, 256, np.float16, np.float32, (100, 300)),
                                     (128, 4, 1024, bfloat16, bfloat16, None),
                                     (33, 1, 16, np.float32, None, (0, 33)),
                                     (0, 2, 8, np.float16, np.float16, (0, 0))):
        rows = t * k if window is None else window[1] - window[0]
        out.append(dict(permuted_tokens=rng.standard_normal((rows, h)).astype(dt),
                        sorted_indices=rng.permutation(t * k).astype(np.int32),
                        probs=rng.random((t, k)).astype(pdt) if pdt is not None else None, num_topk=k,
                        range=window))
    return out


SPEC = OpSpec(
    operator="MoeTokenUnpermuteWithEp", api="aclnnMoeTokenUnpermuteWithEp", function="moe_token_unpermute_with_ep",
    params=(Tensor("permuted_tokens", "permutedTokens", dtypes=FLOATS, ndim=2),
            Tensor("sorted_indices", "sortedIndices", dtypes=INT32, ndim=1),
            KW,
            Tensor("probs", "probsOptional", dtypes=FLOATS, ndim=2, optional=True, default=None),
            Attr("num_topk", "numTopk", default=None),
            IntList("range", "rangeOptional", default=None),
            Attr("padded_mode", "paddedMode", kind="bool", default=False),
            IntList("restore_shape", "restoreShapeOptional", default=None)),
    outputs=(Output("out", "out",
                    shape=lambda a: (a.sorted_indices.shape[0] // max(a.num_topk, 1), a.permuted_tokens.shape[1]),
                    dtype=lambda a: a.permuted_tokens.dtype),),
    prepare=_prepare, examples=_examples,
    doc="""``aclnnMoeTokenUnpermuteWithEp``.

    permuted_tokens [rows, H] fp16/bf16/fp32 (the rows of window [start, end)); sorted_indices int32 [T*K] (as
    MoeTokenPermuteWithEp returns it); probs [T, K] fp16/bf16/fp32 (any of them, independent of the tokens);
    num_topk = K (default probs.shape[1], or 1); range [start, end] (None: 0 and rows, i.e. MoeTokenUnpermute);
    padded_mode False only; restore_shape None or [T, H]. num_topk / range / restore_shape rules are reported
    by the operator.

    Returns out [T, H] in the tokens dtype: ``out[t] = sum_k probs[t, k] * permuted_tokens[d - start]`` over
    d = sorted_indices[t*K + k] in [start, end) with probs[t, k] != 0, accumulated in fp32 (k ascending) and
    rounded to nearest-even.""")
