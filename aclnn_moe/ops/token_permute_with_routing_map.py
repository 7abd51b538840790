"""MoeTokenPermuteWithRoutingMap: MoE permute driven by a [T, E] token-to-expert mask, MindSpeed's form
(``torch_npu.npu_moe_token_permute_with_routing_map``): rows listed expert-major, or with ``drop_and_pad`` a fixed
capacity per expert."""
from __future__ import annotations

import numpy as np

from .._spec import FLOATS, INT32, KW, Attr, OpSpec, Output, Tensor


def routing_map_of(rng: np.random.Generator, t: int, e: int, k: int) -> np.ndarray:
    """A [T, E] bool mask with exactly k experts per token."""
    m = np.zeros((t, e), bool)
    if t and k:
        m[np.arange(t)[:, None], np.argsort(rng.random((t, e)), axis=1)[:, :k]] = True
    return m


def _prepare(a):
    if a.num_out_tokens is None:  # torch_npu's default
        a.num_out_tokens = a.tokens.shape[0]
    align = a.routing_map.shape[1 if a.drop_and_pad else 0] or 1  # op-plugin: n // size(dim) * size(dim)
    a.rows = a.num_out_tokens // align * align


def _examples(rng):
    from .._dtypes import bfloat16

    out = []
    for t, e, k, h, dt, pdt, drop in ((3, 4, 2, 4, np.float32, np.float32, False),
                                      (64, 16, 4, 256, np.float16, np.float16, False),
                                      (32, 8, 2, 128, bfloat16, np.float32, True),
                                      (20, 6, 3, 16, np.float32, None, True)):
        out.append(dict(tokens=rng.standard_normal((t, h)).astype(dt), routing_map=routing_map_of(rng, t, e, k),
                        probs=rng.random((t, e)).astype(pdt) if pdt is not None else None, num_out_tokens=t * k,
                        drop_and_pad=drop))
    return out


SPEC = OpSpec(
    operator="MoeTokenPermuteWithRoutingMap", api="aclnnMoeTokenPermuteWithRoutingMap",
    function="moe_token_permute_with_routing_map", torch_npu=('npu_moe_token_permute_with_routing_map(Tensor tokens, Tensor routing_map, *, '
               'Tensor? probs=None, int? num_out_tokens=None, bool drop_and_pad=False) -> (Tensor, Tensor, '
               'Tensor)',),
    params=(Tensor("tokens", "tokens", dtypes=FLOATS, ndim=2),
            Tensor("routing_map", "routingMap", dtypes=("bool", "int8"), ndim=2),
            KW,
            Tensor("probs", "probsOptional", dtypes=FLOATS, ndim=2, optional=True, default=None),
            Attr("num_out_tokens", "numOutTokens", default=None),
            Attr("drop_and_pad", "dropAndPad", kind="bool", default=False)),
    outputs=(Output("permuted_tokens", "permuteTokensOut", shape=lambda a: (a.rows, a.tokens.shape[1]),
                    dtype=lambda a: a.tokens.dtype),
             Output("permuted_probs", "permuteProbsOutOptional", shape=lambda a: (a.rows,),
                    dtype=lambda a: a.probs.dtype, when=lambda a: a.probs is not None),
             Output("sorted_indices", "sortedIndicesOut", shape=lambda a: (a.rows,), dtype="int32")),
    prepare=_prepare, examples=_examples,
    doc="""``torch_npu.npu_moe_token_permute_with_routing_map``: returns ``(permuted_tokens, permuted_probs,
    sorted_indices)`` (permuted_probs None without probs).

    tokens [T, H] fp16/bf16/fp32; routing_map [T, E] bool/int8 (0/1); probs [T, E] in the tokens dtype (or fp32
    with bf16 tokens); num_out_tokens in [0, T*E], default T. Without drop_and_pad: K = num_out_tokens // T rows
    per token, rows listed expert-major (tokens ascending), sorted_indices the token-major destinations (-1 in
    unused slots when a token has fewer than K experts; a token with more is an error unless the mask holds
    exactly T*K entries). With drop_and_pad: C = num_out_tokens // E rows per expert, the routed tokens first,
    padded with unrouted ones; sorted_indices are then the token ids.""")
