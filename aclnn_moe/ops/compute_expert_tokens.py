"""MoeComputeExpertTokens: per-expert end offsets (an inclusive cumsum of the expert histogram) of rows sorted
by expert, i.e. ``out[i] = number of rows whose expert id is <= i`` (the group_list for grouped matmul)."""
from __future__ import annotations

import numpy as np

from .._spec import INT32, KW, Attr, OpSpec, Output, Tensor
from ._limits import MAX_EXPERTS


def _examples(rng):
    return [dict(sorted_expert_for_source_row=np.sort(rng.integers(0, e, m)).astype(np.int32), num_expert=e)
            for m, e in ((6, 3), (1000, 31), (4096, 256), (0, 8))]


SPEC = OpSpec(
    operator="MoeComputeExpertTokens", api="aclnnMoeComputeExpertTokens", function="moe_compute_expert_tokens",
    torch_npu=('npu_moe_compute_expert_tokens(Tensor sorted_expert_for_source_row, int num_expert) -> Tensor',),
    params=(Tensor("sorted_expert_for_source_row", "sortedExperts", dtypes=INT32, ndim=1),
            Attr("num_expert", "numExperts", lo=1, hi=MAX_EXPERTS),
            KW),
    outputs=(Output("out", "out", shape=lambda a: (a.num_expert,),
                    dtype=lambda a: a.sorted_expert_for_source_row.dtype),),
    examples=_examples,
    doc="""``torch_npu.npu_moe_compute_expert_tokens``: for experts 0..num_expert-1, the end row (exclusive) of each
    expert's segment in `sorted_expert_for_source_row` (int32, ascending). Ids >= num_expert are ignored. As CANN
    documents it, the operator runs binary searches (it does not read every id): a negative first id, or one a search
    reads, raises AclnnError (ACLNN_ERR_PARAM_INVALID); unsorted ids give the golden's searches' answer.""")
