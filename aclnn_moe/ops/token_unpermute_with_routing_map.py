"""MoeTokenUnpermuteWithRoutingMap: the inverse of MoeTokenPermuteWithRoutingMap (torch_npu's
``_npu_moe_token_unpermute_with_routing_map``, whose first output ``npu_moe_token_unpermute_with_routing_map``
returns)."""
from __future__ import annotations

import numpy as np

from .._dtypes import FLOATS
from .._operation import Operation

OPERATOR = "MoeTokenUnpermuteWithRoutingMap"
APIS = ("aclnnMoeTokenUnpermuteWithRoutingMap",)


class MoeTokenUnpermuteWithRoutingMap(Operation):
    api = "aclnnMoeTokenUnpermuteWithRoutingMap"

    def __init__(self, permuted_tokens, sorted_indices, restore_shape, *, probs=None, routing_map=None,
                 drop_and_pad: bool = False, stream=None):
        super().__init__(stream=stream)
        permuted = self._input("permuted_tokens", permuted_tokens, dtypes=FLOATS, ndim=2)
        sorted_indices = self._input("sorted_indices", sorted_indices, dtypes=("int32",), ndim=1)
        routing_map = self._input("routing_map", routing_map, dtypes=("bool", "int8", "uint8"), optional=True)
        probs = self._input("probs", probs, dtypes=FLOATS, optional=True)
        restore = [int(v) for v in restore_shape]
        n = sorted_indices.shape[0]
        out = self._output("unpermuted_tokens", tuple(restore), permuted.dtype)  # op-plugin: restore_shape
        out_index = self._output("out_index", (n,), "int32")
        token_id = self._output("permute_token_id", (n,), "int32")
        permute_probs = self._output("permute_probs", (n,), probs.dtype) if probs is not None else None
        self._args = [permuted, sorted_indices, routing_map, probs, bool(drop_and_pad), self._int_array(restore),
                      out, out_index, token_id, permute_probs]
        self._results = (out, out_index, token_id, permute_probs)


def moe_token_unpermute_with_routing_map(permuted_tokens, sorted_indices, restore_shape, *, probs=None,
                                         routing_map=None, drop_and_pad: bool = False, stream=None):
    """torch_npu's ``_npu_moe_token_unpermute_with_routing_map``: returns ``(unpermuted_tokens, out_index,
    permute_token_id, permute_probs)`` (permute_probs None without probs).

    restore_shape [T, H]. Without drop_and_pad: sorted_indices [T*K] (-1 = unused slot) as
    MoeTokenPermuteWithRoutingMap returns it, probs [T, E] with routing_map [T, E]: slot t*K + k of token t is
    weighted by the k-th selected prob of that token; ``unpermuted[t] = sum_k w * permuted_tokens[d]`` in fp32.
    With drop_and_pad: sorted_indices [E*C] token ids, ``unpermuted[sorted_indices[i]] += permuted_tokens[i] *
    probs[sorted_indices[i], i // C]``, in ascending token order.
    """
    return MoeTokenUnpermuteWithRoutingMap(permuted_tokens, sorted_indices, restore_shape, probs=probs,
                                           routing_map=routing_map, drop_and_pad=drop_and_pad,
                                           stream=stream).run_once()


def selftest(rng: np.random.Generator) -> None:
    from .._dtypes import bfloat16
    from ..reference.token_permute_with_routing_map import moe_token_permute_with_routing_map as permute
    from ..reference.token_unpermute_with_routing_map import moe_token_unpermute_with_routing_map as ref
    from .token_permute_with_routing_map import routing_map_of

    for t, e, k, h, dt, pdt, drop in ((3, 4, 2, 4, np.float32, np.float32, False),
                                      (64, 16, 4, 256, np.float16, np.float16, False),
                                      (32, 8, 2, 128, bfloat16, np.float32, True),
                                      (20, 6, 3, 16, np.float32, None, True)):
        tokens = rng.standard_normal((t, h)).astype(dt)
        m = routing_map_of(rng, t, e, k)
        probs = rng.random((t, e)).astype(pdt) if pdt is not None else None
        permuted, _, sorted_indices = permute(tokens, m, probs=probs, num_out_tokens=t * k, drop_and_pad=drop)
        kw = dict(probs=probs, routing_map=m if probs is not None else None, drop_and_pad=drop)
        got = moe_token_unpermute_with_routing_map(permuted, sorted_indices, [t, h], **kw)
        exp = ref(permuted, sorted_indices, [t, h], **kw)
        for g, r in zip(got, exp):
            assert (g is None) == (r is None)
            if g is not None:
                assert g.dtype == r.dtype and g.shape == r.shape
                np.testing.assert_array_equal(g.view(np.uint8), r.view(np.uint8))
