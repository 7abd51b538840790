"""MoeInitRoutingQuant: MoeInitRouting (V1 index layout) with the gathered rows quantised to int8 with a static
scale and offset (``aclnnMoeInitRoutingQuant``; no torch_npu function calls it)."""
from __future__ import annotations

import numpy as np

from .._dtypes import FLOATS
from .._errors import ArgumentError
from .._operation import Operation

OPERATOR = "MoeInitRoutingQuant"
APIS = ("aclnnMoeInitRoutingQuant",)


def _real(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ArgumentError(name, f"must be a real number, got {type(value).__name__}")
    return float(value)


class MoeInitRoutingQuant(Operation):
    api = "aclnnMoeInitRoutingQuant"

    def __init__(self, x, row_idx, expert_idx, active_num: int, scale: float, offset: float, *, stream=None):
        super().__init__(stream=stream)
        x = self._input("x", x, dtypes=FLOATS, ndim=2)
        row_idx = self._input("row_idx", row_idx, dtypes=("int32",), ndim=2)
        expert_idx = self._input("expert_idx", expert_idx, dtypes=("int32",), ndim=2)
        active_num = int(active_num)
        scale, offset = _real("scale", scale), _real("offset", offset)
        n, h = x.shape
        k = expert_idx.shape[1]
        nk = expert_idx.shape[0] * k
        # active_num < 0 and shape mismatches are reported by the operator (status 561002)
        expanded_x = self._output("expanded_x", (max(min(n, active_num), 0) * k, h), "int8")
        expanded_row_idx = self._output("expanded_row_idx", (nk,), "int32")
        expanded_expert_idx = self._output("expanded_expert_idx", (nk,), "int32")
        self._args = [x, row_idx, expert_idx, active_num, scale, offset, expanded_x, expanded_row_idx,
                      expanded_expert_idx]
        self._results = (expanded_x, expanded_row_idx, expanded_expert_idx)


def moe_init_routing_quant(x, row_idx, expert_idx, active_num: int, scale: float, offset: float, *, stream=None):
    """``aclnnMoeInitRoutingQuant``.

    x [N, H] fp16/bf16/fp32; row_idx [N, K] int32, a permutation of [0, N*K) (usually ``row_idx[i, k] = k*N + i``);
    expert_idx [N, K] int32; active_num >= 0; scale, offset: the static quantisation parameters.
    As ``moe_init_routing``: ``expanded_row_idx[row_idx_flat[order[j]]] = j``, expanded_expert_idx the stably sorted
    ids; ``expanded_x[j] = int8(rint(fp16(x[row_idx_flat[order[j]] % N]) * fp16(scale) + fp16(offset)))`` in fp16
    arithmetic, saturating, for j < min(N, active_num) * K.
    Returns ``(expanded_x int8, expanded_row_idx int32 [N*K], expanded_expert_idx int32 [N*K])``.
    """
    return MoeInitRoutingQuant(x, row_idx, expert_idx, active_num, scale, offset, stream=stream).run_once()


def selftest(rng: np.random.Generator) -> None:
    from .._dtypes import bfloat16
    from ..reference.init_routing_quant import moe_init_routing_quant as ref

    for n, k, h, e, dt, active, scale, offset in ((3, 2, 4, 3, np.float32, 3, 1.0, 1.0),
                                                  (64, 4, 96, 16, np.float16, 40, 31.7, -2.5),
                                                  (48, 3, 64, 8, bfloat16, 100, 55.0, 0.3)):
        x = rng.standard_normal((n, h)).astype(dt)
        row_idx = np.arange(n * k, dtype=np.int32).reshape(k, n).T.copy()
        expert_idx = rng.integers(0, e, (n, k)).astype(np.int32)
        got = moe_init_routing_quant(x, row_idx, expert_idx, active, scale, offset)
        exp = ref(x, row_idx, expert_idx, active, scale, offset)
        for name, g, r in zip(("expanded_x", "expanded_row_idx", "expanded_expert_idx"), got, exp):
            assert g.dtype == r.dtype and g.shape == r.shape, f"{name}: {g.dtype}{g.shape} != {r.dtype}{r.shape}"
            np.testing.assert_array_equal(g, r, err_msg=name)
