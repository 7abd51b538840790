"""MoeReRouting: reorder tokens received by expert-parallel all-to-all (grouped rank-major: source rank, then
local expert) into expert-major order (expert, then source rank, keeping the order inside each block), moving the
per-token scales the same way (``torch_npu.npu_moe_re_routing``).

The C prototype of ``aclnnMoeReRouting`` is not published by CANN; the one used here is derived from the op
definition and the torch_npu call (see include/aclnnop/aclnn_moe_re_routing.h).
"""
from __future__ import annotations

import numpy as np

from .._spec import FLOAT32, INDICES, KW, Attr, OpSpec, Output, Tensor


def random_counts(rng, n, e, a, dtype):
    """[n, e] counts summing to a (some zero)."""
    cuts = np.sort(rng.integers(0, a + 1, n * e - 1))
    c = np.diff(np.concatenate([[0], cuts, [a]]))
    return c.reshape(n, e).astype(dtype)


def _examples(rng):
    from .._dtypes import bfloat16

    out = []
    for (a, h, n, e, tdt, cdt, with_scales) in ((64, 32, 2, 4, np.int8, np.int32, True),
                                                (300, 128, 4, 8, np.float16, np.int64, False),
                                                (257, 7168, 8, 4, bfloat16, np.int32, True),
                                                (0, 16, 2, 2, np.int8, np.int32, True)):
        if np.dtype(tdt) == np.int8:
            tokens = rng.integers(-128, 128, (a, h), dtype=np.int8)
        else:
            tokens = rng.standard_normal((a, h)).astype(tdt)
        out.append(dict(tokens=tokens, expert_token_num_per_rank=random_counts(rng, n, e, a, cdt),
                        per_token_scales=rng.random(a, dtype=np.float32) if with_scales else None))
    return out


def _compare(got, exp, kwargs, what):
    from ._compare import assert_same

    for name, g, x in zip(SPEC.result_names(), got, exp):
        if name == "permute_per_token_scales" and kwargs.get("per_token_scales") is None:
            continue  # without input scales the output carries no information
        assert_same(g, x, f"{what} {name}")


SPEC = OpSpec(
    operator="MoeReRouting", api="aclnnMoeReRouting", function="moe_re_routing", torch_npu=('npu_moe_re_routing(Tensor tokens, Tensor expert_token_num_per_rank, *, '
               'Tensor? per_token_scales=None, int expert_token_num_type=1, int idx_type=0, '
               'int? tokens_dtype=None) -> (Tensor, Tensor, Tensor, Tensor)',),
    params=(Tensor("tokens", "tokens", dtypes=("float16", "bfloat16", "int8"), ndim=2),
            Tensor("expert_token_num_per_rank", "expertTokenNumPerRank", dtypes=INDICES, ndim=2),
            KW,
            Tensor("per_token_scales", "perTokenScalesOptional", dtypes=FLOAT32, ndim=1, optional=True,
                   default=None),
            Attr("expert_token_num_type", "expertTokenNumType", default=1),
            Attr("idx_type", "idxType", default=0)),
    outputs=(Output("permute_tokens", "permuteTokensOut", shape=lambda a: a.tokens.shape,
                    dtype=lambda a: a.tokens.dtype),
             Output("permute_per_token_scales", "permutePerTokenScalesOut", shape=lambda a: a.tokens.shape[:1],
                    dtype="float32"),
             Output("permute_token_idx", "permuteTokenIdxOut", shape=lambda a: a.tokens.shape[:1], dtype="int32"),
             Output("expert_token_num", "expertTokenNumOut", shape=lambda a: a.expert_token_num_per_rank.shape[1:],
                    dtype=lambda a: a.expert_token_num_per_rank.dtype)),
    examples=_examples, compare=_compare,
    doc="""``torch_npu.npu_moe_re_routing``.

    tokens [A, H] fp16/bf16/int8; expert_token_num_per_rank [N, E] int32/int64 (tokens from rank r for local
    expert e, summing to A); per_token_scales [A] fp32 or None.
    Returns ``(permute_tokens [A, H], permute_per_token_scales [A] fp32, permute_token_idx [A] int32,
    expert_token_num [E])`` with ``permute_tokens[j] == tokens[permute_token_idx[j]]``. Without input scales the
    scales output carries no information (the host runtime zero-fills it; CANN leaves it undefined).
    expert_token_num_type (only 1) and idx_type (only 0) are checked by the operator.""")
