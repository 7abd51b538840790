"""MoeGatingTopK: the router of a Mixture-of-Experts layer. Per token: sigmoid or softmax of the logits, optional
group-limited selection (DeepSeek-V3 style), top-k experts ranked by score + bias, and their weights taken from
the unbiased scores (renormalised for sigmoid) times ``routed_scaling_factor``."""
from __future__ import annotations

import numpy as np

from .._spec import FLOATS, KW, Attr, OpSpec, Output, Tensor


def separated_logits(rng, rows, experts, dtype):
    """Logits whose scores are pairwise at least ~1e-3 apart, so the ranking cannot depend on rounding."""
    base = np.stack([rng.permutation(experts) for _ in range(rows)]).astype(np.float64)
    return (base / experts * 8.0 - 4.0).astype(dtype)


def _examples(rng):
    from .._dtypes import bfloat16

    cases = (  # rows, E, k, attributes
        (16, 256, 8, dict(k_group=4, group_count=8, group_select_mode=1, norm_type=1, routed_scaling_factor=2.5)),
        (8, 128, 8, dict(norm_type=0)),
        (5, 8, 2, dict(norm_type=0, out_flag=True)),
        (4, 64, 6, dict(k_group=2, group_count=4, group_select_mode=0, norm_type=1, out_flag=True)),
    )
    out = []
    for dtype in (np.float32, np.float16, bfloat16):
        for rows, experts, k, attrs in cases:
            bias = (rng.permutation(experts) * (1.0 / (4 * experts))).astype(dtype) if attrs.get("k_group") else None
            out.append(dict(x=separated_logits(rng, rows, experts, dtype), k=k, bias=bias, **attrs))
    return out


def _compare(got, exp, kwargs, what):
    (y, idx, norm), (y_ref, idx_ref, norm_ref) = got, exp
    np.testing.assert_array_equal(idx, idx_ref, err_msg=f"{what} expert_idx")
    dt = np.dtype(kwargs["x"].dtype)
    tol = 1e-5 if dt == np.float32 else (1e-3 if dt == np.float16 else 8e-3)
    np.testing.assert_allclose(y.astype(np.float32), y_ref.astype(np.float32), rtol=tol, atol=1e-6, err_msg=what)
    assert (norm is None) == (norm_ref is None), f"{what} norm_out"
    if norm is not None:
        np.testing.assert_allclose(norm, norm_ref, rtol=1e-5, atol=1e-7, err_msg=f"{what} norm_out")


SPEC = OpSpec(
    operator="MoeGatingTopK", api="aclnnMoeGatingTopK", function="moe_gating_top_k",
    torch_npu=('npu_moe_gating_top_k(Tensor x, int k, *, Tensor? bias=None, Tensor? input_ids=None, '
               'Tensor? tid2eid=None, int k_group=1, int group_count=1, int group_select_mode=0, '
               'int renorm=0, int norm_type=0, bool out_flag=False, float routed_scaling_factor=1.0, '
               'float eps=1e-20) -> (Tensor, Tensor, Tensor)',),
    params=(Tensor("x", "x", ndim=2),
            Attr("k", "k", lo=1, hi_from=lambda a: a.x.shape[1], why="the expert count of x"),
            KW,
            Tensor("bias", "biasOptional", ndim=1, optional=True, same_dtype="x", default=None),
            Attr("k_group", "kGroup", default=1),
            Attr("group_count", "groupCount", default=1),
            Attr("group_select_mode", "groupSelectMode", default=0),
            Attr("renorm", "renorm", default=0),
            Attr("norm_type", "normType", default=0),
            Attr("out_flag", "outFlag", kind="bool", default=False),
            Attr("routed_scaling_factor", "routedScalingFactor", kind="float", default=1.0),
            Attr("eps", "eps", kind="float", default=1e-20)),
    outputs=(Output("y", "yOut", shape=lambda a: (a.x.shape[0], a.k), dtype=lambda a: a.x.dtype),
             Output("expert_idx", "expertIdxOut", shape=lambda a: (a.x.shape[0], a.k), dtype="int32"),
             # always passed (the operator needs it), returned only when out_flag asks for it
             Output("norm_out", "outOut", shape=lambda a: a.x.shape, dtype="float32",
                    returned=lambda a: a.out_flag)),
    examples=_examples, compare=_compare,
    doc="""``torch_npu.npu_moe_gating_top_k``: returns ``(y, expert_idx, norm_out)``.

    x: [rows, E] float16/bfloat16/float32 router logits (E <= 2048); bias: optional [E], same dtype, added to the
    scores for the selection only. ``norm_type`` 0 = softmax, 1 = sigmoid. Grouping (``group_count`` groups of
    E/group_count experts, keep the ``k_group`` best by max (``group_select_mode`` 0) or top-2 sum (1)) applies
    when ``group_count`` is not 1 or E and ``k_group != group_count``. y: [rows, k] in x's dtype, the selected
    experts' unbiased scores, divided by their sum + eps for sigmoid (never for softmax), times
    ``routed_scaling_factor``; expert_idx: [rows, k] int32, best first, ties to the lower index; norm_out: the
    float32 [rows, E] scores when ``out_flag``, else None. ``renorm`` must be 0.
    NaN logits: under softmax a row with a NaN gets NaN weights and indices 0..k-1; under sigmoid a NaN expert
    ranks last.""")
