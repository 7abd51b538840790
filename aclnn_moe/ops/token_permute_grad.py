"""MoeTokenPermuteGrad: the backward of MoeTokenPermute, summing each token's K gradient rows."""
from __future__ import annotations

import numpy as np

from .._dtypes import FLOATS
from .._operation import Operation
from ._grad_check import same

OPERATOR = "MoeTokenPermuteGrad"
APIS = ("aclnnMoeTokenPermuteGrad",)


class MoeTokenPermuteGrad(Operation):
    api = "aclnnMoeTokenPermuteGrad"

    def __init__(self, permuted_output_grad, sorted_indices, num_topk: int = 1, padded_mode=False, stream=None):
        super().__init__(stream=stream)
        grad = self._input("permuted_output_grad", permuted_output_grad, dtypes=FLOATS, ndim=2)
        sorted_indices = self._input("sorted_indices", sorted_indices, dtypes=("int32",), ndim=1)
        k = max(int(num_topk), 1)  # num_topk rules are reported by the operator (561002)
        out = self._output("out", (sorted_indices.shape[0] // k, grad.shape[1]), grad.dtype)
        self._args = [grad, sorted_indices, int(num_topk), bool(padded_mode), out]
        self._results = out


def moe_token_permute_grad(permuted_output_grad, sorted_indices, num_topk: int = 1, padded_mode=False, stream=None):
    """``aclnnMoeTokenPermuteGrad``.

    permuted_output_grad [rows, H] fp16/bf16/fp32 (rows = the forward's num_out_tokens); sorted_indices int32
    [T*K] (as MoeTokenPermute returns it); num_topk = K; padded_mode False only.

    Returns ``out [T, H]``: ``out[t]`` sums, k ascending in fp32, the rows d = sorted_indices[t*K + k] < rows.
    """
    return MoeTokenPermuteGrad(permuted_output_grad, sorted_indices, num_topk, padded_mode, stream=stream).run_once()


def selftest(rng: np.random.Generator) -> None:
    from .._dtypes import bfloat16
    from ..reference.token_permute_grad import moe_token_permute_grad as ref

    for t, k, h, dt, rows in ((3, 2, 4, np.float32, 6), (64, 8, 256, bfloat16, 300), (40, 3, 33, np.float16, 0)):
        s = rng.permutation(t * k).astype(np.int32)
        grad = rng.standard_normal((rows, h)).astype(dt)
        same(moe_token_permute_grad(grad, s, k), ref(grad, s, k), "out")
