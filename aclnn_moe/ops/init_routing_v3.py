"""MoeInitRoutingV3: sort the (token, slot) pairs by expert id (stable), keep those whose expert lies in the active
range, and gather the token rows in that order, dropless or with a per-expert capacity, optionally quantised to int8
(static or dynamic per row), with per-expert token counts (``aclnnMoeInitRoutingV3``, which
``torch_npu.npu_moe_init_routing_v2`` runs)."""
from __future__ import annotations

import numpy as np

from .._dtypes import FLOATS
from .._errors import ArgumentError
from .._operation import Operation

OPERATOR = "MoeInitRoutingV3"
APIS = ("aclnnMoeInitRoutingV3",)


class MoeInitRoutingV3(Operation):
    api = "aclnnMoeInitRoutingV3"

    def __init__(self, x, expert_idx, *, scale=None, offset=None, active_num: int = -1, expert_capacity: int = -1,
                 expert_num: int = -1, drop_pad_mode: int = 0, expert_tokens_num_type: int = 0,
                 expert_tokens_num_flag: bool = False, quant_mode: int = -1, active_expert_range=(),
                 row_idx_type: int = 0, x_dtype=None, stream=None):
        super().__init__(stream=stream)
        if x_dtype is not None:
            raise ArgumentError("x_dtype", "only None is supported: the fp8/HiF8/INT4 output types of Ascend 950 "
                                           "are not implemented by this library")
        x = self._input("x", x, dtypes=FLOATS + ("int8",), ndim=2)
        expert_idx = self._input("expert_idx", expert_idx, dtypes=("int32",), ndim=2)
        scale = self._input("scale", scale, dtypes=("float32",), optional=True)
        offset = self._input("offset", offset, dtypes=("float32",), optional=True)
        active_num, capacity, expert_num = int(active_num), int(expert_capacity), int(expert_num)
        mode, count_type, quant, row_type = int(drop_pad_mode), int(expert_tokens_num_type), int(quant_mode), \
            int(row_idx_type)
        flag = bool(expert_tokens_num_flag)
        rng = [int(v) for v in active_expert_range]
        n, h = x.shape
        total = expert_idx.shape[0] * expert_idx.shape[1]
        start, end = (rng[0], rng[1]) if len(rng) == 2 else (0, expert_num)
        # attribute rules (modes, ranges, capacity, ...) are reported by the operator (status 561103)
        if mode == 1:
            rows = max(expert_num, 0) * max(capacity, 0)
            shape = (max(expert_num, 0), max(capacity, 0), h)
        else:
            rows = total if active_num <= 0 else min(active_num, total)
            shape = (rows, h)
        expanded_x = self._output("expanded_x", shape, "int8" if quant in (0, 1) else x.dtype)
        expanded_row_idx = self._output("expanded_row_idx", (total,), "int32")
        counts_shape = (max(expert_num, 0), 2) if count_type == 2 else (max(end - start, 0),)
        counts = self._output("expert_tokens_count_or_cumsum", counts_shape if flag else (1,), "int64")
        writes_scale = quant == 1 or (quant == -1 and scale is not None)
        expanded_scale = self._output("expanded_scale", (rows,) if writes_scale else (1,), "float32")
        self._args = [x, expert_idx, scale, offset, active_num, capacity, expert_num, mode, count_type, flag, quant,
                      self._int_array(rng), row_type, expanded_x, expanded_row_idx, counts, expanded_scale]
        self._results = (expanded_x, expanded_row_idx, counts if flag else None,
                         expanded_scale if writes_scale else None)


