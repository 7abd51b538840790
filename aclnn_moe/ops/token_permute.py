"""MoeTokenPermute: sort the (token, slot) pairs by expert id (stable) and gather the token rows in that order
(``torch_npu.npu_moe_token_permute``); ``sorted_indices[p]`` is where pair p = t*K + k landed."""
from __future__ import annotations

import numpy as np

from .._errors import ArgumentError
from .._spec import INDICES, Attr, OpSpec, Output, Tensor


def permute_rows(total: int, num_out_tokens) -> int:
    """Rows of permuted_tokens (the tiling's resolution): 0/None keeps all, n > 0 the first min(n, total), n < 0
    all but the last abs(n)."""
    n = int(num_out_tokens or 0)
    return max(min(n if n > 0 else n + total, total), 0)


def _prepare(a):
    if len(a.tokens.shape) < 2:
        raise ArgumentError("tokens", f"must be at least 2-D [T, H], got shape {a.tokens.shape}")
    shape = a.indices.shape
    a.total = shape[0] * (shape[1] if len(shape) == 2 else 1)
    if a.num_out_tokens is None:  # torch_npu's default: keep every row
        a.num_out_tokens = 0
    a.rows = permute_rows(a.total, a.num_out_tokens)


def _examples(rng):
    from .._dtypes import bfloat16

    out = []
    for t, k, h, e, dt, n in ((3, 2, 4, 3, np.float32, 0), (64, 8, 256, 16, np.float16, 300),
                              (128, 4, 1024, 256, bfloat16, -100), (50, 1, 32, 8, np.int8, None),
                              (0, 2, 8, 4, np.float16, 0)):
        tokens = (rng.integers(-128, 128, (t, h)).astype(np.int8) if dt == np.int8
                  else rng.standard_normal((t, h)).astype(dt))
        out.append(dict(tokens=tokens, indices=rng.integers(0, e, (t, k)).astype(np.int32 if k % 2 else np.int64),
                        num_out_tokens=n))
    return out


SPEC = OpSpec(
    operator="MoeTokenPermute", api="aclnnMoeTokenPermute", function="moe_token_permute",
    torch_npu=('npu_moe_token_permute(Tensor tokens, Tensor indices, int? num_out_tokens=None, '
               'bool padded_mode=False) -> (Tensor, Tensor)',),
    params=(Tensor("tokens", "tokens", dtypes=("float32", "float16", "bfloat16", "int8")),
            Tensor("indices", "indices", dtypes=INDICES, ndim=(1, 2)),
            Attr("num_out_tokens", "numOutTokens", default=None),
            Attr("padded_mode", "paddedMode", kind="bool", default=False)),
    outputs=(Output("permuted_tokens", "permuteTokensOut", shape=lambda a: (a.rows,) + tuple(a.tokens.shape[1:]),
                    dtype=lambda a: a.tokens.dtype),
             Output("sorted_indices", "sortedIndicesOut", shape=lambda a: (a.total,), dtype="int32")),
    prepare=_prepare, examples=_examples,
    doc="""``torch_npu.npu_moe_token_permute``: returns ``(permuted_tokens, sorted_indices)``.

    tokens [T, H] (or more dims) fp16/bf16/fp32/int8; indices [T, K] or [T] int32/int64 expert ids in
    [0, 16777215), K <= 512, T*K < 16777215. num_out_tokens: None/0 keeps every row, n > 0 the first
    min(n, T*K), n < 0 all but the last abs(n). padded_mode must be False.
    permuted_tokens[j] = tokens[first[j] // K] where first is the stable argsort of indices.reshape(-1);
    sorted_indices (int32 [T*K]) = argsort(first): the row where pair p = t*K + k landed.""")
