"""MoeTokenUnpermuteWithEp: put the expert outputs of one expert-parallel window back in token order, summing
each token's top-k rows weighted by its routing probabilities (aclnn only; torch_npu has no binding)."""
from __future__ import annotations

import numpy as np

from .._dtypes import FLOATS
from .._operation import Operation

OPERATOR = "MoeTokenUnpermuteWithEp"
APIS = ("aclnnMoeTokenUnpermuteWithEp",)


class MoeTokenUnpermuteWithEp(Operation):
    api = "aclnnMoeTokenUnpermuteWithEp"

    def __init__(self, permuted_tokens, sorted_indices, *, probs=None, num_topk=None, range=None,
                 padded_mode=False, restore_shape=None, stream=None):
        super().__init__(stream=stream)
        permuted = self._input("permuted_tokens", permuted_tokens, dtypes=FLOATS, ndim=2)
        sorted_indices = self._input("sorted_indices", sorted_indices, dtypes=("int32",), ndim=1)
        probs = self._input("probs", probs, dtypes=FLOATS, ndim=2, optional=True)
        if num_topk is None:
            num_topk = probs.shape[1] if probs is not None else 1
        num_topk = int(num_topk)
        if range is not None and len(range) == 0:
            range = None
        # num_topk / range / restore_shape rules are reported by the operator (status 561002)
        t = sorted_indices.shape[0] // max(num_topk, 1)
        out = self._output("out", (t, permuted.shape[1]), permuted.dtype)
        rng = self._int_array(range) if range is not None else None
        restore = self._int_array(restore_shape) if restore_shape is not None else None
        self._args = [permuted, sorted_indices, probs, num_topk, rng, bool(padded_mode), restore, out]
        self._results = out


def moe_token_unpermute_with_ep(permuted_tokens, sorted_indices, *, probs=None, num_topk=None, range=None,
                                padded_mode=False, restore_shape=None, stream=None):
    """``aclnnMoeTokenUnpermuteWithEp``.

    permuted_tokens [rows, H] fp16/bf16/fp32 (the rows of window [start, end)); sorted_indices int32 [T*K] (as
    MoeTokenPermuteWithEp returns it); probs [T, K] fp16/bf16/fp32 (any of them, independent of the tokens);
    num_topk = K (default probs.shape[1], or 1); range [start, end] (None: 0 and rows, i.e. MoeTokenUnpermute);
    padded_mode False only; restore_shape None or [T, H].

    Returns out [T, H] in the tokens dtype: ``out[t] = sum_k probs[t, k] * permuted_tokens[d - start]`` over
    d = sorted_indices[t*K + k] in [start, end) with probs[t, k] != 0, accumulated in fp32 (k ascending) and
    rounded to nearest-even.
    """
    return MoeTokenUnpermuteWithEp(permuted_tokens, sorted_indices, probs=probs, num_topk=num_topk, range=range,
                                   padded_mode=padded_mode, restore_shape=restore_shape, stream=stream).run_once()


def selftest(rng: np.random.Generator) -> None:
    from .._dtypes import bfloat16
    from ..reference.token_unpermute_with_ep import moe_token_unpermute_with_ep as ref

    for t, k, h, dt, pdt, window in ((3, 2, 2, np.float32, np.float32, (1, 5)),
                                     (64, 8, 256, np.float16, np.float32, (100, 300)),
                                     (128, 4, 1024, bfloat16, bfloat16, None),
                                     (33, 1, 16, np.float32, None, (0, 33)),
                                     (0, 2, 8, np.float16, np.float16, (0, 0))):
        total = t * k
        sorted_indices = rng.permutation(total).astype(np.int32)
        rows = total if window is None else window[1] - window[0]
        permuted = rng.standard_normal((rows, h)).astype(dt)
        probs = rng.random((t, k)).astype(pdt) if pdt is not None else None
        got = moe_token_unpermute_with_ep(permuted, sorted_indices, probs=probs, num_topk=k, range=window)
        exp = ref(permuted, sorted_indices, probs=probs, num_topk=k, range=window)
        assert got.dtype == exp.dtype and got.shape == exp.shape
        if got.dtype == bfloat16:
            got, exp = got.view(np.uint16), exp.view(np.uint16)
        np.testing.assert_array_equal(got, exp)