def moe_init_routing_v3(x, expert_idx, *, scale=None, offset=None, active_num: int = -1, expert_capacity: int = -1,
                        expert_num: int = -1, drop_pad_mode: int = 0, expert_tokens_num_type: int = 0,
                        expert_tokens_num_flag: bool = False, quant_mode: int = -1, active_expert_range=(),
                        row_idx_type: int = 0, x_dtype=None, stream=None):
    """``aclnnMoeInitRoutingV3`` with the signature of ``torch_npu.npu_moe_init_routing_v2``.

    x [N, H] fp16/bf16/fp32 (int8 unquantised); expert_idx [N, K] int32 with ids in [0, expert_num);
    active_expert_range [start, end) (empty: [0, expert_num)). Pairs whose expert is outside the range are dropped.
    Dropless (drop_pad_mode 0): expanded_x [rows, H], rows = N*K if active_num <= 0 else min(active_num, N*K), row j
    from token ``order[j] // K`` for j < the number of in-range pairs (zero after); expanded_row_idx int32 [N*K]:
    row_idx_type 0 ``[order[j]] = j`` (-1 for dropped pairs), 1 ``[j] = order[j]`` (-1 after the in-range pairs).
    Drop/pad (drop_pad_mode 1, full range, row_idx_type 0): expanded_x [expert_num, expert_capacity, H], the first
    expert_capacity pairs of each expert, empty slots zero, dropped pairs -1 in expanded_row_idx.
    expert_token_cumsum_or_count int64 when expert_tokens_num_flag: type 0 cumsum, 1 count ([end - start]), 2
    key_value [expert_num, 2] (id, count) rows for the experts with tokens; else None.
    quant_mode -1: x's dtype, expanded_scale = scale[token] (fp32 [rows]) when scale [N] is given, else None;
    0 (static, scale [1], offset [1]): int8(rint(x*scale + offset)) in fp32, expanded_scale None;
    1 (dynamic, optional smooth scale [1 or end - start, H]): s = max|x*smooth| / 127 per row, int8(rint(x*smooth /
    s)), expanded_scale = s. The fp8/MX/HiF8/INT4 quant modes of Ascend 950 are refused by the operator.
    Returns ``(expanded_x, expanded_row_idx, expert_token_cumsum_or_count, expanded_scale)``.
    """
    return MoeInitRoutingV3(x, expert_idx, scale=scale, offset=offset, active_num=active_num,
                            expert_capacity=expert_capacity, expert_num=expert_num, drop_pad_mode=drop_pad_mode,
                            expert_tokens_num_type=expert_tokens_num_type,
                            expert_tokens_num_flag=expert_tokens_num_flag, quant_mode=quant_mode,
                            active_expert_range=active_expert_range, row_idx_type=row_idx_type, x_dtype=x_dtype,
                            stream=stream).run_once()


def selftest(rng: np.random.Generator) -> None:
    from .._dtypes import bfloat16
    from ..reference.init_routing_v3 import moe_init_routing_v3 as ref

    cases = ((16, 4, 64, 8, np.float32, dict(expert_tokens_num_flag=True, expert_tokens_num_type=1,
                                             active_expert_range=[2, 6])),
             (32, 8, 128, 16, np.float16, dict(expert_tokens_num_flag=True, expert_tokens_num_type=2, row_idx_type=1,
                                               quant_mode=1)),
             (24, 2, 96, 4, bfloat16, dict(expert_capacity=10, drop_pad_mode=1, expert_tokens_num_flag=True,
                                           expert_tokens_num_type=1)),
             (12, 3, 40, 6, np.float32, dict(quant_mode=0, active_num=20, expert_tokens_num_flag=True,
                                             expert_tokens_num_type=0)))
    for n, k, h, e, dt, kw in cases:
        x = rng.standard_normal((n, h)).astype(dt)
        expert_idx = rng.integers(0, e, (n, k)).astype(np.int32)
        if kw.get("quant_mode") == 0:
            kw = dict(kw, scale=np.array([7.5], np.float32), offset=np.array([0.25], np.float32))
        got = moe_init_routing_v3(x, expert_idx, expert_num=e, **kw)
        exp = ref(x, expert_idx, expert_num=e, **kw)
        for name, g, r in zip(("expanded_x", "expanded_row_idx", "expert_token_cumsum_or_count", "expanded_scale"),
                              got, exp):
            assert (g is None) == (r is None), name
            if g is None:
                continue
            assert g.dtype == r.dtype and g.shape == r.shape, f"{name}: {g.dtype}{g.shape} != {r.dtype}{r.shape}"
            if g.dtype == bfloat16:
                g, r = g.view(np.uint16), r.view(np.uint16)
            np.testing.assert_array_equal(g, r, err_msg=name)
