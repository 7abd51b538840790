"""MoeTokenUnpermute: put the expert outputs back in token order, summing each token's top-k rows weighted by
its routing probabilities (``torch_npu.npu_moe_token_unpermute``, the inverse of MoeTokenPermute)."""
from __future__ import annotations

import numpy as np

from .._spec import FLOATS, INT32, Attr, IntList, OpSpec, Output, Tensor


def _tokens(a):
    """op-plugin's output rows: len(sorted_indices) // top-k, top-k = probs dim 1 (1 without probs)."""
    if a.probs is not None:
        return a.probs.shape[0]
    return a.sorted_indices.shape[0]


def _examples(rng):
    from .._dtypes import bfloat16

    out = []
    for t, k, h, dt, pdt, rows in ((3, 2, 2, np.float32, np.float32, 6), (64, 8, 256, np.float16, np.float32, 400),
                                   (128, 4, 1024, bfloat16, bfloat16, 512), (33, 1, 16, np.float32, None, 20),
                                   (0, 2, 8, np.float16, np.float16, 0)):
        out.append(dict(permuted_tokens=rng.standard_normal((rows, h)).astype(dt),
                        sorted_indices=rng.permutation(t * k).astype(np.int32),
                        probs=rng.random((t, k)).astype(pdt) if pdt is not None else None))
    return out


SPEC = OpSpec(
    operator="MoeTokenUnpermute", api="aclnnMoeTokenUnpermute", function="moe_token_unpermute",
    torch_npu=('npu_moe_token_unpermute(Tensor permuted_tokens, Tensor sorted_indices, Tensor? probs=None, '
               'bool padded_mode=False, int[]? restore_shape=None) -> Tensor',),
    params=(Tensor("permuted_tokens", "permutedTokens", dtypes=FLOATS, ndim=2),
            Tensor("sorted_indices", "sortedIndices", dtypes=INT32, ndim=1),
            Tensor("probs", "probsOptional", dtypes=FLOATS, ndim=2, optional=True, default=None),
            Attr("padded_mode", "paddedMode", kind="bool", default=False),
            IntList("restore_shape", "restoreShapeOptional", default=None)),
    outputs=(Output("out", "out", shape=lambda a: (_tokens(a), a.permuted_tokens.shape[1]),
                    dtype=lambda a: a.permuted_tokens.dtype),),
    examples=_examples,
    doc="""``torch_npu.npu_moe_token_unpermute``: returns ``out [T, H]`` in the dtype of permuted_tokens.

    permuted_tokens [rows, H] fp16/bf16/fp32; sorted_indices int32 [T*K] (as MoeTokenPermute returns it);
    probs [T, K] fp16/bf16/fp32 (any of them) or None (then K = 1). ``out[t] = sum_k probs[t, k] *
    permuted_tokens[sorted_indices[t*K + k]]`` over rows < rows of permuted_tokens with probs != 0, in fp32
    (k ascending), rounded to nearest-even; a negative index is an error unless its prob is 0. padded_mode must
    be False; restore_shape is ignored (as documented for padded_mode False).""")
