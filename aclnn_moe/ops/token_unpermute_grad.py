"""MoeTokenUnpermuteGrad: the backward of MoeTokenUnpermute (the gradients of permuted_tokens and probs)."""
from __future__ import annotations

import numpy as np

from .._dtypes import FLOATS
from .._operation import Operation
from ._grad_check import same

OPERATOR = "MoeTokenUnpermuteGrad"
APIS = ("aclnnMoeTokenUnpermuteGrad",)


class MoeTokenUnpermuteGrad(Operation):
    api = "aclnnMoeTokenUnpermuteGrad"

    def __init__(self, permuted_tokens, unpermuted_tokens_grad, sorted_indices, *, probs=None, padded_mode=False,
                 restore_shape=None, stream=None):
        super().__init__(stream=stream)
        permuted = self._input("permuted_tokens", permuted_tokens, dtypes=FLOATS, ndim=2)
        grad = self._input("unpermuted_tokens_grad", unpermuted_tokens_grad, dtypes=FLOATS, ndim=2)
        sorted_indices = self._input("sorted_indices", sorted_indices, dtypes=("int32",), ndim=1)
        probs = self._input("probs", probs, dtypes=FLOATS, ndim=2, optional=True)
        k = probs.shape[1] if probs is not None else 1
        pt_grad = self._output("permuted_tokens_grad", tuple(permuted.shape), permuted.dtype)
        probs_grad = self._output("probs_grad", (grad.shape[0], k), probs.dtype if probs is not None else grad.dtype)
        restore = self._int_array(restore_shape) if restore_shape is not None else None
        self._args = [permuted, grad, sorted_indices, probs, bool(padded_mode), restore, pt_grad, probs_grad]
        self._results = (pt_grad, probs_grad if probs is not None else None)


def moe_token_unpermute_grad(permuted_tokens, unpermuted_tokens_grad, sorted_indices, *, probs=None,
                             padded_mode=False, restore_shape=None, stream=None):
    """``aclnnMoeTokenUnpermuteGrad``.

    permuted_tokens [rows, H] fp16/bf16/fp32 (the forward's input; rows = its num_out_tokens);
    unpermuted_tokens_grad [T, H] same dtype; sorted_indices int32 [T*K]; probs [T, K] any float dtype (K = 1
    without); padded_mode False only; restore_shape None or [T, H].

    Returns ``(permuted_tokens_grad [rows, H], probs_grad [T, K] or None)``: for d = sorted_indices[t*K + k] < rows
    ``permuted_tokens_grad[d] = grad[t] * probs[t, k]`` and ``probs_grad[t, k] = sum_j permuted_tokens[d, j] *
    grad[t, j]``; other rows and entries are 0.
    """
    return MoeTokenUnpermuteGrad(permuted_tokens, unpermuted_tokens_grad, sorted_indices, probs=probs,
                                 padded_mode=padded_mode, restore_shape=restore_shape, stream=stream).run_once()


def selftest(rng: np.random.Generator) -> None:
    from .._dtypes import bfloat16
    from ..reference.token_unpermute_grad import moe_token_unpermute_grad as ref

    for t, k, h, dt, pdt, rows in ((3, 2, 4, np.float32, np.float32, 6), (64, 8, 256, bfloat16, np.float32, 300),
                                   (40, 1, 33, np.float16, None, 40)):
        s = rng.permutation(t * k).astype(np.int32)
        permuted = rng.standard_normal((rows, h)).astype(dt)
        grad = rng.standard_normal((t, h)).astype(dt)
        probs = rng.random((t, k)).astype(pdt) if pdt is not None else None
        for name, g, r in zip(("permuted_tokens_grad", "probs_grad"),
                              moe_token_unpermute_grad(permuted, grad, s, probs=probs),
                              ref(permuted, grad, s, probs=probs)):
            same(g, r, name)
