"""numpy reference of aclnnMoeGatingTopK (spec/semantics.md section 4).

Written from the official golden (torch_npu ``moe_gating_top_k_numpy``) with two corrections:

* the golden leaves ``group_x`` undefined when ``group_count == 1``; here group filtering happens only when
  grouping is active, i.e. ``group_count not in (1, E)`` and ``k_group != group_count`` (the NPU's
  "without group" tiling otherwise). When it is inactive the golden's filtering would keep every expert
  anyway (or, for ``group_count == E``, select the same experts), so the results agree;
* softmax is computed the way the kernel does it: ``exp(x - max) * (1 / sum)`` in float32, with the sum taken
  left to right (``cumsum``) rather than numpy's pairwise order.

``exp`` is evaluated in float64 and rounded to float32, i.e. correctly rounded, which is what a good
``expf`` returns in practice. Everything else is float32 arithmetic. Ties rank the lower index first
(stable argsort of the negated scores); NaN ranks below -inf.
"""

import numpy as np

__all__ = ["moe_gating_top_k"]


def _exp32(v):
    with np.errstate(over="ignore"):
        return np.exp(v.astype(np.float64)).astype(np.float32)


def _seq_sum(v):
    """Left-to-right float32 sum over the last axis, keepdims."""
    return np.cumsum(v, axis=-1, dtype=np.float32)[..., -1:]


def moe_gating_top_k(x, k, *, bias=None, k_group=1, group_count=1, group_select_mode=0, renorm=0, norm_type=0,
                     out_flag=False, routed_scaling_factor=1.0, eps=1e-20):
    """Returns ``(y, expert_idx, norm_out)``: y [rows, k] in x's dtype (rounded to nearest even from float32),
    expert_idx [rows, k] int32, norm_out [rows, E] float32 or None when ``out_flag`` is false."""
    x = np.asarray(x)
    dtype = x.dtype
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D, got shape {x.shape}")
    if renorm != 0:
        raise ValueError("renorm must be 0")
    if norm_type not in (0, 1):
        raise ValueError("norm_type must be 0 or 1")
    xf = x.astype(np.float32)
    rows, experts = xf.shape
    if not 1 <= k <= experts:
        raise ValueError(f"k must be in [1, {experts}]")
    if experts % group_count:
        raise ValueError("the expert count must be divisible by group_count")

    with np.errstate(invalid="ignore"):
        if norm_type == 1:
            norm = np.float32(1) / (np.float32(1) + _exp32(-xf))
        else:
            if rows:
                e = _exp32(xf - xf.max(axis=-1, keepdims=True))
                norm = e * (np.float32(1) / _seq_sum(e))
            else:
                norm = xf.copy()
        norm = norm.astype(np.float32, copy=False)

        sel = norm + np.asarray(bias).astype(np.float32) if bias is not None else norm.copy()

        grouped = group_count not in (1, experts) and k_group != group_count
        if grouped and rows:
            g = sel.reshape(rows, group_count, -1)
            if group_select_mode == 0:
                group_score = np.amax(g, axis=-1)
            else:
                top2 = np.partition(g, -2, axis=-1)[..., -2:]
                group_score = top2[..., 1] + top2[..., 0]
            keep = np.argsort(-group_score, axis=-1, kind="stable")[:, :k_group]
            dropped = np.ones((rows, group_count), dtype=bool)
            dropped[np.arange(rows)[:, None], keep] = False
            sel = np.where(dropped[..., None], np.float32(-np.inf), g).reshape(rows, experts)

        idx = np.argsort(-sel, axis=-1, kind="stable")[:, :k]
        y = np.take_along_axis(norm, idx, axis=1)
        if norm_type == 1:
            y = y / (_seq_sum(y) + np.float32(eps))
        y = (y * np.float32(routed_scaling_factor)).astype(np.float32)

    return y.astype(dtype), idx.astype(np.int32), (norm if out_flag else None)
