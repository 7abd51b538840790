"""Issue 13 item 5: MoeComputeExpertTokens as the golden's binary search per expert: equal to the reference on
large inputs (the parallel scan path), sorted or not, strided, with the negative-id error naming the first one."""
from __future__ import annotations

import re

import numpy as np
import pytest

import aclnn_moe as am
from aclnn_moe.reference.compute_expert_tokens import moe_compute_expert_tokens as ref


@pytest.mark.parametrize("n", [0, 1, 2, 1023, 1025, (1 << 16) + 7, 1 << 17])
@pytest.mark.parametrize("e", [1, 7, 256])
def test_large_and_unsorted_match_reference(n, e):
    rng = np.random.default_rng(n + e)
    ids = np.sort(rng.integers(0, e + 1, n)).astype(np.int32)  # e itself: ignored, as in the golden
    np.testing.assert_array_equal(am.moe_compute_expert_tokens(ids, e), ref(ids, e))
    shuffled = rng.permutation(ids)
    np.testing.assert_array_equal(am.moe_compute_expert_tokens(shuffled, e), ref(shuffled, e))
    if n > 1:
        wide = np.repeat(ids, 3)[::3]  # a strided view
        np.testing.assert_array_equal(am.moe_compute_expert_tokens(wide, e), ref(ids, e))


@pytest.mark.parametrize("n", [1, 5, 1024, 40000, (1 << 17) - 1])
def test_negative_ids_of_a_sorted_list_are_named(n):
    # sorted ids: the negatives come first, and position 0 is the one reported (the searches read no other id
    # that could come first); a large list costs searches only, never a scan of every id
    ids = np.zeros(1 << 17, np.int32)
    ids[:n] = -3
    ids[0] = -9
    with pytest.raises(am.AclnnError) as e:
        am.moe_compute_expert_tokens(ids, 4)
    assert e.value.status == 161002
    assert re.search(r"\[0\] = -9\b", str(e.value)), str(e.value)


_SPIN_CHILD = r"""
import time, numpy as np, aclnn_moe as am
from aclnn_moe import reference
rng = np.random.default_rng(3)
t, k, h = 512, 4, 256  # large enough for the kernel pool
rows = rng.standard_normal((t * k, h)).astype(np.float32)
probs = rng.random((t, k)).astype(np.float32)
idx = rng.permutation(t * k).astype(np.int32)
want = reference.moe_token_unpermute(rows, idx, probs)
for i in range(60):  # back to back, then with pauses longer than the spin: workers asleep, woken by the next job
    if i >= 30:
        time.sleep(0.003)
    got = am.moe_token_unpermute(rows, idx, probs)
    assert np.array_equal(got, want), i
print("ok")
"""


@pytest.mark.parametrize("spin", ["0", "200", "1000", "-5", "junk"])
def test_workers_spinning_or_sleeping_give_the_same_results(spin):
    # ACLNN_MOE_SPIN_US: how long idle kernel threads spin before they sleep (bad values: the default); jobs
    # handed to spinning workers and jobs broadcast to sleeping ones give the same bytes
    import os
    import subprocess
    import sys

    env = dict(os.environ, ACLNN_MOE_SPIN_US=spin, ACLNN_MOE_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-P", "-c", _SPIN_CHILD], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
