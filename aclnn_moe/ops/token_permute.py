"""MoeTokenPermute: sort the (token, slot) pairs by expert id (stable) and gather the token rows in that order
(``torch_npu.npu_moe_token_permute``); ``sorted_indices[p]`` is where pair p = t*K + k landed."""
from __future__ import annotations

import numpy as np

from .._errors import ArgumentError
from .._operation import Operation

OPERATOR = "MoeTokenPermute"
APIS = ("aclnnMoeTokenPermute",)
TOKEN_DTYPES = ("float32", "float16", "bfloat16", "int8")


class MoeTokenPermute(Operation):
    api = "aclnnMoeTokenPermute"

    def __init__(self, tokens, indices, num_out_tokens=None, padded_mode: bool = False, *, stream=None):
        super().__init__(stream=stream)
        tokens = self._input("tokens", tokens, dtypes=TOKEN_DTYPES)
        indices = self._input("indices", indices, dtypes=("int32", "int64"), ndim=(1, 2))
        if len(tokens.shape) < 2:
            raise ArgumentError("tokens", f"must be at least 2-D [T, H], got shape {tokens.shape}")
        n = 0 if num_out_tokens is None else int(num_out_tokens)
        total = int(np.prod(indices.shape, dtype=np.int64))
        rows = max(min(n if n > 0 else n + total, total), 0)  # the operator's resolution (tiling)
        permuted = self._output("permuted_tokens", (rows,) + tuple(tokens.shape[1:]), tokens.dtype)
        sorted_indices = self._output("sorted_indices", (total,), "int32")
        self._args = [tokens, indices, n, bool(padded_mode), permuted, sorted_indices]
        self._results = (permuted, sorted_indices)


def moe_token_permute(tokens, indices, num_out_tokens=None, padded_mode: bool = False, *, stream=None):
    """``torch_npu.npu_moe_token_permute``: returns ``(permuted_tokens, sorted_indices)``.

    tokens [T, H] (or more dims) fp16/bf16/fp32/int8; indices [T, K] or [T] int32/int64 expert ids in
    [0, 16777215), K <= 512, T*K < 16777215. num_out_tokens: None/0 keeps every row, n > 0 the first
    min(n, T*K), n < 0 all but the last |n|. padded_mode must be False.
    permuted_tokens[j] = tokens[first[j] // K] where first is the stable argsort of indices.reshape(-1);
    sorted_indices (int32 [T*K]) = argsort(first): the row where pair p = t*K + k landed.
    """
    return MoeTokenPermute(tokens, indices, num_out_tokens, padded_mode, stream=stream).run_once()


def selftest(rng: np.random.Generator) -> None:
    from .._dtypes import bfloat16
    from ..reference.token_permute import moe_token_permute as ref

    for t, k, h, e, dt, n in ((3, 2, 4, 3, np.float32, 0), (64, 8, 256, 16, np.float16, 300),
                              (128, 4, 1024, 256, bfloat16, -100), (50, 1, 32, 8, np.int8, None),
                              (0, 2, 8, 4, np.float16, 0)):
        tokens = rng.standard_normal((t, h)).astype(dt) if dt != np.int8 else rng.integers(-128, 128, (t, h), dt)
        indices = rng.integers(0, e, (t, k)).astype(np.int32 if k % 2 else np.int64)
        got = moe_token_permute(tokens, indices, n)
        exp = ref(tokens, indices, n)
        for g, r in zip(got, exp):
            assert g.dtype == r.dtype and g.shape == r.shape
            np.testing.assert_array_equal(g.view(np.uint8), r.view(np.uint8))
