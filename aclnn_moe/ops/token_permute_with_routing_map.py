"""MoeTokenPermuteWithRoutingMap: MoE permute driven by a [T, E] token-to-expert mask, MindSpeed's form
(``torch_npu.npu_moe_token_permute_with_routing_map``): rows listed expert-major, or with ``drop_and_pad`` a fixed
capacity per expert."""
from __future__ import annotations

import numpy as np

from .._dtypes import FLOATS
from .._operation import Operation

OPERATOR = "MoeTokenPermuteWithRoutingMap"
APIS = ("aclnnMoeTokenPermuteWithRoutingMap",)


class MoeTokenPermuteWithRoutingMap(Operation):
    api = "aclnnMoeTokenPermuteWithRoutingMap"

    def __init__(self, tokens, routing_map, *, probs=None, num_out_tokens=None, drop_and_pad: bool = False,
                 stream=None):
        super().__init__(stream=stream)
        tokens = self._input("tokens", tokens, dtypes=FLOATS, ndim=2)
        routing_map = self._input("routing_map", routing_map, dtypes=("bool", "int8"), ndim=2)
        probs = self._input("probs", probs, dtypes=FLOATS, ndim=2, optional=True)
        n = tokens.shape[0] if num_out_tokens is None else int(num_out_tokens)
        align = routing_map.shape[1 if drop_and_pad else 0] or 1  # op-plugin: n // size(dim) * size(dim)
        rows = n // align * align
        permuted = self._output("permuted_tokens", (rows, tokens.shape[1]), tokens.dtype)
        permuted_probs = self._output("permuted_probs", (rows,), probs.dtype) if probs is not None else None
        sorted_indices = self._output("sorted_indices", (rows,), "int32")
        self._args = [tokens, routing_map, probs, n, bool(drop_and_pad), permuted, permuted_probs, sorted_indices]
        self._results = (permuted, permuted_probs, sorted_indices)


def moe_token_permute_with_routing_map(tokens, routing_map, *, probs=None, num_out_tokens=None,
                                       drop_and_pad: bool = False, stream=None):
    """``torch_npu.npu_moe_token_permute_with_routing_map``: returns ``(permuted_tokens, permuted_probs,
    sorted_indices)`` (permuted_probs None without probs).

    tokens [T, H] fp16/bf16/fp32; routing_map [T, E] bool/int8 (0/1); probs [T, E] in the tokens dtype (or fp32
    with bf16 tokens); num_out_tokens in [0, T*E], default T. Without drop_and_pad: K = num_out_tokens // T rows per
    token, rows listed expert-major (tokens ascending), sorted_indices the token-major destinations (-1 in unused
    slots when a token has fewer than K experts). With drop_and_pad: C = num_out_tokens // E rows per expert, the
    routed tokens first, padded with unrouted ones; sorted_indices are then the token ids.
    """
    return MoeTokenPermuteWithRoutingMap(tokens, routing_map, probs=probs, num_out_tokens=num_out_tokens,
                                         drop_and_pad=drop_and_pad, stream=stream).run_once()


def routing_map_of(rng: np.random.Generator, t: int, e: int, k: int) -> np.ndarray:
    """A [T, E] bool mask with exactly k experts per token."""
    m = np.zeros((t, e), bool)
    if t and k:
        m[np.arange(t)[:, None], np.argsort(rng.random((t, e)), axis=1)[:, :k]] = True
    return m


def selftest(rng: np.random.Generator) -> None:
    from .._dtypes import bfloat16
    from ..reference.token_permute_with_routing_map import moe_token_permute_with_routing_map as ref

    for t, e, k, h, dt, pdt, drop in ((3, 4, 2, 4, np.float32, np.float32, False),
                                      (64, 16, 4, 256, np.float16, np.float16, False),
                                      (32, 8, 2, 128, bfloat16, np.float32, True),
                                      (20, 6, 3, 16, np.float32, None, True)):
        tokens = rng.standard_normal((t, h)).astype(dt)
        m = routing_map_of(rng, t, e, k)
        probs = rng.random((t, e)).astype(pdt) if pdt is not None else None
        n = t * k
        got = moe_token_permute_with_routing_map(tokens, m, probs=probs, num_out_tokens=n, drop_and_pad=drop)
        exp = ref(tokens, m, probs=probs, num_out_tokens=n, drop_and_pad=drop)
        for g, r in zip(got, exp):
            assert (g is None) == (r is None)
            if g is not None:
                assert g.dtype == r.dtype and g.shape == r.shape
                np.testing.assert_array_equal(g.view(np.uint8), r.view(np.uint8))
