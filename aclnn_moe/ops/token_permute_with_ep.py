"""MoeTokenPermuteWithEp: sort the (token, slot) pairs by expert id (stable) and output the rows of one
expert-parallel window ``[start, end)`` of that order, with their routing probabilities (aclnn only; torch_npu has
no binding)."""
from __future__ import annotations

import numpy as np

from .._dtypes import FLOATS, INDICES
from .._errors import ArgumentError
from .._operation import Operation

OPERATOR = "MoeTokenPermuteWithEp"
APIS = ("aclnnMoeTokenPermuteWithEp",)


def _window_rows(total: int, range_, num_out_tokens: int) -> int:
    """Rows of the output (the operator's own resolution; invalid ranges are reported by the operator)."""
    if range_ is None or len(range_) != 2:
        start, end = 0, int(num_out_tokens)
    else:
        start, end = int(range_[0]), int(range_[1])
    n = end - start
    if n <= 0:
        n += total
    return max(min(n, total), 0)


class MoeTokenPermuteWithEp(Operation):
    api = "aclnnMoeTokenPermuteWithEp"

    def __init__(self, tokens, indices, *, probs=None, range=None, num_out_tokens: int = 0, padded_mode=False,
                 stream=None):
        super().__init__(stream=stream)
        tokens = self._input("tokens", tokens, dtypes=FLOATS)
        indices = self._input("indices", indices, dtypes=INDICES, ndim=(1, 2))
        probs = self._input("probs", probs, dtypes=FLOATS, ndim=(1, 2), optional=True)
        if len(tokens.shape) < 2:
            raise ArgumentError("tokens", f"must be at least 2-D [T, H], got shape {tokens.shape}")
        if range is not None and len(range) == 0:
            range = None
        k = indices.shape[1] if len(indices.shape) == 2 else 1
        total = indices.shape[0] * k
        rows = _window_rows(total, range, int(num_out_tokens))
        permute_tokens = self._output("permute_tokens", (rows,) + tuple(tokens.shape[1:]), tokens.dtype)
        sorted_indices = self._output("sorted_indices", (total,), "int32")
        permute_probs = self._output("permute_probs", (rows,), probs.dtype) if probs is not None else None
        rng = self._int_array(range) if range is not None else None
        self._args = [tokens, indices, probs, rng, int(num_out_tokens), bool(padded_mode), permute_tokens,
                      sorted_indices, permute_probs]
        self._results = (permute_tokens, sorted_indices, permute_probs)


def moe_token_permute_with_ep(tokens, indices, *, probs=None, range=None, num_out_tokens: int = 0,
                              padded_mode=False, stream=None):
    """``aclnnMoeTokenPermuteWithEp``.

    tokens [T, H] fp16/bf16/fp32; indices [T, K] or [T] int32/int64 expert ids in [0, 16777215), K <= 512;
    probs (optional) shaped like indices, tokens dtype; range ``[start, end]`` with 0 <= start, end <= T*K
    (None: start 0, end num_out_tokens: 0 keeps every row, 0 < n <= T*K the first n; other values are rejected
    like a range outside [0, T*K]); padded_mode must be False.

    Returns ``(permute_tokens [n_out, H], sorted_indices int32 [T*K], permute_probs [n_out] or None)`` where
    ``sorted_indices[p]`` is the row of pair p = t*K + k in the stable expert order and
    ``permute_tokens[d - start] = tokens[p // K]`` for start <= d < start + n_out, n_out = end - start (+ T*K when
    <= 0). start == end outputs the whole permutation.
    """
    return MoeTokenPermuteWithEp(tokens, indices, probs=probs, range=range, num_out_tokens=num_out_tokens,
                                 padded_mode=padded_mode, stream=stream).run_once()


def _same(got, exp, name):
    assert (got is None) == (exp is None), name
    if got is None:
        return
    assert got.dtype == exp.dtype and got.shape == exp.shape, f"{name}: {got.dtype}{got.shape} != {exp.dtype}{exp.shape}"
    if got.dtype.name == "bfloat16":
        got, exp = got.view(np.uint16), exp.view(np.uint16)
    np.testing.assert_array_equal(got, exp, err_msg=name)


def selftest(rng: np.random.Generator) -> None:
    from .._dtypes import bfloat16
    from ..reference.token_permute_with_ep import moe_token_permute_with_ep as ref

    cases = ((3, 2, 4, 4, np.float32, (1, 5), True), (64, 8, 256, 16, np.float16, (100, 300), True),
             (128, 4, 7168, 256, bfloat16, None, False), (50, 1, 32, 8, np.float32, (0, 50), True),
             (20, 3, 16, 4, bfloat16, (7, 7), True), (0, 2, 8, 4, np.float16, (0, 0), False))
    for t, k, h, e, dt, window, with_probs in cases:
        tokens = rng.standard_normal((t, h)).astype(dt)
        indices = rng.integers(0, e, (t, k)).astype(np.int32 if k % 2 else np.int64)
        probs = rng.random((t, k)).astype(dt) if with_probs else None
        got = moe_token_permute_with_ep(tokens, indices, probs=probs, range=window)
        exp = ref(tokens, indices, probs=probs, range=window)
        for name, g, r in zip(("permute_tokens", "sorted_indices", "permute_probs"), got, exp):
            _same(g, r, name)
