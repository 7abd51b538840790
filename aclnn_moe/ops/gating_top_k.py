"""MoeGatingTopK: the router of a Mixture-of-Experts layer. Per token: sigmoid or softmax of the logits, optional
group-limited selection (DeepSeek-V3 style), top-k experts ranked by score + bias, and their weights taken from
the unbiased scores (renormalised for sigmoid) times ``routed_scaling_factor``."""
from __future__ import annotations

import numpy as np

from .._dtypes import FLOATS
from .._errors import ArgumentError
from .._operation import Operation

OPERATOR = "MoeGatingTopK"
APIS = ("aclnnMoeGatingTopK",)


class MoeGatingTopK(Operation):
    api = "aclnnMoeGatingTopK"

    def __init__(self, x, k: int, *, bias=None, k_group: int = 1, group_count: int = 1, group_select_mode: int = 0,
                 renorm: int = 0, norm_type: int = 0, out_flag: bool = False, routed_scaling_factor: float = 1.0,
                 eps: float = 1e-20, stream=None):
        super().__init__(stream=stream)
        x = self._input("x", x, dtypes=FLOATS, ndim=2)
        bias = self._input("bias", bias, dtypes=FLOATS, ndim=1, optional=True)
        rows, experts = x.shape
        k = int(k)
        if not 1 <= k <= experts:  # the output shape depends on it; every other rule is checked by the operator
            raise ArgumentError("k", f"must be in [1, {experts}] (the expert count of x), got {k}")
        if bias is not None and bias.dtype != x.dtype:
            raise ArgumentError("bias", f"dtype {bias.dtype} differs from x's {x.dtype}")
        y = self._output("y", (rows, k), x.dtype)
        expert_idx = self._output("expert_idx", (rows, k), "int32")
        norm_out = self._output("norm_out", (rows, experts), "float32")  # always passed, written iff out_flag
        self._args = [x, bias, k, int(k_group), int(group_count), int(group_select_mode), int(renorm),
                      int(norm_type), bool(out_flag), float(routed_scaling_factor), float(eps),
                      y, expert_idx, norm_out]
        self._results = (y, expert_idx, norm_out if out_flag else None)


def moe_gating_top_k(x, k: int, *, bias=None, k_group: int = 1, group_count: int = 1, group_select_mode: int = 0,
                     renorm: int = 0, norm_type: int = 0, out_flag: bool = False, routed_scaling_factor: float = 1.0,
                     eps: float = 1e-20, stream=None):
    """``torch_npu.npu_moe_gating_top_k``: returns ``(y, expert_idx, norm_out)``.

    x: [rows, E] float16/bfloat16/float32 router logits (E <= 2048); bias: optional [E], same dtype, added to the
    scores for the selection only. ``norm_type`` 0 = softmax, 1 = sigmoid. Grouping (``group_count`` groups of
    E/group_count experts, keep the ``k_group`` best by max (``group_select_mode`` 0) or top-2 sum (1)) applies
    when ``group_count`` is not 1 or E and ``k_group != group_count``. y: [rows, k] in x's dtype, the selected
    experts' unbiased scores, divided by their sum + eps for sigmoid (never for softmax), times
    ``routed_scaling_factor``; expert_idx: [rows, k] int32, best first, ties to the lower index; norm_out: the
    float32 [rows, E] scores when ``out_flag``, else None. ``renorm`` must be 0.
    """
    return MoeGatingTopK(x, k, bias=bias, k_group=k_group, group_count=group_count,
                         group_select_mode=group_select_mode, renorm=renorm, norm_type=norm_type, out_flag=out_flag,
                         routed_scaling_factor=routed_scaling_factor, eps=eps, stream=stream).run_once()


def _separated_logits(rng, rows, experts, dtype):
    """Logits whose scores are pairwise at least ~1e-3 apart, so the ranking cannot depend on rounding."""
    base = np.stack([rng.permutation(experts) for _ in range(rows)]).astype(np.float64)
    return (base / experts * 8.0 - 4.0).astype(dtype)


def selftest(rng: np.random.Generator) -> None:
    from .._dtypes import bfloat16
    from ..reference import moe_gating_top_k as ref

    cases = (  # rows, E, k, attributes
        (16, 256, 8, dict(k_group=4, group_count=8, group_select_mode=1, norm_type=1, routed_scaling_factor=2.5)),
        (8, 128, 8, dict(norm_type=0)),
        (5, 8, 2, dict(norm_type=0, out_flag=True)),
        (4, 64, 6, dict(k_group=2, group_count=4, group_select_mode=0, norm_type=1, out_flag=True)),
    )
    for dtype in (np.float32, np.float16, bfloat16):
        for rows, experts, k, attrs in cases:
            x = _separated_logits(rng, rows, experts, dtype)
            bias = (rng.permutation(experts) * (1.0 / (4 * experts))).astype(dtype) if attrs.get("k_group") else None
            y, idx, norm = moe_gating_top_k(x, k, bias=bias, **attrs)
            y_ref, idx_ref, norm_ref = ref(x, k, bias=bias, **attrs)
            np.testing.assert_array_equal(idx, idx_ref)
            tol = 1e-5 if dtype == np.float32 else (1e-3 if dtype == np.float16 else 8e-3)
            np.testing.assert_allclose(y.astype(np.float32), y_ref.astype(np.float32), rtol=tol, atol=1e-6)
            if attrs.get("out_flag"):
                np.testing.assert_allclose(norm, norm_ref, rtol=1e-5, atol=1e-7)
            else:
                assert norm is None
