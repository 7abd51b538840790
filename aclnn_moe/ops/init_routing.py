"""MoeInitRouting (V1): sort the (token, slot) pairs by expert id (stable: ties keep token order, then slot) and
gather the token rows in that order (``torch_npu.npu_moe_init_routing``)."""
from __future__ import annotations

import numpy as np

from .._dtypes import FLOATS
from .._operation import Operation

OPERATOR = "MoeInitRouting"
APIS = ("aclnnMoeInitRouting",)


class MoeInitRouting(Operation):
    api = "aclnnMoeInitRouting"

    def __init__(self, x, row_idx, expert_idx, active_num: int, *, stream=None):
        super().__init__(stream=stream)
        x = self._input("x", x, dtypes=FLOATS, ndim=2)
        row_idx = self._input("row_idx", row_idx, dtypes=("int32",), ndim=2)
        expert_idx = self._input("expert_idx", expert_idx, dtypes=("int32",), ndim=2)
        active_num = int(active_num)
        n, h = x.shape
        k = expert_idx.shape[1]
        nk = expert_idx.shape[0] * k
        # active_num < 0 and shape mismatches are reported by the operator (status 561002)
        expanded_x = self._output("expanded_x", (max(min(n, active_num), 0) * k, h), x.dtype)
        expanded_row_idx = self._output("expanded_row_idx", (nk,), "int32")
        expanded_expert_idx = self._output("expanded_expert_idx", (nk,), "int32")
        self._args = [x, row_idx, expert_idx, active_num, expanded_x, expanded_row_idx, expanded_expert_idx]
        self._results = (expanded_x, expanded_row_idx, expanded_expert_idx)


def moe_init_routing(x, row_idx, expert_idx, active_num: int, *, stream=None):
    """``torch_npu.npu_moe_init_routing``.

    x [N, H] fp16/bf16/fp32; row_idx [N, K] int32, a permutation of [0, N*K) (usually ``row_idx[i, k] = k*N + i``);
    expert_idx [N, K] int32 (ids in (-2^24, 2^24]); active_num >= 0.
    Returns ``(expanded_x [min(N, active_num)*K, H], expanded_row_idx [N*K] int32, expanded_expert_idx [N*K] int32)``:
    expanded_expert_idx is the stably sorted flattened expert_idx, ``expanded_row_idx[row_idx_flat[order[j]]] = j``
    and ``expanded_x[j] = x[row_idx_flat[order[j]] % N]``.
    """
    return MoeInitRouting(x, row_idx, expert_idx, active_num, stream=stream).run_once()


def standard_row_idx(n: int, k: int) -> np.ndarray:
    """The usual row_idx: ``row_idx[i, k] = k*N + i`` (what MoeGatingTopKSoftmax produces)."""
    return np.arange(n * k, dtype=np.int32).reshape(k, n).T.copy()


def selftest(rng: np.random.Generator) -> None:
    from .._dtypes import bfloat16
    from ..reference.init_routing import moe_init_routing as ref

    for (n, k, h, e, dt, active) in ((3, 2, 4, 3, np.float32, 3), (430, 4, 200, 100, np.float16, 430),
                                     (520, 9, 256, 256, bfloat16, 100), (64, 8, 7168, 256, np.float16, 64),
                                     (0, 2, 8, 4, np.float32, 0)):
        x = rng.standard_normal((n, h)).astype(dt)
        expert_idx = rng.integers(0, e, (n, k)).astype(np.int32)
        row_idx = standard_row_idx(n, k)
        got = moe_init_routing(x, row_idx, expert_idx, active)
        exp = ref(x, row_idx, expert_idx, active)
        for name, g, r in zip(("expanded_x", "expanded_row_idx", "expanded_expert_idx"), got, exp):
            assert g.dtype == r.dtype and g.shape == r.shape, f"{name}: {g.dtype}{g.shape} != {r.dtype}{r.shape}"
            np.testing.assert_array_equal(g.view(np.uint16) if g.dtype == bfloat16 else g,
                                          r.view(np.uint16) if r.dtype == bfloat16 else r, err_msg=name)
