"""MoeInitRoutingQuantV2: MoeInitRoutingV2 (dropless or drop/pad, per-expert counts) with the gathered rows
quantised to int8, statically or dynamically per row (``aclnnMoeInitRoutingQuantV2``, which
``torch_npu.npu_moe_init_routing_quant`` runs)."""
from __future__ import annotations

import numpy as np

from .._dtypes import FLOATS
from .._operation import Operation

OPERATOR = "MoeInitRoutingQuantV2"
APIS = ("aclnnMoeInitRoutingQuantV2",)


class MoeInitRoutingQuantV2(Operation):
    api = "aclnnMoeInitRoutingQuantV2"

    def __init__(self, x, expert_idx, *, scale=None, offset=None, active_num: int = 1024, expert_capacity: int = 0,
                 expert_num: int = 256, drop_pad_mode: int = 0, expert_tokens_num_mode: int = 0,
                 expert_tokens_before_capacity_flag: bool = False, quant_mode: int = 1, stream=None):
        super().__init__(stream=stream)
        x = self._input("x", x, dtypes=FLOATS, ndim=2)
        expert_idx = self._input("expert_idx", expert_idx, dtypes=("int32",), ndim=2)
        scale = self._input("scale", scale, dtypes=("float32",), optional=True)
        offset = self._input("offset", offset, dtypes=("float32",), optional=True)
        active_num, capacity, expert_num = int(active_num), int(expert_capacity), int(expert_num)
        mode, flag, quant = int(drop_pad_mode), int(expert_tokens_num_mode), int(quant_mode)
        before_flag = bool(expert_tokens_before_capacity_flag)
        n, h = x.shape
        total = expert_idx.shape[0] * expert_idx.shape[1]
        # attribute rules (negative values, modes, capacity > N, ...) are reported by the operator (561002)
        if mode == 1:
            rows = max(expert_num, 0) * max(capacity, 0)
            shape = (max(expert_num, 0), max(capacity, 0), h)
        else:
            rows = total if active_num <= 0 else min(active_num, total)
            shape = (rows, h)
        expanded_x = self._output("expanded_x", shape, "int8")
        expanded_row_idx = self._output("expanded_row_idx", (total,), "int32")
        counts = before = expanded_scale = None
        if mode != 1 and flag > 0:
            counts = self._output("expert_token_cumsum_or_count", (max(expert_num, 0),), "int32")
        if mode == 1 and before_flag:
            before = self._output("expert_tokens_before_capacity", (max(expert_num, 0),), "int32")
        if quant == 1:
            expanded_scale = self._output("expanded_scale", (rows,), "float32")
        self._args = [x, expert_idx, scale, offset, active_num, capacity, expert_num, mode, flag, before_flag, quant,
                      expanded_x, expanded_row_idx, counts, before, expanded_scale]
        self._results = (expanded_x, expanded_row_idx, counts, before, expanded_scale)


def moe_init_routing_quant_v2(x, expert_idx, *, scale=None, offset=None, active_num: int = 1024,
                              expert_capacity: int = 0, expert_num: int = 256, drop_pad_mode: int = 0,
                              expert_tokens_num_mode: int = 0, expert_tokens_before_capacity_flag: bool = False,
                              quant_mode: int = 1, stream=None):
    """``aclnnMoeInitRoutingQuantV2`` with the signature and defaults of ``torch_npu.npu_moe_init_routing_quant``.

    x [N, H] fp16/bf16/fp32; expert_idx [N, K] int32 (ids in [0, expert_num) whenever expert_num bounds them).
    Routing as ``moe_init_routing_v2``: dropless expanded_x [rows, H] (rows = N*K if active_num <= 0 else
    min(active_num, N*K)), ``expanded_row_idx[order[j]] = j``; drop/pad [expert_num, expert_capacity, H] with -1 for
    dropped pairs and zero slots. expert_token_cumsum_or_count int32 [expert_num] (dropless, expert_tokens_num_mode
    1 cumsum / 2 count, else None); expert_tokens_before_capacity int32 [expert_num] (drop/pad with the flag, else
    None).
    quant_mode 0 (scale [1], offset [1]): ``int8(rint(fp16(x) * fp16(scale) + fp16(offset)))`` in fp16 arithmetic;
    1 (optional smooth scale [1 or expert_num, H]): s = max|x*smooth| / 127 per row (expanded_scale fp32 [rows]),
    ``int8(round(x*smooth / s))`` with ties away from zero, as the NPU kernel; expanded_scale None for quant_mode 0.
    Returns ``(expanded_x, expanded_row_idx, expert_token_cumsum_or_count, expert_tokens_before_capacity,
    expanded_scale)``.
    """
    return MoeInitRoutingQuantV2(x, expert_idx, scale=scale, offset=offset, active_num=active_num,
                                 expert_capacity=expert_capacity, expert_num=expert_num, drop_pad_mode=drop_pad_mode,
                                 expert_tokens_num_mode=expert_tokens_num_mode,
                                 expert_tokens_before_capacity_flag=expert_tokens_before_capacity_flag,
                                 quant_mode=quant_mode, stream=stream).run_once()


def selftest(rng: np.random.Generator) -> None:
    from .._dtypes import bfloat16
    from ..reference.init_routing_quant_v2 import moe_init_routing_quant_v2 as ref

    cases = ((3, 2, 4, 3, np.float32, dict(active_num=0, expert_capacity=2, drop_pad_mode=1,
                                            expert_tokens_before_capacity_flag=True, quant_mode=0)),
             (64, 8, 128, 16, np.float16, dict(active_num=0, expert_tokens_num_mode=2, quant_mode=1, smooth=(1,))),
             (40, 4, 96, 8, bfloat16, dict(active_num=100, expert_tokens_num_mode=1, quant_mode=1, smooth=(8,))),
             (32, 2, 64, 4, np.float32, dict(expert_capacity=12, drop_pad_mode=1, quant_mode=1)))
    for n, k, h, e, dt, kw in cases:
        x = rng.standard_normal((n, h)).astype(dt)
        expert_idx = rng.integers(0, e, (n, k)).astype(np.int32)
        kw = dict(kw)
        if kw.get("quant_mode") == 0:
            kw.update(scale=np.array([0.3452], np.float32), offset=np.array([1.8369], np.float32))
        if "smooth" in kw:
            kw["scale"] = rng.uniform(0.5, 2.0, (kw.pop("smooth")[0], h)).astype(np.float32)
        got = moe_init_routing_quant_v2(x, expert_idx, expert_num=e, **kw)
        exp = ref(x, expert_idx, expert_num=e, **kw)
        for name, g, r in zip(("expanded_x", "expanded_row_idx", "expert_token_cumsum_or_count",
                               "expert_tokens_before_capacity", "expanded_scale"), got, exp):
            assert (g is None) == (r is None), name
            if g is None:
                continue
            assert g.dtype == r.dtype and g.shape == r.shape, f"{name}: {g.dtype}{g.shape} != {r.dtype}{r.shape}"
            np.testing.assert_array_equal(g, r, err_msg=name)
