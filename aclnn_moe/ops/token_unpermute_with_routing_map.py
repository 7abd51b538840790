"""MoeTokenUnpermuteWithRoutingMap: the inverse of MoeTokenPermuteWithRoutingMap (torch_npu's
``_npu_moe_token_unpermute_with_routing_map``; ``npu_moe_token_unpermute_with_routing_map`` returns its first
output)."""
from __future__ import annotations

import numpy as np

from .._errors import ArgumentError
from .._spec import FLOATS, INT32, KW, Attr, IntList, OpSpec, Output, Tensor


def _prepare(a):
    if a.restore_shape is None or len(a.restore_shape) != 2:
        raise ArgumentError("restore_shape", f"must be [T, H] (2 values), got {a.restore_shape}")


def _examples(rng):
    from .._dtypes import bfloat16
    from ..reference.token_permute_with_routing_map import moe_token_permute_with_routing_map as permute
    from .token_permute_with_routing_map import routing_map_of

    out = []
    for t, e, k, h, dt, pdt, drop in ((3, 4, 2, 4, np.float32, np.float32, False),
                                      (64, 16, 4, 256, np.float16, np.float16, False),
                                      (32, 8, 2, 128, bfloat16, np.float32, True),
                                      (20, 6, 3, 16, np.float32, None, True),
                                      (12, 5, 2, 8, bfloat16, None, False)):
        tokens = rng.standard_normal((t, h)).astype(dt)
        m = routing_map_of(rng, t, e, k)
        probs = rng.random((t, e)).astype(pdt) if pdt is not None else None
        permuted, _, sorted_indices = permute(tokens, m, probs=probs, num_out_tokens=t * k, drop_and_pad=drop)
        out.append(dict(permuted_tokens=permuted, sorted_indices=sorted_indices, restore_shape=[t, h], probs=probs,
                        routing_map=m if probs is not None and not drop else None, drop_and_pad=drop))
    return out


SPEC = OpSpec(
    operator="MoeTokenUnpermuteWithRoutingMap", api="aclnnMoeTokenUnpermuteWithRoutingMap",
    function="moe_token_unpermute_with_routing_map",
    torch_npu=('npu_moe_token_unpermute_with_routing_map(Tensor permuted_tokens, Tensor sorted_indices, '
               'int[] restore_shape, *, Tensor? probs=None, Tensor? routing_map=None, '
               'bool drop_and_pad=False) -> Tensor',
               '_npu_moe_token_unpermute_with_routing_map(Tensor permuted_tokens, Tensor sorted_indices, '
               'int[] restore_shape, *, Tensor? probs=None, Tensor? routing_map=None, '
               'bool drop_and_pad=False) -> (Tensor, Tensor, Tensor, Tensor)'),
    params=(Tensor("permuted_tokens", "permutedTokens", dtypes=FLOATS, ndim=2),
            Tensor("sorted_indices", "sortedIndices", dtypes=INT32, ndim=1),
            IntList("restore_shape", "restoreShapeOptional", length=2),
            KW,
            Tensor("probs", "probsOptional", dtypes=FLOATS, ndim=2, optional=True, default=None),
            Tensor("routing_map", "routingMapOptional", dtypes=("bool", "int8", "uint8"), ndim=2, optional=True,
                   default=None),
            Attr("drop_and_pad", "paddedMode", kind="bool", default=False)),
    outputs=(Output("unpermuted_tokens", "unpermutedTokens", shape=lambda a: tuple(a.restore_shape),
                    dtype=lambda a: a.permuted_tokens.dtype),
             Output("out_index", "outIndex", shape=lambda a: a.sorted_indices.shape, dtype="int32"),
             Output("permute_token_id", "permuteTokenId", shape=lambda a: a.sorted_indices.shape, dtype="int32"),
             Output("permute_probs", "permuteProbs", shape=lambda a: a.sorted_indices.shape,
                    dtype=lambda a: a.probs.dtype, when=lambda a: a.probs is not None)),
    prepare=_prepare, examples=_examples,
    doc="""torch_npu's ``_npu_moe_token_unpermute_with_routing_map``: returns ``(unpermuted_tokens, out_index,
    permute_token_id, permute_probs)`` (permute_probs None without probs).

    restore_shape [T, H]. Without drop_and_pad: sorted_indices [T*K] (-1 = unused slot) as
    MoeTokenPermuteWithRoutingMap returns it; probs [T, E] need routing_map [T, E]: slot t*K + k of token t is
    weighted by the k-th selected prob of that token (probs[routing_map], token-major);
    ``unpermuted[t] = sum_k w * permuted_tokens[d]`` in fp32, rows outside [0, rows) skipped; out_index = arange,
    permute_token_id = slot // K. With drop_and_pad: sorted_indices [E*C] token ids,
    ``unpermuted[sorted_indices[i]] += permuted_tokens[i] * probs[sorted_indices[i], i // C]`` in ascending token
    order (permute_token_id, out_index: the stable sort of sorted_indices).""")
