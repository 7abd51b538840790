"""MoeTokenPermuteWithEpGrad: the backward of MoeTokenPermuteWithEp, summing each token's gradient rows of one
expert-parallel window and gathering its probs gradient (aclnn only; torch_npu has no binding)."""
from __future__ import annotations

import numpy as np

from .._dtypes import FLOATS
from .._operation import Operation
from ._grad_check import same

OPERATOR = "MoeTokenPermuteWithEpGrad"
APIS = ("aclnnMoeTokenPermuteWithEpGrad",)


class MoeTokenPermuteWithEpGrad(Operation):
    api = "aclnnMoeTokenPermuteWithEpGrad"

    def __init__(self, permuted_tokens_output_grad, sorted_indices, *, permuted_probs_output_grad=None,
                 num_topk: int = 1, range=None, padded_mode=False, stream=None):
        super().__init__(stream=stream)
        grad = self._input("permuted_tokens_output_grad", permuted_tokens_output_grad, dtypes=FLOATS, ndim=2)
        sorted_indices = self._input("sorted_indices", sorted_indices, dtypes=("int32",), ndim=1)
        probs = self._input("permuted_probs_output_grad", permuted_probs_output_grad, dtypes=FLOATS, ndim=1,
                            optional=True)
        if range is not None and len(range) == 0:
            range = None
        k = max(int(num_topk), 1)  # num_topk / range rules are reported by the operator (561002)
        t = sorted_indices.shape[0] // k
        token_grad = self._output("token_grad", (t, grad.shape[1]), grad.dtype)
        # probsGradOut is a required output; without a probs gradient (or a range) it is not written
        probs_grad = self._output("probs_grad", (t, k), probs.dtype if probs is not None else grad.dtype)
        rng = self._int_array(range) if range is not None else None
        self._args = [grad, sorted_indices, probs, int(num_topk), rng, bool(padded_mode), token_grad, probs_grad]
        self._results = (token_grad, probs_grad if probs is not None and range is not None else None)


def moe_token_permute_with_ep_grad(permuted_tokens_output_grad, sorted_indices, *, permuted_probs_output_grad=None,
                                   num_topk: int = 1, range=None, padded_mode=False, stream=None):
    """``aclnnMoeTokenPermuteWithEpGrad``.

    permuted_tokens_output_grad [end - start, H] fp16/bf16/fp32 (the gradient of the forward's permute_tokens; the
    doc's [(end - start) * K, H] is accepted, only its first end - start rows are read); sorted_indices int32
    [T*K] (as MoeTokenPermuteWithEp returns it); permuted_probs_output_grad [end - start] (optional, same dtype);
    num_topk = K; range ``[start, end]`` with 0 <= start <= end <= T*K (None: MoeTokenPermuteGrad, start 0 and
    end = rows of the gradient, the probs gradient ignored); padded_mode False only.

    Returns ``(token_grad [T, H], probs_grad [T, K] or None)``: ``token_grad[t]`` sums, k ascending in fp32, the
    rows ``d - start`` of the gradient for d = sorted_indices[t*K + k] in [start, end); ``probs_grad[t, k]`` is the
    probs gradient at d - start (0 outside the window).
    """
    return MoeTokenPermuteWithEpGrad(permuted_tokens_output_grad, sorted_indices,
                                     permuted_probs_output_grad=permuted_probs_output_grad, num_topk=num_topk,
                                     range=range, padded_mode=padded_mode, stream=stream).run_once()


def selftest(rng: np.random.Generator) -> None:
    from .._dtypes import bfloat16
    from ..reference.token_permute_with_ep_grad import moe_token_permute_with_ep_grad as ref

    for t, k, h, dt, window, with_probs in ((3, 2, 2, np.float32, (1, 5), True),
                                            (64, 8, 256, np.float16, (100, 300), True),
                                            (128, 4, 1024, bfloat16, None, False),
                                            (33, 1, 16, np.float32, (0, 33), False),
                                            (0, 2, 8, np.float16, (0, 0), True)):
        s = rng.permutation(t * k).astype(np.int32)
        rows = t * k if window is None else window[1] - window[0]
        grad = rng.standard_normal((rows, h)).astype(dt)
        pg = rng.standard_normal(rows).astype(dt) if with_probs else None
        got = moe_token_permute_with_ep_grad(grad, s, permuted_probs_output_grad=pg, num_topk=k, range=window)
        exp = ref(grad, s, permuted_probs_output_grad=pg, num_topk=k, range=window)
        for name, g, r in zip(("token_grad", "probs_grad"), got, exp):
            same(g, r, name)
