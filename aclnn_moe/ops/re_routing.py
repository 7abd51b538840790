"""MoeReRouting: reorder tokens received by expert-parallel all-to-all (grouped rank-major: source rank, then
local expert) into expert-major order (expert, then source rank, keeping the order inside each block), moving the
per-token scales the same way (``torch_npu.npu_moe_re_routing``).

The C prototype of ``aclnnMoeReRouting`` is not published by CANN; the one used here is derived from the op
definition and the torch_npu call (see include/aclnnop/aclnn_moe_re_routing.h).
"""
from __future__ import annotations

import numpy as np

from .._dtypes import INDICES
from .._operation import Operation

OPERATOR = "MoeReRouting"
APIS = ("aclnnMoeReRouting",)


class MoeReRouting(Operation):
    api = "aclnnMoeReRouting"

    def __init__(self, tokens, expert_token_num_per_rank, *, per_token_scales=None, expert_token_num_type: int = 1,
                 idx_type: int = 0, stream=None):
        super().__init__(stream=stream)
        tok = self._input("tokens", tokens, dtypes=("float16", "bfloat16", "int8"), ndim=2)
        cnt = self._input("expert_token_num_per_rank", expert_token_num_per_rank, dtypes=INDICES, ndim=2)
        sc = self._input("per_token_scales", per_token_scales, dtypes=("float32",), ndim=1, optional=True)
        a, h = tok.shape
        e = cnt.shape[1]
        permute_tokens = self._output("permute_tokens", (a, h), tok.dtype)
        permute_scales = self._output("permute_per_token_scales", (a,), "float32")
        permute_idx = self._output("permute_token_idx", (a,), "int32")
        expert_token_num = self._output("expert_token_num", (e,), cnt.dtype)
        # expert_token_num_type (only 1) and idx_type (only 0) are checked by the operator (status 561002)
        self._args = [tok, cnt, sc, int(expert_token_num_type), int(idx_type), permute_tokens, permute_scales,
                      permute_idx, expert_token_num]
        self._results = (permute_tokens, permute_scales, permute_idx, expert_token_num)


def moe_re_routing(tokens, expert_token_num_per_rank, *, per_token_scales=None, expert_token_num_type: int = 1,
                   idx_type: int = 0, stream=None):
    """``torch_npu.npu_moe_re_routing``.

    tokens [A, H] fp16/bf16/int8; expert_token_num_per_rank [N, E] int32/int64 (tokens from rank r for local
    expert e, summing to A); per_token_scales [A] fp32 or None.
    Returns ``(permute_tokens [A, H], permute_per_token_scales [A] fp32, permute_token_idx [A] int32,
    expert_token_num [E])`` with ``permute_tokens[j] == tokens[permute_token_idx[j]]``. Without input scales the
    scales output carries no information (the host runtime zero-fills it; CANN leaves it undefined).
    """
    return MoeReRouting(tokens, expert_token_num_per_rank, per_token_scales=per_token_scales,
                        expert_token_num_type=expert_token_num_type, idx_type=idx_type, stream=stream).run_once()


def _random_counts(rng, n, e, a, dtype):
    """[n, e] counts summing to a (some zero)."""
    cuts = np.sort(rng.integers(0, a + 1, n * e - 1))
    c = np.diff(np.concatenate([[0], cuts, [a]]))
    return c.reshape(n, e).astype(dtype)


def selftest(rng: np.random.Generator) -> None:
    from .._dtypes import bfloat16
    from ..reference.re_routing import moe_re_routing as ref

    for (a, h, n, e, tdt, cdt, with_scales) in ((64, 32, 2, 4, np.int8, np.int32, True),
                                                (300, 128, 4, 8, np.float16, np.int64, False),
                                                (257, 7168, 8, 4, bfloat16, np.int32, True),
                                                (0, 16, 2, 2, np.int8, np.int32, True)):
        if np.dtype(tdt) == np.int8:
            tokens = rng.integers(-128, 128, (a, h), dtype=np.int8)
        else:
            tokens = rng.standard_normal((a, h)).astype(tdt)
        counts = _random_counts(rng, n, e, a, cdt)
        scales = rng.random(a, dtype=np.float32) if with_scales else None
        got = moe_re_routing(tokens, counts, per_token_scales=scales)
        exp = ref(tokens, counts, per_token_scales=scales)
        for name, g, x in zip(("permute_tokens", "permute_per_token_scales", "permute_token_idx",
                               "expert_token_num"), got, exp):
            if name == "permute_per_token_scales" and scales is None:
                continue
            assert g.dtype == x.dtype and g.shape == x.shape, f"{name}: {g.dtype}{g.shape} != {x.dtype}{x.shape}"
            np.testing.assert_array_equal(g.view(np.uint8) if g.dtype == bfloat16 else g,
                                          x.view(np.uint8) if x.dtype == bfloat16 else x, err_msg=name)
