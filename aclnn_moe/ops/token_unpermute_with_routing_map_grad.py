"""MoeTokenUnpermuteWithRoutingMapGrad: the backward of MoeTokenUnpermuteWithRoutingMap, sending each token's
gradient (times its routing probability) back to its permuted rows, and the probs gradient as row dot products
placed at their routing-map entries (torch_npu's ``npu_moe_token_unpermute_with_routing_map_grad`` argument order)."""
from __future__ import annotations

import numpy as np

from .._spec import FLOATS, INT32, Attr, IntList, OpSpec, Output, Tensor


def _examples(rng):
    from .._dtypes import bfloat16
    from ..reference.token_permute_with_routing_map import moe_token_permute_with_routing_map as permute
    from ..reference.token_unpermute_with_routing_map import moe_token_unpermute_with_routing_map as unpermute
    from .token_permute_with_routing_map import routing_map_of

    out = []
    for t, e, k, h, dt, pdt, drop in ((3, 4, 2, 4, np.float32, np.float32, False),
                                      (64, 16, 4, 256, np.float16, np.float16, False),
                                      (32, 8, 2, 128, bfloat16, np.float32, True),
                                      (20, 6, 3, 16, np.float32, None, True),
                                      (12, 5, 2, 8, bfloat16, None, False)):
        m = routing_map_of(rng, t, e, k)
        tokens = rng.standard_normal((t, h)).astype(dt)
        probs = rng.random((t, e)).astype(pdt) if pdt is not None else None
        permuted, _, s = permute(tokens, m, probs=probs, num_out_tokens=t * k, drop_and_pad=drop)
        if drop:  # the forward's (out_index, permute_token_id)
            _, oi, pid, _ = unpermute(permuted, s, [t, h], probs=probs, drop_and_pad=True)
        else:  # MindSpeed passes the forward's sorted_indices as both
            oi, pid = s, s
        out.append(dict(unpermuted_tokens_grad=rng.standard_normal((t, h)).astype(dt), out_index=oi,
                        permuted_token_id=pid, routing_map=m if probs is not None else None,
                        permuted_tokens=permuted if probs is not None else None, probs=probs, drop_and_pad=drop,
                        restore_shape=[t, h]))
    return out


SPEC = OpSpec(
    operator="MoeTokenUnpermuteWithRoutingMapGrad", api="aclnnMoeTokenUnpermuteWithRoutingMapGrad",
    function="moe_token_unpermute_with_routing_map_grad",
    torch_npu=('npu_moe_token_unpermute_with_routing_map_grad(Tensor unpermuted_tokens_grad, '
               'Tensor out_index, Tensor permuted_token_id, Tensor? routing_map, Tensor? permuted_tokens, '
               'Tensor? probs, bool drop_and_pad, int[] restore_shape) -> (Tensor, Tensor)',),
    params=(Tensor("unpermuted_tokens_grad", "unpermutedTokensGrad", dtypes=FLOATS, ndim=2),
            Tensor("out_index", "outIndex", dtypes=INT32, ndim=1),
            Tensor("permuted_token_id", "permuteTokenId", dtypes=INT32, ndim=1),
            Tensor("routing_map", "routingMapOptional", dtypes=("bool", "int8"), ndim=2, optional=True,
                   default=None),
            Tensor("permuted_tokens", "permutedTokensOptional", dtypes=FLOATS, ndim=2, optional=True,
                   same_dtype="unpermuted_tokens_grad", default=None),
            Tensor("probs", "probsOptional", dtypes=FLOATS, ndim=2, optional=True, default=None),
            Attr("drop_and_pad", "dropAndPad", kind="bool", default=False),
            IntList("restore_shape", "restoreShapeOptional", default=None)),
    outputs=(Output("permuted_tokens_grad", "permutedTokensGradOut",
                    shape=lambda a: (a.out_index.shape[0], a.unpermuted_tokens_grad.shape[1]),
                    dtype=lambda a: a.unpermuted_tokens_grad.dtype),
             Output("probs_grad", "probsGradOutOptional", shape=lambda a: a.probs.shape,
                    dtype=lambda a: a.probs.dtype, when=lambda a: a.probs is not None)),
    examples=_examples,
    doc="""``aclnnMoeTokenUnpermuteWithRoutingMapGrad``: returns ``(permuted_tokens_grad, probs_grad)`` (probs_grad
    None without probs).

    unpermuted_tokens_grad [T, H] fp16/bf16/fp32 (the gradient of the forward's unpermuted_tokens); out_index and
    permuted_token_id int32 [L]; with probs [T, E] (the tokens dtype, or fp32 with bf16 tokens) also routing_map
    [T, E] bool/int8 (0/1) and permuted_tokens [L, H] (the forward's input, tokens dtype); restore_shape is not
    read. permuted_tokens_grad is [L, H], rows no index selects 0.

    Without drop_and_pad (K = L // T; out_index is the forward's sorted_indices, -1 = unused slot;
    permuted_token_id is not read): ``permuted_tokens_grad[out_index[i]] = grad[i // K] * w[i]``, w = the
    forward's permute_probs (probs[routing_map], token-major, 0-padded; 1 without probs);
    ``probs_grad[t_j, e_j] = <grad[j // K], permuted_tokens[out_index[j]]>`` for the j-th routing-map entry.
    With drop_and_pad (out_index, permuted_token_id: the forward's outputs; C = L // E):
    ``permuted_tokens_grad[out_index[i]] = grad[tid] * probs[tid, out_index[i] // C]``, tid = permuted_token_id[i];
    ``probs_grad[tid, out_index[i] // C] = <grad[tid], permuted_tokens[out_index[i]]>``. fp32 arithmetic, one
    rounding; dot products in the grad family's fixed 64-lane order.""")
