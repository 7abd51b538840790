"""MoeGatingTopKSoftmaxV2: softmax then top-k (renorm 0, optionally returning the softmax), or top-k of the logits
then softmax over the k chosen (renorm 1) (``torch_npu.npu_moe_gating_top_k_softmax_v2``)."""
from __future__ import annotations

import numpy as np

from .._spec import FLOATS, KW, Attr, OpSpec, Output, Tensor
from .gating_top_k_softmax import MAX_K, separated_logits


def _prepare(a):
    # torch_npu passes the flag only where it has an effect (renorm 0)
    a.output_softmax = bool(a.output_softmax) and a.renorm == 0


def _examples(rng):
    from .._dtypes import bfloat16

    out = []
    for shape, k, dt, fin, renorm, sm in (((16, 64), 8, np.float32, False, 0, True),
                                          ((4, 7, 128), 6, bfloat16, True, 1, False),
                                          ((33, 8), 2, np.float16, True, 0, False),
                                          ((3, 2, 5), 5, np.float32, False, 1, True),
                                          ((0, 16), 4, np.float16, False, 0, True)):
        finished = rng.random(shape[:-1]) < 0.3 if fin else None
        out.append(dict(x=separated_logits(rng, shape, dt), k=k, finished=finished, renorm=renorm,
                        output_softmax=sm))
    return out


SPEC = OpSpec(
    operator="MoeGatingTopKSoftmaxV2", api="aclnnMoeGatingTopKSoftmaxV2", function="moe_gating_top_k_softmax_v2",
    torch_npu=('npu_moe_gating_top_k_softmax_v2(Tensor x, *, int k=1, Tensor? finished=None, int? renorm=0, '
               'bool? output_softmax=False) -> (Tensor, Tensor, Tensor)',),
    params=(Tensor("x", "x", dtypes=FLOATS, ndim=(2, 3)),
            KW,
            Attr("k", "k", default=1, lo=1, hi_from=lambda a: min(a.x.shape[-1], MAX_K),
                 why="the expert count of x, at most 1024"),
            Tensor("finished", "finishedOptional", dtypes=("bool",), ndim=(1, 2), optional=True, default=None),
            Attr("renorm", "renorm", default=0),
            Attr("output_softmax", "outputSoftmaxResultFlag", kind="bool", default=False)),
    outputs=(Output("y", "yOut", shape=lambda a: tuple(a.x.shape[:-1]) + (a.k,), dtype=lambda a: a.x.dtype),
             Output("expert_idx", "expertIdxOut", shape=lambda a: tuple(a.x.shape[:-1]) + (a.k,), dtype="int32"),
             Output("softmax_result", "softmaxResultOutOptional", shape=lambda a: tuple(a.x.shape),
                    dtype="float32", when=lambda a: a.output_softmax)),
    prepare=_prepare, examples=_examples,
    doc="""``torch_npu.npu_moe_gating_top_k_softmax_v2``: returns ``(y, expert_idx, softmax_result)``.

    x [N, E] or [B, S, E] fp16/bf16/fp32 (E > 0); k in [1, min(E, 1024)]; finished (optional) bool of shape
    x.shape[:-1]; renorm 0: y = the top-k of softmax(x), softmax_result the float32 softmax when output_softmax
    (else None); renorm 1: the top-k of x, then y = their softmax (output_softmax has no effect). expert_idx int32,
    E for finished rows. fp32 arithmetic, ties to the lower expert, y rounded as in MoeGatingTopKSoftmax.""")
