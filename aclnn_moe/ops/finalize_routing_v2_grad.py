"""MoeFinalizeRoutingV2Grad: the backward of MoeFinalizeRoutingV2 (row-major layouts): the gradients of the expanded
expert outputs and of the routing scales."""
from __future__ import annotations

import numpy as np

from .._dtypes import FLOATS
from .._operation import Operation
from ._grad_check import same

OPERATOR = "MoeFinalizeRoutingV2Grad"
APIS = ("aclnnMoeFinalizeRoutingV2Grad",)


class MoeFinalizeRoutingV2Grad(Operation):
    api = "aclnnMoeFinalizeRoutingV2Grad"

    def __init__(self, grad_y, expanded_row_idx, *, expanded_x=None, scales=None, expert_idx=None, bias=None,
                 drop_pad_mode: int = 0, active_num: int = 0, expert_num: int = 0, expert_capacity: int = 0,
                 stream=None):
        super().__init__(stream=stream)
        gy = self._input("grad_y", grad_y, dtypes=FLOATS, ndim=2)
        idx = self._input("expanded_row_idx", expanded_row_idx, dtypes=("int32",), ndim=1)
        x = self._input("expanded_x", expanded_x, dtypes=FLOATS, ndim=(2, 3), optional=True)
        sc = self._input("scales", scales, dtypes=FLOATS, ndim=2, optional=True)
        ei = self._input("expert_idx", expert_idx, dtypes=("int32",), ndim=2, optional=True)
        b = self._input("bias", bias, dtypes=FLOATS, ndim=2, optional=True)
        r, h = gy.shape
        n = idx.shape[0]
        if x is not None:
            shape = tuple(x.shape)
        elif int(drop_pad_mode) == 1:
            shape = (int(expert_num), int(expert_capacity), h)
        else:
            shape = (int(active_num) if 0 < int(active_num) < n else n, h)
        if any(d < 0 for d in shape):  # the operator reports the rule (561103)
            shape = (0, h)
        gx = self._output("grad_expanded_x", shape, gy.dtype)
        k = sc.shape[1] if sc is not None else 1
        # gradScalesOut is a required output; without scales it is not written
        gs = self._output("grad_scales", (r, k), sc.dtype if sc is not None else gy.dtype)
        self._args = [gy, idx, x, sc, ei, b, int(drop_pad_mode), int(active_num), int(expert_num),
                      int(expert_capacity), gx, gs]
        self._results = (gx, gs if sc is not None else None)


def moe_finalize_routing_v2_grad(grad_y, expanded_row_idx, *, expanded_x=None, scales=None, expert_idx=None,
                                 bias=None, drop_pad_mode: int = 0, active_num: int = 0, expert_num: int = 0,
                                 expert_capacity: int = 0, stream=None):
    """``aclnnMoeFinalizeRoutingV2Grad``.

    grad_y [R, H] fp16/bf16/fp32; expanded_row_idx int32 [R*K] (row-major p = i*K + k, as MoeInitRoutingV2 / V3
    return it; -1 = dropped in drop_pad_mode 1); expanded_x (required with scales, grad_y dtype) [R*K, H],
    [active_num, H] when 0 < active_num < R*K, or [expert_num, expert_capacity, H] (drop_pad_mode 1); scales [R, K]
    grad_y dtype (None: K = 1); expert_idx int32 [R, K] (required with bias); bias [E, H]; drop_pad_mode 0 or 1.

    Returns ``(grad_expanded_x, grad_scales [R, K] or None)``: ``grad_expanded_x[row] = grad_y[p // K] *
    scales[p]`` for row = expanded_row_idx[p] (other rows 0), ``grad_scales[p] = sum_j (expanded_x[row, j] +
    bias[expert_idx[p], j]) * grad_y[p // K, j]`` (the bias term only for a dropped p). Shape and attribute errors
    are status 561103.
    """
    return MoeFinalizeRoutingV2Grad(grad_y, expanded_row_idx, expanded_x=expanded_x, scales=scales,
                                    expert_idx=expert_idx, bias=bias, drop_pad_mode=drop_pad_mode,
                                    active_num=active_num, expert_num=expert_num, expert_capacity=expert_capacity,
                                    stream=stream).run_once()


def selftest(rng: np.random.Generator) -> None:
    from .._dtypes import bfloat16
    from ..reference.finalize_routing_v2_grad import moe_finalize_routing_v2_grad as ref

    for r, k, h, e, dt in ((2, 2, 2, 2, np.float32), (64, 8, 256, 16, bfloat16), (33, 3, 70, 5, np.float16)):
        gy = rng.standard_normal((r, h)).astype(dt)
        idx = rng.permutation(r * k).astype(np.int32)
        x = rng.standard_normal((r * k, h)).astype(dt)
        sc = rng.random((r, k)).astype(dt)
        ei = rng.integers(0, e, (r, k)).astype(np.int32)
        b = rng.standard_normal((e, h)).astype(dt)
        kw = dict(expanded_x=x, scales=sc, expert_idx=ei, bias=b)
        for name, g, w in zip(("grad_expanded_x", "grad_scales"), moe_finalize_routing_v2_grad(gy, idx, **kw),
                              ref(gy, idx, **kw)):
            same(g, w, name)
        c = 3
        drop = np.full(r * k, -1, np.int32)
        kept = rng.permutation(r * k)[:min(e * c, r * k)]
        drop[kept] = rng.permutation(e * c)[:kept.size]
        xd = rng.standard_normal((e, c, h)).astype(dt)
        kw = dict(expanded_x=xd, scales=sc, expert_idx=ei, bias=b, drop_pad_mode=1, expert_num=e, expert_capacity=c)
        for name, g, w in zip(("grad_expanded_x", "grad_scales"), moe_finalize_routing_v2_grad(gy, drop, **kw),
                              ref(gy, drop, **kw)):
            same(g, w, name)
        g1 = rng.standard_normal((r * k, h)).astype(dt)
        same(moe_finalize_routing_v2_grad(g1, idx)[0], ref(g1, idx)[0], "no scales")
