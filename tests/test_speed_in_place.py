"""Issue 13 item 1: on the host backend host arrays are described in place (aclrtHostRegister for the call),
never staged; the staging path (CANN's) still works when forced; a range that cannot be registered falls back
to staging for that call; registrations never outlive the call."""
from __future__ import annotations


import numpy as np
import pytest

import aclnn_moe as am
from aclnn_moe import _operation, _plan_cache, _runtime
from aclnn_moe._dtypes import bfloat16
from aclnn_moe.capi import ffi, lib
from aclnn_moe.ops.finalize_routing import MoeFinalizeRouting, moe_finalize_routing
from aclnn_moe.reference.finalize_routing import moe_finalize_routing as ref_finalize

pytestmark = pytest.mark.skipif(am.capi.backend().name != "host", reason="host backend only")


def _finalize_case(rng, n=5, k=3, h=16, e=4, dt=np.float32):
    x = rng.standard_normal((n * k, h)).astype(dt)
    return dict(expanded_x=x, x1=rng.standard_normal((n, h)).astype(dt), x2=None,
                bias=rng.standard_normal((e, h)).astype(dt), scales=rng.random((n, k)).astype(dt),
                expanded_row_idx=rng.permutation(n * k).astype(np.int32),
                expanded_expert_idx=rng.integers(0, e, (n, k)).astype(np.int32))


def _call(case):
    return moe_finalize_routing(case["expanded_x"], case["x1"], case["x2"], case["bias"], case["scales"],
                                case["expanded_row_idx"], case["expanded_expert_idx"])


def _ref(case):
    return ref_finalize(case["expanded_x"], case["x1"], case["x2"], case["bias"], case["scales"],
                        case["expanded_row_idx"], case["expanded_expert_idx"])


def _registered(a: np.ndarray) -> bool:
    """Whether the array's memory is registered now (a fresh registration of it clashes)."""
    dev = ffi.new("void **")
    st = lib.aclrtHostRegister(ffi.cast("void *", a.__array_interface__["data"][0]), a.nbytes, 0, dev)
    if st == 0:
        assert lib.aclrtHostUnregister(ffi.cast("void *", a.__array_interface__["data"][0])) == 0
        return False
    return True


class _NoStaging:
    def __init__(self, monkeypatch):
        self.leases = 0
        real = _runtime.staging_pool.lease

        def lease(n):
            self.leases += 1
            return real(n)

        monkeypatch.setattr(_operation.staging_pool, "lease", lease)


def test_function_form_stages_nothing_and_matches_reference(monkeypatch):
    rng = np.random.default_rng(1)
    spy = _NoStaging(monkeypatch)
    for dt in (np.float32, np.float16, bfloat16):
        case = _finalize_case(rng, dt=dt)
        got, want = _call(case), _ref(case)
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    assert spy.leases == 0
    assert am.moe_compute_expert_tokens(np.array([0, 1, 1, 3], np.int32), 4).tolist() == [1, 3, 3, 4]
    assert spy.leases == 0


def test_forced_staging_path_matches_and_stages(monkeypatch):
    rng = np.random.default_rng(2)
    case = _finalize_case(rng)
    in_place = _call(case)
    monkeypatch.setattr(_operation, "HOST_IN_PLACE", False)
    spy = _NoStaging(monkeypatch)
    staged = _call(case)
    assert spy.leases == 1
    np.testing.assert_array_equal(staged, in_place)
    np.testing.assert_array_equal(staged, _ref(case))


def test_registrations_end_with_the_call():
    rng = np.random.default_rng(3)
    case = _finalize_case(rng)
    out = _call(case)
    for name in ("expanded_x", "x1", "scales", "expanded_row_idx"):
        assert not _registered(case[name]), name
    assert not _registered(out)


def test_views_of_one_buffer_and_strided_inputs():
    # inputs sharing one buffer (overlapping registrations are merged) and non-contiguous views
    rng = np.random.default_rng(4)
    n, k, h, e = 6, 2, 8, 3
    big = rng.standard_normal((n * k + n, 2 * h)).astype(np.float32)
    x, x1 = big[: n * k, ::2], big[n * k:, 1::2]  # interleaved columns of the same rows: overlapping spans
    case = dict(expanded_x=x, x1=x1, x2=x1, bias=None, scales=rng.random((n, k)).astype(np.float32),
                expanded_row_idx=rng.permutation(n * k).astype(np.int32),
                expanded_expert_idx=rng.integers(0, e, (n, k)).astype(np.int32))
    np.testing.assert_array_equal(_call(case), _ref(case))
    assert not _registered(big)


def test_range_already_registered_falls_back_to_staging(monkeypatch):
    rng = np.random.default_rng(5)
    # x above the plan cache's small-operand size (small operands of a cached plan are copied, never registered)
    case = _finalize_case(rng, h=2 * _plan_cache.STAGE_MAX_BYTES // 4 // 15 + 16)
    assert case["expanded_x"].nbytes > _plan_cache.STAGE_MAX_BYTES
    _call(case)  # (a cached plan of this layout: the next call takes the cache's hit path)
    x = case["expanded_x"]
    dev = ffi.new("void **")
    base = ffi.cast("void *", x.__array_interface__["data"][0])
    assert lib.aclrtHostRegister(base, x.nbytes, 0, dev) == 0  # as another call in flight would hold it
    try:
        spy = _NoStaging(monkeypatch)
        np.testing.assert_array_equal(_call(case), _ref(case))
        assert spy.leases == 1  # only the clashing range was staged
        assert _registered(x)  # the other holder's registration is untouched
    finally:
        assert lib.aclrtHostUnregister(base) == 0


def test_plan_with_host_arrays_rebinds_every_call(monkeypatch):
    rng = np.random.default_rng(6)
    spy = _NoStaging(monkeypatch)
    case = _finalize_case(rng)
    op = MoeFinalizeRouting(case["expanded_x"], case["x1"], case["x2"], case["bias"], case["scales"],
                            case["expanded_row_idx"], case["expanded_expert_idx"]).plan()
    try:
        results = []
        for i in range(4):
            fresh = _finalize_case(rng)
            op.reset_operands(expanded_permuted_rows=fresh["expanded_x"], skip1=fresh["x1"], scales=fresh["scales"])
            case.update(expanded_x=fresh["expanded_x"], x1=fresh["x1"], scales=fresh["scales"])
            got = op.execute()
            np.testing.assert_array_equal(got, _ref(case))
            results.append((got, _ref(case)))
        for got, want in results:  # every call's result stays the caller's
            np.testing.assert_array_equal(got, want)
    finally:
        op.free()
    assert spy.leases == 0


def test_threads_sharing_an_input(in_threads):
    # concurrent calls on the same input array: the ranges clash, the loser stages; every result is right
    rng = np.random.default_rng(7)
    case = _finalize_case(rng, n=64, h=256)
    want = _ref(case)

    def work(_):
        for _ in range(30):
            np.testing.assert_array_equal(_call(case), want)

    in_threads(work)
    assert not _registered(case["expanded_x"])


def test_torch_cpu_inputs_in_place(monkeypatch):
    torch = pytest.importorskip("torch")
    spy = _NoStaging(monkeypatch)
    ids = torch.tensor([0, 0, 2, 3, 3], dtype=torch.int32)
    out = am.moe_compute_expert_tokens(ids, 4)
    assert isinstance(out, torch.Tensor) and out.tolist() == [2, 2, 3, 5]
    assert spy.leases == 0
