"""MoeInitRoutingV2Grad: the backward of MoeInitRoutingV2 / V3, summing each token's expanded gradient rows."""
from __future__ import annotations

import numpy as np

from .._dtypes import FLOATS
from .._operation import Operation
from ._grad_check import same

OPERATOR = "MoeInitRoutingV2Grad"
APIS = ("aclnnMoeInitRoutingV2Grad",)


class MoeInitRoutingV2Grad(Operation):
    api = "aclnnMoeInitRoutingV2Grad"

    def __init__(self, grad_expanded_x, expanded_row_idx, top_k: int, *, drop_pad_mode: int = 0,
                 active_num: int = 0, stream=None):
        super().__init__(stream=stream)
        grad = self._input("grad_expanded_x", grad_expanded_x, dtypes=FLOATS, ndim=(2, 3))
        idx = self._input("expanded_row_idx", expanded_row_idx, dtypes=("int32",), ndim=1)
        k = max(int(top_k), 1)  # attribute rules are reported by the operator (561002)
        out = self._output("out", (idx.shape[0] // k, grad.shape[-1]), grad.dtype)
        self._args = [grad, idx, int(top_k), int(drop_pad_mode), int(active_num), out]
        self._results = out


def moe_init_routing_v2_grad(grad_expanded_x, expanded_row_idx, top_k: int, *, drop_pad_mode: int = 0,
                             active_num: int = 0, stream=None):
    """``aclnnMoeInitRoutingV2Grad``.

    grad_expanded_x fp16/bf16/fp32: [N*K, H] (dropless, drop_pad_mode 0 and active_num 0), [active_num, H]
    (active) or [E, C, H] (drop_pad_mode 1); expanded_row_idx int32 [N*K] as MoeInitRoutingV2 / V3 return it
    (row-major; -1 marks a dropped token in drop/pad); top_k = K > 0.

    Returns ``grad_x [N, H]``: the sum over k of the rows expanded_row_idx[i*K + k] (rows >= active_num and -1 add
    nothing), added in fp32 as a binary tree like the NPU kernel, rounded to nearest-even.
    """
    return MoeInitRoutingV2Grad(grad_expanded_x, expanded_row_idx, top_k, drop_pad_mode=drop_pad_mode,
                                active_num=active_num, stream=stream).run_once()


def selftest(rng: np.random.Generator) -> None:
    from .._dtypes import bfloat16
    from ..reference.init_routing_v2_grad import moe_init_routing_v2_grad as ref

    for n, k, h, dt in ((2, 2, 2, np.float32), (64, 8, 256, bfloat16), (33, 3, 40, np.float16)):
        idx = rng.permutation(n * k).astype(np.int32)
        grad = rng.standard_normal((n * k, h)).astype(dt)
        same(moe_init_routing_v2_grad(grad, idx, k), ref(grad, idx, k), "dropless")
        active = n * k // 2
        grad_a = rng.standard_normal((active, h)).astype(dt)
        same(moe_init_routing_v2_grad(grad_a, idx, k, active_num=active), ref(grad_a, idx, k, active_num=active),
             "active")
        e, c = 4, max(n * k // 8, 1)
        drop = np.full(n * k, -1, np.int32)
        kept = rng.permutation(n * k)[:e * c]
        drop[kept] = rng.permutation(e * c)
        grad_d = rng.standard_normal((e, c, h)).astype(dt)
        same(moe_init_routing_v2_grad(grad_d, drop, k, drop_pad_mode=1), ref(grad_d, drop, k, drop_pad_mode=1),
             "drop/pad")
