"""numpy reference of aclnnMoeComputeExpertTokens (spec/semantics.md section 1).

The official golden (``compute_total_rows_before_expert``): for every expert i, a binary search for the last
position whose value is <= i; the result is that position + 1, i.e. upper_bound(sorted, i), the exclusive end
of expert i's segment. Values equal to ``num_expert`` are never <= i and are thereby ignored. Vectorised here
over all experts at once, with exactly the golden's midpoint rule.
"""

import numpy as np

__all__ = ["moe_compute_expert_tokens"]


def moe_compute_expert_tokens(sorted_expert_for_source_row, num_expert):
    """int32 [num_expert]: out[i] = number of rows with expert <= i (input sorted ascending)."""
    a = np.asarray(sorted_expert_for_source_row).reshape(-1).astype(np.int64)
    target = np.arange(num_expert, dtype=np.int64)
    low = np.zeros(num_expert, dtype=np.int64)
    high = np.full(num_expert, a.size - 1, dtype=np.int64)
    loc = np.full(num_expert, -1, dtype=np.int64)
    active = low <= high
    while active.any():
        mid = (low + high) // 2
        val = a[np.where(active, mid, 0)] if a.size else np.zeros(num_expert, dtype=np.int64)
        greater = val > target
        high = np.where(active & greater, mid - 1, high)
        loc = np.where(active & ~greater, mid, loc)
        low = np.where(active & ~greater, mid + 1, low)
        active = low <= high
    return (loc + 1).astype(np.int32)
