"""MoeTokenUnpermuteWithEpGrad: the backward of MoeTokenUnpermuteWithEp, scattering each token's gradient (times its
routing probability) to the rows of one expert-parallel window, and the probs gradient as row dot products (aclnn
only; torch_npu has no binding)."""
from __future__ import annotations

import numpy as np

from .._dtypes import FLOATS
from .._operation import Operation
from ..reference.token_unpermute_with_ep_grad import window
from ._grad_check import same

OPERATOR = "MoeTokenUnpermuteWithEpGrad"
APIS = ("aclnnMoeTokenUnpermuteWithEpGrad",)


class MoeTokenUnpermuteWithEpGrad(Operation):
    api = "aclnnMoeTokenUnpermuteWithEpGrad"

    def __init__(self, unpermuted_tokens_grad, sorted_indices, *, permuted_tokens=None, probs=None,
                 padded_mode=False, restore_shape=None, range=None, topk_num=None, stream=None):
        super().__init__(stream=stream)
        grad = self._input("unpermuted_tokens_grad", unpermuted_tokens_grad, dtypes=FLOATS, ndim=2)
        sorted_indices = self._input("sorted_indices", sorted_indices, dtypes=("int32",), ndim=1)
        permuted = self._input("permuted_tokens", permuted_tokens, dtypes=FLOATS, ndim=2, optional=True)
        probs = self._input("probs", probs, dtypes=FLOATS, ndim=2, optional=True)
        if topk_num is None:
            topk_num = probs.shape[1] if probs is not None else 1
        if range is not None and len(range) == 0:
            range = None
        n = sorted_indices.shape[0]
        try:  # rows of the gradient of permuted_tokens: its shape, else the range length
            start, end = window(n, range, permuted.shape[0] if permuted is not None else None)
        except ValueError:  # reported by the operator (561002)
            start, end = 0, n
        rows = permuted.shape[0] if permuted is not None else end - start
        k = probs.shape[1] if probs is not None else max(int(topk_num), 1)
        t = grad.shape[0]
        pt_grad = self._output("permuted_tokens_grad", (rows, grad.shape[1]), grad.dtype)
        probs_grad = self._output("probs_grad", (t, k), probs.dtype if probs is not None else grad.dtype)
        rng = self._int_array(range) if range is not None else None
        restore = self._int_array(restore_shape) if restore_shape is not None else None
        self._args = [grad, sorted_indices, permuted, probs, bool(padded_mode), restore, rng, int(topk_num), pt_grad,
                      probs_grad]
        self._results = (pt_grad, probs_grad if probs is not None else None)


def moe_token_unpermute_with_ep_grad(unpermuted_tokens_grad, sorted_indices, *, permuted_tokens=None, probs=None,
                                     padded_mode=False, restore_shape=None, range=None, topk_num=None, stream=None):
    """``aclnnMoeTokenUnpermuteWithEpGrad``.

    unpermuted_tokens_grad [T, H] fp16/bf16/fp32 (the gradient of the forward's out); sorted_indices int32 [T*K];
    permuted_tokens [rows, H] (the forward's input, same dtype; required with probs); probs [T, K] any float dtype;
    padded_mode False only; restore_shape None or [T, H]; range ``[start, end]`` (negative bounds count from T*K,
    clamped to [0, T*K]; None: [0, T*K)); topk_num = K without probs (default 1).

    Returns ``(permuted_tokens_grad [rows, H], probs_grad [T, K] or None)``, rows = permuted_tokens' rows or the
    range length: for d = sorted_indices[t*K + k] in [start, end) (and below rows when start is 0)
    ``permuted_tokens_grad[d - start] = grad[t] * probs[t, k]`` and ``probs_grad[t, k] = sum_j
    permuted_tokens[d - start, j] * grad[t, j]``; other rows and entries are 0.
    """
    return MoeTokenUnpermuteWithEpGrad(unpermuted_tokens_grad, sorted_indices, permuted_tokens=permuted_tokens,
                                       probs=probs, padded_mode=padded_mode, restore_shape=restore_shape, range=range,
                                       topk_num=topk_num, stream=stream).run_once()


def selftest(rng: np.random.Generator) -> None:
    from .._dtypes import bfloat16
    from ..reference.token_unpermute_with_ep_grad import moe_token_unpermute_with_ep_grad as ref

    for t, k, h, dt, pdt, win in ((3, 2, 2, np.float32, np.float32, (1, 5)), (64, 8, 256, np.float16, np.float32,
                                  (100, 300)), (128, 4, 1024, bfloat16, bfloat16, None),
                                  (33, 1, 16, np.float32, None, (0, 33)), (0, 2, 8, np.float16, np.float16, None)):
        s = rng.permutation(t * k).astype(np.int32)
        rows = t * k if win is None else win[1] - win[0]
        grad = rng.standard_normal((t, h)).astype(dt)
        permuted = rng.standard_normal((rows, h)).astype(dt)
        probs = rng.random((t, k)).astype(pdt) if pdt is not None else None
        kw = dict(permuted_tokens=permuted, probs=probs, range=win, topk_num=k)
        for name, g, r in zip(("permuted_tokens_grad", "probs_grad"), moe_token_unpermute_with_ep_grad(grad, s, **kw),
                              ref(grad, s, **kw)):
            same(g, r, name)
