"""The plan cache under the function forms: same layout + attributes reuse a planned executor (addresses rebound,
fresh returned outputs), different ones do not; bounded LRU, clear(), off at size 0, thread-safe."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import aclnn_moe as am
from aclnn_moe import _operation, _plan_cache, plan_cache
from aclnn_moe._plan_cache import PlanCache
from aclnn_moe.reference.compute_expert_tokens import moe_compute_expert_tokens as ref_cet
from aclnn_moe.reference.finalize_routing import moe_finalize_routing as ref_finalize


@pytest.fixture(autouse=True)
def _fresh_cache():
    plan_cache.clear()
    old = plan_cache.max_size
    yield
    plan_cache.set_max_size(old)
    plan_cache.clear()


def _ids(rng, n, e):
    return np.sort(rng.integers(0, e, n)).astype(np.int32)


def test_repeated_calls_reuse_one_plan_with_changing_data():
    rng = np.random.default_rng(0)
    h0, m0 = plan_cache.hits, plan_cache.misses
    results = []
    for _ in range(6):
        ids = _ids(rng, 40, 8)
        got = am.moe_compute_expert_tokens(ids, 8)
        np.testing.assert_array_equal(got, ref_cet(ids, 8))
        results.append((got, ref_cet(ids, 8)))
    assert plan_cache.misses - m0 == 1 and plan_cache.hits - h0 == 5
    assert plan_cache.size() == 1
    for got, want in results:  # each call returned its own array
        np.testing.assert_array_equal(got, want)
    assert len({id(g) for g, _ in results}) == len(results)


def test_key_has_layout_and_attributes_not_addresses():
    rng = np.random.default_rng(1)
    m0 = plan_cache.misses
    ids = _ids(rng, 40, 8)
    am.moe_compute_expert_tokens(ids, 8)
    am.moe_compute_expert_tokens(ids.copy(), 8)  # new address: same plan
    assert plan_cache.misses - m0 == 1
    np.testing.assert_array_equal(am.moe_compute_expert_tokens(ids, 4), ref_cet(ids, 4))  # attribute differs
    ids2 = _ids(rng, 41, 8)
    np.testing.assert_array_equal(am.moe_compute_expert_tokens(ids2, 8), ref_cet(ids2, 8))  # shape differs
    strided = np.repeat(ids, 2)[::2]  # same shape, other strides
    np.testing.assert_array_equal(am.moe_compute_expert_tokens(strided, 8), ref_cet(ids, 8))
    assert plan_cache.misses - m0 == 4
    assert plan_cache.size() == 4


def test_optional_inputs_and_variants_are_part_of_the_key():
    rng = np.random.default_rng(2)
    n, k, h, e = 4, 2, 8, 3
    x = rng.standard_normal((n * k, h)).astype(np.float32)
    x1 = rng.standard_normal((n, h)).astype(np.float32)
    bias = rng.standard_normal((e, h)).astype(np.float32)
    sc = rng.random((n, k)).astype(np.float32)
    rows = rng.permutation(n * k).astype(np.int32)
    eid = rng.integers(0, e, (n, k)).astype(np.int32)
    for _ in range(2):
        for args in ((x, x1, None, bias, sc, rows, eid), (x, x1, x1, bias, sc, rows, eid),
                     (x, None, None, None, sc, rows, None)):
            np.testing.assert_array_equal(am.moe_finalize_routing(*args), ref_finalize(*args))
    assert plan_cache.size() == 3


def test_lru_eviction_and_clear():
    rng = np.random.default_rng(3)
    plan_cache.set_max_size(2)
    for n in (10, 11, 12):
        am.moe_compute_expert_tokens(_ids(rng, n, 4), 4)
    assert plan_cache.size() == 2
    m0 = plan_cache.misses
    am.moe_compute_expert_tokens(_ids(rng, 12, 4), 4)  # most recent: kept
    am.moe_compute_expert_tokens(_ids(rng, 11, 4), 4)  # kept
    assert plan_cache.misses == m0
    am.moe_compute_expert_tokens(_ids(rng, 10, 4), 4)  # the oldest was evicted
    assert plan_cache.misses == m0 + 1
    assert plan_cache.size() == 2
    plan_cache.clear()
    assert plan_cache.size() == 0
    ids = _ids(rng, 10, 4)
    np.testing.assert_array_equal(am.moe_compute_expert_tokens(ids, 4), ref_cet(ids, 4))
    with pytest.raises(ValueError):
        plan_cache.set_max_size(-1)


def test_size_zero_turns_it_off():
    plan_cache.set_max_size(0)
    ids = np.array([0, 1, 1, 2], np.int32)
    for _ in range(3):
        np.testing.assert_array_equal(am.moe_compute_expert_tokens(ids, 3), [1, 3, 4])
    assert plan_cache.size() == 0


def test_errors_leave_no_entry_and_later_calls_work():
    ids = np.array([0, 1, 1, 2], np.int32)
    am.moe_compute_expert_tokens(ids, 3)
    bad = np.array([0, -1, 1, 2], np.int32)  # a phase-2 data error on the cached plan
    with pytest.raises(am.AclnnError):
        am.moe_compute_expert_tokens(bad, 3)
    assert plan_cache.size() == 0  # the failed entry was freed, not kept
    np.testing.assert_array_equal(am.moe_compute_expert_tokens(ids, 3), [1, 3, 4])


def test_parked_entry_keeps_no_caller_array():
    import weakref

    ids = np.array([0, 1, 1, 2], np.int32)
    out = am.moe_compute_expert_tokens(ids, 3)
    wi, wo = weakref.ref(ids), weakref.ref(out)
    del ids, out
    assert wi() is None and wo() is None


def test_threads_never_share_an_entry(monkeypatch, in_threads):
    """Both ways a cached plan runs (Operation.execute on a miss or the general path, the lean hit path of
    _plan_cache) are watched: no plan is ever in two threads at once, and each way was taken."""
    rng = np.random.default_rng(4)
    cases = [_ids(rng, 64, 16) for _ in range(8)]
    wants = [ref_cet(c, 16) for c in cases]
    in_use, lock = set(), threading.Lock()
    seen = {"execute": 0, "lean": 0}

    def watch(op, way, call):
        with lock:
            assert id(op) not in in_use, "one plan used by two threads at once"
            in_use.add(id(op))
            seen[way] += 1
        try:
            return call()
        finally:
            with lock:
                in_use.discard(id(op))

    real_execute, real_lean = _operation.Operation.execute, _plan_cache._Lean.run
    monkeypatch.setattr(_operation.Operation, "execute",
                        lambda self, **kw: watch(self, "execute", lambda: real_execute(self, **kw)))
    monkeypatch.setattr(_plan_cache._Lean, "run",
                        lambda self, op, values: watch(op, "lean", lambda: real_lean(self, op, values)))

    def work(seed):
        for i in range(40):
            j = (seed + i) % len(cases)
            np.testing.assert_array_equal(am.moe_compute_expert_tokens(cases[j], 16), wants[j])

    in_threads(work)
    assert seen["execute"] >= 1 and seen["lean"] >= 1, seen
    assert 1 <= plan_cache.size() <= 4  # one plan per concurrently running caller at most


def test_own_instance_bounds():
    c = PlanCache(max_size=1)
    ids = np.array([0, 0, 1], np.int32)
    from aclnn_moe.ops.compute_expert_tokens import MoeComputeExpertTokens

    for n in (2, 3, 2):
        np.testing.assert_array_equal(c.call(MoeComputeExpertTokens, dict(sorted_expert_for_source_row=ids, num_expert=n), None),
                                      ref_cet(ids, n))
    assert c.size() == 1 and c.misses == 3
    c.clear()


def test_torch_op_goes_through_the_cache():
    torch = pytest.importorskip("torch")
    import aclnn_moe.torch  # noqa: F401  (registers the ops)

    m0, h0 = plan_cache.misses, plan_cache.hits
    for i in range(3):
        ids = torch.tensor([0, 0, 1, 2 + i % 2], dtype=torch.int32)
        out = am.moe_compute_expert_tokens(ids, 4)
        assert out.tolist() == ref_cet(ids.numpy(), 4).tolist()
    assert plan_cache.hits - h0 == 2 and plan_cache.misses - m0 == 1
