"""MoeTokenPermuteWithRoutingMapGrad: the backward of MoeTokenPermuteWithRoutingMap, summing each token's gradient
rows and scattering the probs gradient back to its [T, E] routing-map place (torch_npu's
``npu_moe_token_permute_with_routing_map_grad`` argument order)."""
from __future__ import annotations

import numpy as np

from .._spec import FLOATS, INT32, Attr, OpSpec, Output, Tensor


def _examples(rng):
    from .._dtypes import bfloat16
    from ..reference.token_permute_with_routing_map import moe_token_permute_with_routing_map as fwd
    from .token_permute_with_routing_map import routing_map_of

    out = []
    for t, e, k, h, dt, drop, with_probs in ((3, 4, 2, 4, np.float32, False, True),
                                             (64, 16, 4, 256, np.float16, False, False),
                                             (32, 8, 2, 128, bfloat16, True, True),
                                             (20, 6, 3, 16, np.float32, True, False)):
        m = routing_map_of(rng, t, e, k)
        x = np.zeros((t, 1), np.float32)
        _, _, s = fwd(x, m, probs=None, num_out_tokens=t * k, drop_and_pad=drop)
        rows = s.shape[0]
        out.append(dict(permuted_tokens_output_grad=rng.standard_normal((rows, h)).astype(dt),
                        permuted_probs_output_grad=rng.standard_normal(rows).astype(dt) if with_probs else None,
                        sorted_indices=s, routing_map=m, experts_num=e, tokens_num=t, drop_and_pad=drop))
    return out


SPEC = OpSpec(
    operator="MoeTokenPermuteWithRoutingMapGrad", api="aclnnMoeTokenPermuteWithRoutingMapGrad",
    function="moe_token_permute_with_routing_map_grad",
    torch_npu=('npu_moe_token_permute_with_routing_map_grad(Tensor permuted_token_out_grad, '
               'Tensor? probs_grad, Tensor sorted_indices, Tensor routing_map, SymInt experts_num, '
               'SymInt tokens_num, bool drop_and_pad) -> (Tensor, Tensor)',),
    params=(Tensor("permuted_tokens_output_grad", "permutedTokensOutputGrad", dtypes=FLOATS, ndim=2),
            Tensor("permuted_probs_output_grad", "permutedProbsOutputGradOptional", dtypes=FLOATS, ndim=1,
                   optional=True, same_dtype="permuted_tokens_output_grad"),
            Tensor("sorted_indices", "sortedIndices", dtypes=INT32, ndim=1),
            Tensor("routing_map", "routingMapOptional", dtypes=("bool", "int8"), ndim=2, optional=True),
            Attr("experts_num", "experts_num"),
            Attr("tokens_num", "tokens_num"),
            Attr("drop_and_pad", "dropAndPad", kind="bool", default=False)),
    outputs=(Output("token_grad", "tokenGradOut",
                    shape=lambda a: (a.tokens_num, a.permuted_tokens_output_grad.shape[1]),
                    dtype=lambda a: a.permuted_tokens_output_grad.dtype),
             Output("probs_grad", "probsGradOutOptional", shape=lambda a: (a.tokens_num, a.experts_num),
                    dtype=lambda a: a.permuted_probs_output_grad.dtype,
                    when=lambda a: a.permuted_probs_output_grad is not None)),
    examples=_examples,
    doc="""``aclnnMoeTokenPermuteWithRoutingMapGrad``: returns ``(token_grad, probs_grad)`` (probs_grad None without
    a probs gradient).

    permuted_tokens_output_grad [rows, H] fp16/bf16/fp32 (the gradient of the forward's permuted_tokens);
    permuted_probs_output_grad [rows] (optional, same dtype; needs routing_map); sorted_indices int32 as the forward
    returns it; routing_map [T, E] bool/int8 (0/1); experts_num = E > 0, tokens_num = T > 0.

    Without drop_and_pad (K = len(sorted_indices) // T): ``token_grad[t]`` sums, k ascending in fp32, the rows
    d = sorted_indices[t*K + k] (-1 and d >= rows skipped); probs_grad [T, E] takes the probs gradient in the
    routing map's expert-major order, 0 elsewhere. With drop_and_pad (C = rows // E, sorted_indices token ids):
    ``token_grad[t]`` sums the rows i (ascending) with sorted_indices[i] == t; ``probs_grad[sorted_indices[i],
    i // C]`` = the probs gradient at i.""")
