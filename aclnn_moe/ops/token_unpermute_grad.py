"""MoeTokenUnpermuteGrad: the backward of MoeTokenUnpermute (the gradients of permuted_tokens and probs)."""
from __future__ import annotations

import numpy as np

from .._spec import FLOATS, INT32, KW, Attr, IntList, OpSpec, Output, Tensor


def _examples(rng):
    from .._dtypes import bfloat16

    out = []
    for t, k, h, dt, pdt, rows in ((3, 2, 4, np.float32, np.float32, 6), (64, 8, 256, bfloat16, np.float32, 300),
                                   (40, 1, 33, np.float16, None, 40)):
        out.append(dict(permuted_tokens=rng.standard_normal((rows, h)).astype(dt),
                        unpermuted_tokens_grad=rng.standard_normal((t, h)).astype(dt),
                        sorted_indices=rng.permutation(t * k).astype(np.int32),
                        probs=rng.random((t, k)).astype(pdt) if pdt is not None else None))
    return out


SPEC = OpSpec(
    operator="MoeTokenUnpermuteGrad", api="aclnnMoeTokenUnpermuteGrad", function="moe_token_unpermute_grad",
    params=(Tensor("permuted_tokens", "permuteTokens", dtypes=FLOATS, ndim=2),
            Tensor("unpermuted_tokens_grad", "unpermutedTokensGrad", dtypes=FLOATS, ndim=2,
                   same_dtype="permuted_tokens"),
            Tensor("sorted_indices", "sortedIndices", dtypes=INT32, ndim=1),
            KW,
            Tensor("probs", "probsOptional", dtypes=FLOATS, ndim=2, optional=True, default=None),
            Attr("padded_mode", "paddedMode", kind="bool", default=False),
            IntList("restore_shape", "restoreShapeOptional", default=None)),
    outputs=(Output("permuted_tokens_grad", "permutedTokensGradOut", shape=lambda a: a.permuted_tokens.shape,
                    dtype=lambda a: a.permuted_tokens.dtype),
             # a required output; written only with probs
             Output("probs_grad", "probsGradOut",
                    shape=lambda a: (a.unpermuted_tokens_grad.shape[0], a.probs.shape[1] if a.probs is not None else 1),
                    dtype=lambda a: a.probs.dtype if a.probs is not None else a.permuted_tokens.dtype,
                    returned=lambda a: a.probs is not None)),
    examples=_examples,
    doc="""``aclnnMoeTokenUnpermuteGrad``: returns ``(permuted_tokens_grad, probs_grad)``.

    permuted_tokens [rows, H] fp16/bf16/fp32 (the forward's input; rows = its num_out_tokens);
    unpermuted_tokens_grad [T, H] same dtype; sorted_indices int32 [T*K]; probs [T, K] any float dtype (K = 1
    without); padded_mode False only; restore_shape None or [T, H].

    permuted_tokens_grad [rows, H]: for d = sorted_indices[t*K + k] < rows ``grad[t] * probs[t, k]`` (other rows
    0); probs_grad [T, K] (None without probs): ``sum_j permuted_tokens[d, j] * grad[t, j]`` (0 for dropped d).""")
