"""MoeTokenPermuteWithEp: sort the (token, slot) pairs by expert id (stable) and output the rows of one
expert-parallel window ``[start, end)`` of that order, with their routing probabilities (aclnn only; torch_npu has
no binding)."""
from __future__ import annotations

import numpy as np

from .._errors import ArgumentError
from .._spec import FLOATS, INDICES, KW, Attr, IntList, OpSpec, Output, Tensor


def window_rows(total: int, range_, num_out_tokens: int) -> int:
    """Rows of the output window (the operator's own resolution; invalid ranges are reported by the operator):
    ``[start, end)`` from range, else ``[0, num_out_tokens)``; a length <= 0 wraps by ``total`` (start == end
    is the whole permutation), clipped to ``[0, total]``."""
    if range_ is None or len(range_) != 2:
        start, end = 0, int(num_out_tokens)
    else:
        start, end = int(range_[0]), int(range_[1])
    n = end - start
    if n <= 0:
        n += total
    return max(min(n, total), 0)


def _total(a):
    shape = a.indices.shape
    return shape[0] * (shape[1] if len(shape) == 2 else 1)


def _prepare(a):
    if len(a.tokens.shape) < 2:
        raise ArgumentError("tokens", f"must be at least 2-D [T, H], got shape {a.tokens.shape}")
    a.rows = window_rows(_total(a), a.range, a.num_out_tokens)


def _examples(rng):
    from .._dtypes import bfloat16

    out = []
    for t, k, h, e, dt, window, with_probs in (
            (3, 2, 4, 4, np.float32, (1, 5), True), (64, 8, 256, 16, np.float16, (100, 300), True),
            (128, 4, 7168, 256, bfloat16, None, False), (50, 1, 32, 8, np.float32, (0, 50), True),
            (20, 3, 16, 4, bfloat16, (7, 7), True), (0, 2, 8, 4, np.float16, (0, 0), False)):
        out.append(dict(tokens=rng.standard_normal((t, h)).astype(dt),
                        indices=rng.integers(0, e, (t, k)).astype(np.int32 if k % 2 else np.int64),
                        probs=rng.random((t, k)).astype(dt) if with_probs else None, range=window))
    return out


SPEC = OpSpec(
    operator="MoeTokenPermuteWithEp", api="aclnnMoeTokenPermuteWithEp", function="moe_token_permute_with_ep",
    params=(Tensor("tokens", "tokens", dtypes=FLOATS),
            Tensor("indices", "indices", dtypes=INDICES, ndim=(1, 2)),
            KW,
            Tensor("probs", "probsOptional", dtypes=FLOATS, ndim=(1, 2), optional=True, default=None),
            IntList("range", "rangeOptional", default=None),
            Attr("num_out_tokens", "numOutTokens", default=0),
            Attr("padded_mode", "paddedMode", kind="bool", default=False)),
    outputs=(Output("permute_tokens", "permuteTokensOut", shape=lambda a: (a.rows,) + tuple(a.tokens.shape[1:]),
                    dtype=lambda a: a.tokens.dtype),
             Output("sorted_indices", "sortedIndicesOut", shape=lambda a: (_total(a),), dtype="int32"),
             Output("permute_probs", "permuteProbsOut", shape=lambda a: (a.rows,),
                    dtype=lambda a: a.probs.dtype, when=lambda a: a.probs is not None)),
    prepare=_prepare, examples=_examples,
    doc="""``aclnnMoeTokenPermuteWithEp``.

    tokens [T, H] fp16/bf16/fp32; indices [T, K] or [T] int32/int64 expert ids in [0, 16777215), K <= 512;
    probs (optional) shaped like indices, tokens dtype; range ``[start, end]`` with 0 <= start, end <= T*K
    (None: start 0, end num_out_tokens: 0 keeps every row, 0 < n <= T*K the first n; other values are rejected
    like a range outside [0, T*K]); padded_mode must be False.

    Returns ``(permute_tokens [n_out, H], sorted_indices int32 [T*K], permute_probs [n_out] or None)`` where
    ``sorted_indices[p]`` is the row of pair p = t*K + k in the stable expert order and
    ``permute_tokens[d - start] = tokens[p // K]`` for start <= d < start + n_out, n_out = end - start (+ T*K when
    <= 0). start == end outputs the whole permutation.""")
