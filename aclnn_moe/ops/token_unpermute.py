"""MoeTokenUnpermute: put the expert outputs back in token order, summing each token's top-k rows weighted by
its routing probabilities (``torch_npu.npu_moe_token_unpermute``, the inverse of MoeTokenPermute)."""
from __future__ import annotations

import numpy as np

from .._dtypes import FLOATS
from .._operation import Operation

OPERATOR = "MoeTokenUnpermute"
APIS = ("aclnnMoeTokenUnpermute",)


class MoeTokenUnpermute(Operation):
    api = "aclnnMoeTokenUnpermute"

    def __init__(self, permuted_tokens, sorted_indices, probs=None, padded_mode: bool = False, restore_shape=None,
                 *, stream=None):
        super().__init__(stream=stream)
        permuted = self._input("permuted_tokens", permuted_tokens, dtypes=FLOATS, ndim=2)
        sorted_indices = self._input("sorted_indices", sorted_indices, dtypes=("int32",), ndim=1)
        probs = self._input("probs", probs, dtypes=FLOATS, ndim=2, optional=True)
        topk = probs.shape[1] if probs is not None else 1
        tokens = sorted_indices.shape[0] // topk if topk else 0  # op-plugin's output size
        if probs is not None:
            tokens = probs.shape[0]
        out = self._output("out", (tokens, permuted.shape[1]), permuted.dtype)
        restore = self._int_array(restore_shape) if restore_shape is not None else None
        self._args = [permuted, sorted_indices, probs, bool(padded_mode), restore, out]
        self._results = out


def moe_token_unpermute(permuted_tokens, sorted_indices, probs=None, padded_mode: bool = False, restore_shape=None,
                        *, stream=None):
    """``torch_npu.npu_moe_token_unpermute``: returns ``out [T, H]`` in the dtype of permuted_tokens.

    permuted_tokens [rows, H] fp16/bf16/fp32; sorted_indices int32 [T*K] (as MoeTokenPermute returns it);
    probs [T, K] fp16/bf16/fp32 (any of them) or None (then K = 1). ``out[t] = sum_k probs[t, k] *
    permuted_tokens[sorted_indices[t*K + k]]`` over rows < rows of permuted_tokens with probs != 0, in fp32
    (k ascending), rounded to nearest-even. padded_mode must be False; restore_shape is ignored.
    """
    return MoeTokenUnpermute(permuted_tokens, sorted_indices, probs, padded_mode, restore_shape,
                             stream=stream).run_once()


def selftest(rng: np.random.Generator) -> None:
    from .._dtypes import bfloat16
    from ..reference.token_unpermute import moe_token_unpermute as ref

    for t, k, h, dt, pdt, rows in ((3, 2, 2, np.float32, np.float32, 6), (64, 8, 256, np.float16, np.float32, 400),
                                   (128, 4, 1024, bfloat16, bfloat16, 512), (33, 1, 16, np.float32, None, 20),
                                   (0, 2, 8, np.float16, np.float16, 0)):
        sorted_indices = rng.permutation(t * k).astype(np.int32)
        permuted = rng.standard_normal((rows, h)).astype(dt)
        probs = rng.random((t, k)).astype(pdt) if pdt is not None else None
        got = moe_token_unpermute(permuted, sorted_indices, probs)
        exp = ref(permuted, sorted_indices, probs)
        assert got.dtype == exp.dtype and got.shape == exp.shape
        np.testing.assert_array_equal(got.view(np.uint8), exp.view(np.uint8))
