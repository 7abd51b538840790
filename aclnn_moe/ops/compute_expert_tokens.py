"""MoeComputeExpertTokens: per-expert end offsets (an inclusive cumsum of the expert histogram) of rows sorted
by expert, i.e. ``out[i] = number of rows whose expert id is <= i`` (the group_list for grouped matmul)."""
from __future__ import annotations

import numpy as np

from .._errors import ArgumentError
from .._operation import Operation

OPERATOR = "MoeComputeExpertTokens"
APIS = ("aclnnMoeComputeExpertTokens",)


class MoeComputeExpertTokens(Operation):
    api = "aclnnMoeComputeExpertTokens"

    def __init__(self, sorted_expert_for_source_row, num_expert: int, *, stream=None):
        super().__init__(stream=stream)
        src = self._input("sorted_expert_for_source_row", sorted_expert_for_source_row, dtypes=("int32",), ndim=1)
        num_expert = int(num_expert)
        if not 0 < num_expert <= 2048:
            raise ArgumentError("num_expert", f"must be in (0, 2048], got {num_expert}")
        out = self._output("out", (num_expert,), src.dtype)
        self._args = [src, num_expert, out]
        self._results = out


def moe_compute_expert_tokens(sorted_expert_for_source_row, num_expert: int, *, stream=None):
    """``torch_npu.npu_moe_compute_expert_tokens``: for experts 0..num_expert-1, the end row (exclusive) of each
    expert's segment in `sorted_expert_for_source_row` (int32, ascending)."""
    return MoeComputeExpertTokens(sorted_expert_for_source_row, num_expert, stream=stream).run_once()


def selftest(rng: np.random.Generator) -> None:
    from ..reference import moe_compute_expert_tokens as ref

    for m, e in ((6, 3), (1000, 31), (4096, 256), (0, 8)):
        src = np.sort(rng.integers(0, e, m)).astype(np.int32)
        got = moe_compute_expert_tokens(src, e)
        np.testing.assert_array_equal(got, ref(src, e))
