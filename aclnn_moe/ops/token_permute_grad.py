"""MoeTokenPermuteGrad: the backward of MoeTokenPermute, summing each token's K gradient rows."""
from __future__ import annotations

import numpy as np

from .._spec import FLOATS, INT32, Attr, OpSpec, Output, Tensor


def _examples(rng):
    from .._dtypes import bfloat16

    out = []
    for t, k, h, dt, rows in ((3, 2, 4, np.float32, 6), (64, 8, 256, bfloat16, 300), (40, 3, 33, np.float16, 0)):
        out.append(dict(permuted_output_grad=rng.standard_normal((rows, h)).astype(dt),
                        sorted_indices=rng.permutation(t * k).astype(np.int32), num_topk=k))
    return out


SPEC = OpSpec(
    operator="MoeTokenPermuteGrad", api="aclnnMoeTokenPermuteGrad", function="moe_token_permute_grad",
    params=(Tensor("permuted_output_grad", "permutedOutputGrad", dtypes=FLOATS, ndim=2),
            Tensor("sorted_indices", "sortedIndices", dtypes=INT32, ndim=1),
            Attr("num_topk", "numTopk", default=1),
            Attr("padded_mode", "paddedMode", kind="bool", default=False)),
    outputs=(Output("out", "out",
                    shape=lambda a: (a.sorted_indices.shape[0] // max(a.num_topk, 1), a.permuted_output_grad.shape[1]),
                    dtype=lambda a: a.permuted_output_grad.dtype),),
    examples=_examples,
    doc="""``aclnnMoeTokenPermuteGrad``.

    permuted_output_grad [rows, H] fp16/bf16/fp32 (rows = the forward's num_out_tokens); sorted_indices int32
    [T*K] (as MoeTokenPermute returns it); num_topk = K; padded_mode False only.

    Returns ``out [T, H]``: ``out[t]`` sums, k ascending in fp32, the rows d = sorted_indices[t*K + k] < rows.""")
