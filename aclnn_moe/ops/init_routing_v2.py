"""MoeInitRoutingV2: sort the (token, slot) pairs by expert id (stable) and gather the token rows in that order,
dropless or with a per-expert capacity (drop/pad), plus per-expert token counts (``aclnnMoeInitRoutingV2``)."""
from __future__ import annotations

import numpy as np

from .._dtypes import FLOATS
from .._operation import Operation

OPERATOR = "MoeInitRoutingV2"
APIS = ("aclnnMoeInitRoutingV2",)


class MoeInitRoutingV2(Operation):
    api = "aclnnMoeInitRoutingV2"

    def __init__(self, x, expert_idx, *, active_num: int = 0, expert_capacity: int = 0, expert_num: int = 0,
                 drop_pad_mode: int = 0, expert_tokens_count_or_cumsum_flag: int = 0,
                 expert_tokens_before_capacity_flag: bool = False, stream=None):
        super().__init__(stream=stream)
        x = self._input("x", x, dtypes=FLOATS, ndim=2)
        expert_idx = self._input("expert_idx", expert_idx, dtypes=("int32",), ndim=2)
        active_num, capacity, expert_num = int(active_num), int(expert_capacity), int(expert_num)
        mode, flag = int(drop_pad_mode), int(expert_tokens_count_or_cumsum_flag)
        before_flag = bool(expert_tokens_before_capacity_flag)
        n, h = x.shape
        total = expert_idx.shape[0] * expert_idx.shape[1]
        # attribute rules (negative values, modes, capacity > N, ...) are reported by the operator (561002)
        if mode == 1:
            shape = (max(expert_num, 0), max(capacity, 0), h)
        else:
            shape = (total if active_num == 0 else max(min(active_num, total), 0), h)
        expanded_x = self._output("expanded_x", shape, x.dtype)
        expanded_row_idx = self._output("expanded_row_idx", (total,), "int32")
        counts = before = None
        if mode != 1 and flag != 0:
            counts = self._output("expert_tokens_count_or_cumsum", (max(expert_num, 0),), "int32")
        if mode == 1 and before_flag:
            before = self._output("expert_tokens_before_capacity", (max(expert_num, 0),), "int32")
        self._args = [x, expert_idx, active_num, capacity, expert_num, mode, flag, before_flag, expanded_x,
                      expanded_row_idx, counts, before]
        self._results = (expanded_x, expanded_row_idx, counts, before)


def moe_init_routing_v2(x, expert_idx, *, active_num: int = 0, expert_capacity: int = 0, expert_num: int = 0,
                        drop_pad_mode: int = 0, expert_tokens_count_or_cumsum_flag: int = 0,
                        expert_tokens_before_capacity_flag: bool = False, stream=None):
    """``aclnnMoeInitRoutingV2``.

    x [N, H] fp16/bf16/fp32; expert_idx [N, K] int32.
    Dropless (drop_pad_mode 0): expanded_x [rows, H] with rows = N*K if active_num == 0 else min(active_num, N*K),
    ``expanded_x[j] = x[order[j] // K]``; expanded_row_idx int32 [N*K] with ``expanded_row_idx[order[j]] = j``
    (row-major, the sorted_indices of token permute); expert_tokens_count_or_cumsum int32 [expert_num] when the
    flag is 1 (inclusive cumsum) or 2 (count), else None.
    Drop/pad (drop_pad_mode 1): expanded_x [expert_num, expert_capacity, H], the first expert_capacity pairs of
    each expert in sorted order (empty slots zero), expanded_row_idx = e*C + pos or -1 for dropped pairs;
    expert_tokens_before_capacity int32 [expert_num] (the histogram) when the flag is set, else None.
    Expert ids must be in [0, expert_num) whenever counts are output or drop/pad is used, and never negative.
    Returns ``(expanded_x, expanded_row_idx, expert_tokens_count_or_cumsum, expert_tokens_before_capacity)``.
    """
    return MoeInitRoutingV2(x, expert_idx, active_num=active_num, expert_capacity=expert_capacity,
                            expert_num=expert_num, drop_pad_mode=drop_pad_mode,
                            expert_tokens_count_or_cumsum_flag=expert_tokens_count_or_cumsum_flag,
                            expert_tokens_before_capacity_flag=expert_tokens_before_capacity_flag,
                            stream=stream).run_once()


def selftest(rng: np.random.Generator) -> None:
    from .._dtypes import bfloat16
    from ..reference.init_routing_v2 import moe_init_routing_v2 as ref

    cases = ((3, 2, 4, 3, np.float32, dict(expert_capacity=2, drop_pad_mode=1, expert_tokens_before_capacity_flag=True)),
             (3, 2, 4, 3, np.float32, dict(active_num=4, expert_tokens_count_or_cumsum_flag=1)),
             (256, 8, 512, 64, np.float16, dict(expert_tokens_count_or_cumsum_flag=2)),
             (128, 6, 1024, 16, bfloat16, dict(active_num=300)),
             (96, 4, 64, 8, bfloat16, dict(expert_capacity=20, drop_pad_mode=1, expert_tokens_before_capacity_flag=True)),
             (0, 2, 8, 4, np.float32, dict(expert_tokens_count_or_cumsum_flag=1)))
    for n, k, h, e, dt, kw in cases:
        x = rng.standard_normal((n, h)).astype(dt)
        expert_idx = rng.integers(0, e, (n, k)).astype(np.int32)
        got = moe_init_routing_v2(x, expert_idx, expert_num=e, **kw)
        exp = ref(x, expert_idx, expert_num=e, **kw)
        for name, g, r in zip(("expanded_x", "expanded_row_idx", "expert_tokens_count_or_cumsum",
                               "expert_tokens_before_capacity"), got, exp):
            assert (g is None) == (r is None), name
            if g is None:
                continue
            assert g.dtype == r.dtype and g.shape == r.shape, f"{name}: {g.dtype}{g.shape} != {r.dtype}{r.shape}"
            if g.dtype == bfloat16:
                g, r = g.view(np.uint16), r.view(np.uint16)
            np.testing.assert_array_equal(g, r, err_msg=name)
