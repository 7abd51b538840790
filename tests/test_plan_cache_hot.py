"""The plan cache's lean hit path (issue 13: the function form about as cheap as a plan): every hit gives the
same bytes as an unplanned run, fresh results the caller owns (also for small operands copied through the
entry's buffers), registrations that end with the call, a general-path call between hits, torch CPU tensors and
DeviceArrays, threads that never share an entry, and the runtime objects behind it (DeviceBuffer release)."""
from __future__ import annotations

import gc

import numpy as np
import pytest

import aclnn_moe as am
from aclnn_moe import _plan_cache, plan_cache
from aclnn_moe._dtypes import bfloat16
from aclnn_moe.capi import backend, ffi, lib

pytestmark = pytest.mark.skipif(backend().name != "host", reason="the lean path is the host backend's")


@pytest.fixture(autouse=True)
def _fresh_cache():
    plan_cache.clear()
    yield
    plan_cache.clear()


def _gating(rng, t, dt=bfloat16):
    x = rng.standard_normal((t, 256)).astype(dt)
    bias = (rng.standard_normal(256) * 0.1).astype(dt)
    return (x, 8), dict(bias=bias, k_group=4, group_count=8, group_select_mode=1, norm_type=1,
                        routed_scaling_factor=2.5)


def _unplanned(cls, args, kwargs):
    return cls(*args, **kwargs).run_once()


def _same(got, want):
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if w is None:
            assert g is None
            continue
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_array_equal(g.view(np.uint8), w.view(np.uint8))


def _registered(a) -> bool:
    dev = ffi.new("void **")
    p = ffi.cast("void *", a.__array_interface__["data"][0])
    if lib.aclrtHostRegister(p, a.nbytes, 0, dev) == 0:
        assert lib.aclrtHostUnregister(p) == 0
        return False
    return True


def _lean_runs(monkeypatch):
    calls = []
    real = _plan_cache._Lean.run

    def spy(self, op, values):
        calls.append(op)
        return real(self, op, values)

    monkeypatch.setattr(_plan_cache._Lean, "run", spy)
    return calls


@pytest.mark.parametrize("t", [1, 16, 200])  # 200: x above the small-operand size (registered in place)
def test_hits_match_unplanned_runs_and_results_stay_the_callers(monkeypatch, t):
    rng = np.random.default_rng(t)
    runs = _lean_runs(monkeypatch)
    kept = []
    for _ in range(5):
        args, kw = _gating(rng, t)
        got = am.moe_gating_top_k(*args, **kw)
        _same(got, _unplanned(am.MoeGatingTopK, args, kw))
        kept.append((got, _unplanned(am.MoeGatingTopK, args, kw)))
    assert len(runs) == 4  # every call after the first took the lean path
    for i, (got, want) in enumerate(kept):  # no result was overwritten by a later call
        _same(got, want)
        for other, _ in kept[i + 1:]:
            assert not np.shares_memory(got[0], other[0]) and not np.shares_memory(got[1], other[1])
    kept[0][0][0][...] = 0  # a caller writing into its result changes nothing for the next call
    args, kw = _gating(rng, t)
    _same(am.moe_gating_top_k(*args, **kw), _unplanned(am.MoeGatingTopK, args, kw))


def test_small_and_large_operands_leave_nothing_registered():
    rng = np.random.default_rng(1)
    for t in (2, 300):
        for _ in range(3):
            args, kw = _gating(rng, t, np.float32)
            y, idx, _ = am.moe_gating_top_k(*args, **kw)
            for a in (args[0], kw["bias"], y, idx):
                assert not _registered(a)
    assert args[0].nbytes > _plan_cache.STAGE_MAX_BYTES


def test_a_general_path_call_between_hits(monkeypatch):
    # a call with an explicit stream takes the general path, which binds the entry's descriptors to that
    # call's arrays; the next hit must bind its own (small operands: the entry's buffers) again
    rng = np.random.default_rng(2)
    runs = _lean_runs(monkeypatch)
    stream = am.Stream()
    try:
        for i in range(6):
            args, kw = _gating(rng, 4)
            s = stream if i % 2 else None
            _same(am.moe_gating_top_k(*args, **kw, stream=s), _unplanned(am.MoeGatingTopK, args, kw))
    finally:
        stream.close()
    assert len(runs) == 2  # calls 2 and 4 (call 0 planned the entry)


def test_strided_and_shared_inputs():
    rng = np.random.default_rng(3)
    n, k, h, e = 6, 2, 8, 3
    for _ in range(3):
        big = rng.standard_normal((n * k + n, 2 * h)).astype(np.float32)
        x, x1 = big[: n * k, ::2], big[n * k:, 1::2]  # strided views of one buffer
        args = (x, x1, x1, None, rng.random((n, k)).astype(np.float32),
                rng.permutation(n * k).astype(np.int32), rng.integers(0, e, (n, k)).astype(np.int32))
        _same(am.moe_finalize_routing(*args), _unplanned(am.MoeFinalizeRouting, args, {}))
        assert not _registered(big)


def test_torch_cpu_tensors(monkeypatch):
    torch = pytest.importorskip("torch")
    from aclnn_moe._operands import numpy_to_torch

    rng = np.random.default_rng(4)
    runs = _lean_runs(monkeypatch)
    outs = []
    for i in range(4):
        args, kw = _gating(rng, 3 + 100 * (i % 2))  # small (copied) and large (registered) layouts
        targs = (numpy_to_torch(args[0]), 8)
        tkw = dict(kw, bias=numpy_to_torch(kw["bias"]))
        y, idx, norm = am.moe_gating_top_k(*targs, **tkw)
        assert isinstance(y, torch.Tensor) and y.dtype == torch.bfloat16 and idx.dtype == torch.int32
        want = _unplanned(am.MoeGatingTopK, args, kw)
        _same((y.view(torch.int16).numpy(), idx.numpy()), (want[0].view(np.int16), want[1]))
        outs.append((y.clone(), y))
    xt = torch.randn(256, 5).to(torch.bfloat16).t()  # non-contiguous
    for _ in range(2):
        y, idx, _ = am.moe_gating_top_k(xt, 8)
        want = _unplanned(am.MoeGatingTopK, (np.ascontiguousarray(xt.float().numpy()).astype(bfloat16), 8), {})
        np.testing.assert_array_equal(idx.numpy(), want[1])
    for copy, y in outs:
        assert torch.equal(copy, y)
    assert len(runs) >= 3


def test_torch_op_hits():
    torch = pytest.importorskip("torch")
    import aclnn_moe.torch  # noqa: F401

    ids = torch.tensor([0, 0, 1, 3], dtype=torch.int32)
    h0 = plan_cache.hits
    outs = [torch.ops.aclnn_moe.moe_compute_expert_tokens(ids, 4) for _ in range(4)]
    assert plan_cache.hits - h0 == 3
    assert all(o.tolist() == [2, 3, 3, 4] for o in outs)
    assert len({o.data_ptr() for o in outs}) == 4
    y, idx, norm = torch.ops.aclnn_moe.moe_gating_top_k(torch.randn(3, 16), 2)
    assert norm.shape == (0,) and y.shape == (3, 2)


def test_device_arrays_through_the_function_form():
    rng = np.random.default_rng(5)
    got = []
    for _ in range(4):
        ids = np.sort(rng.integers(0, 8, 64)).astype(np.int32)
        out = am.moe_compute_expert_tokens(am.to_device(ids), 8)
        assert isinstance(out, am.DeviceArray)
        got.append((out, am.moe_compute_expert_tokens(ids, 8)))
    assert len({o.ptr for o, _ in got}) == 4  # fresh outputs every call
    for out, want in got:
        np.testing.assert_array_equal(out.to_host(), want)


def test_staging_off_registers_every_operand(monkeypatch):
    monkeypatch.setattr(_plan_cache, "STAGE_MAX_BYTES", 0)
    rng = np.random.default_rng(7)
    for _ in range(3):
        args, kw = _gating(rng, 2)
        _same(am.moe_gating_top_k(*args, **kw), _unplanned(am.MoeGatingTopK, args, kw))
    (entry,) = [op for s in plan_cache._slots.values() for op in s.ops]
    assert not entry._lean.staged


def test_phase2_error_on_a_hit_is_translated_and_frees_the_entry():
    ids = np.array([0, 1, 1, 2], np.int32)
    am.moe_compute_expert_tokens(ids, 3)
    with pytest.raises(am.AclnnError) as info:
        am.moe_compute_expert_tokens(np.array([0, -1, 1, 2], np.int32), 3)
    assert "sorted_expert_for_source_row" in str(info.value) or info.value.message
    assert plan_cache.size() == 0
    np.testing.assert_array_equal(am.moe_compute_expert_tokens(ids, 3), [1, 3, 4])


def test_lru_by_use_and_sweep_of_empty_slots():
    c = _plan_cache.PlanCache(max_size=2)
    from aclnn_moe.ops.compute_expert_tokens import MoeComputeExpertTokens

    ids = np.array([0, 0, 1], np.int32)
    for n in (2, 3, 4, 3, 5):  # 3 was used after 4: 2 then 4 are the ones evicted
        c.call(MoeComputeExpertTokens, dict(sorted_expert_for_source_row=ids, num_expert=n), None)
    assert c.size() == 2
    m0 = c.misses
    c.call(MoeComputeExpertTokens, dict(sorted_expert_for_source_row=ids, num_expert=3), None)
    c.call(MoeComputeExpertTokens, dict(sorted_expert_for_source_row=ids, num_expert=5), None)
    assert c.misses == m0
    for n in range(6, 40):  # many distinct keys: the table of slots stays bounded
        c.call(MoeComputeExpertTokens, dict(sorted_expert_for_source_row=ids, num_expert=n), None)
    assert c.size() == 2 and len(c._slots) <= 2 * 2 + 16
    c.clear()
    assert c.size() == 0 and not c._slots


def test_device_buffer_is_released_when_dropped_or_closed():
    am.Device().set_current()
    b = am.DeviceBuffer(256)
    p = ffi.cast("void *", b.ptr)
    assert lib.aclrtMemset(p, 256, 0, 256) == 0
    b.close()
    assert b.closed
    b.close()  # idempotent
    assert lib.aclrtMemset(p, 256, 0, 256) != 0  # no longer device memory
    b = am.DeviceBuffer(1 << 21)  # a mapped block
    p = ffi.cast("void *", b.ptr)
    del b
    gc.collect()
    assert lib.aclrtMemset(p, 1 << 21, 0, 1 << 21) != 0


def test_large_results_live_in_pooled_device_memory(monkeypatch):
    from aclnn_moe import _operation, _runtime

    rng = np.random.default_rng(8)
    t, h, k, e = 16, 7168, 8, 64
    x = rng.standard_normal((t, h)).astype(bfloat16)
    kw = dict(expert_num=e, expert_tokens_count_or_cumsum_flag=2)
    kept = []
    for _ in range(4):
        idx = np.argsort(rng.random((t, e)), axis=1)[:, :k].astype(np.int32)
        got = am.moe_init_routing_v2(x, idx, **kw)
        _same(got, _unplanned(am.MoeInitRoutingV2, (x, idx), kw))
        kept.append((got, idx))
    ex = kept[-1][0][0]
    assert ex.nbytes >= _plan_cache.BACKED_MIN_BYTES
    addrs = [g[0].__array_interface__["data"][0] for g, _ in kept[1:]]  # (the first call planned: np.empty)
    assert all(_runtime.device_backed(a, ex.nbytes) for a in addrs) and len(set(addrs)) == 3
    assert not _registered(x) and not _registered(kept[0][0][0])

    # an earlier result as the next call's input: bound as device memory, never staged (numpy and torch)
    leases = []
    real = _runtime.staging_pool.lease
    monkeypatch.setattr(_operation.staging_pool, "lease", lambda n: leases.append(n) or real(n))
    scales = rng.random((t, k)).astype(bfloat16)
    for got, idx in kept[1:]:
        args = (got[0], None, None, None, scales, got[1], idx)
        want = _unplanned(am.MoeFinalizeRouting, (np.array(got[0]),) + args[1:], {})
        _same(am.moe_finalize_routing(*args), want)
    torch = pytest.importorskip("torch")
    from aclnn_moe._operands import numpy_to_torch

    for got, idx in kept[1:]:
        tex = numpy_to_torch(got[0])
        out = am.moe_finalize_routing(tex, None, None, None, numpy_to_torch(scales), numpy_to_torch(got[1]),
                                      numpy_to_torch(idx))
        want = _unplanned(am.MoeFinalizeRouting, (np.array(got[0]), None, None, None, scales, got[1], idx), {})
        np.testing.assert_array_equal(out.view(torch.int16).numpy(), want.view(np.int16))
    assert not leases

    # a view keeps the block alive; the block is freed (back to the runtime's pool) with the last view
    addr = addrs[-1]
    view = kept[-1][0][0][3:]
    copy = np.array(view)
    del kept, got, ex, tex, args, want, out
    gc.collect()
    np.testing.assert_array_equal(view.view(np.uint16), copy.view(np.uint16))
    assert _runtime.device_backed(addr, 1)
    del view
    gc.collect()
    assert not _runtime.device_backed(addr, 1)


# ---- a user's plan executed again takes the same lean path (plan once, execute many: never slower than the
# function form)

def test_a_plans_repeated_executes_run_lean_with_fresh_results(monkeypatch):
    rng = np.random.default_rng(5)
    runs = _lean_runs(monkeypatch)
    args, kw = _gating(rng, 200)
    want = _unplanned(am.MoeGatingTopK, args, kw)
    with am.MoeGatingTopK(*args, **kw) as op:
        op.plan()
        got = [op.execute() for _ in range(4)]
    assert len(runs) == 3 and all(r is op for r in runs)  # the first execute made the record, the others used it
    for g in got:
        _same(g, want)
    for i, g in enumerate(got):  # each execute's results are the caller's own
        for other in got[i + 1:]:
            assert not np.shares_memory(g[0], other[0]) and not np.shares_memory(g[1], other[1])
    for a in (args[0], kw["bias"], got[-1][0]):
        assert not _registered(a)


def test_reset_operands_feeds_the_lean_path_and_a_new_kind_rebuilds_it(monkeypatch):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    runs = _lean_runs(monkeypatch)
    (x, k), kw = _gating(rng, 40, np.float32)
    op = am.MoeGatingTopK(x, k, **kw).plan()
    op.execute()
    for _ in range(2):  # same kind, new data: the record binds the new array
        x2 = rng.standard_normal(x.shape).astype(np.float32)
        op.reset_operands(x=x2)
        _same(op.execute(), _unplanned(am.MoeGatingTopK, (x2, k), kw))
    assert len(runs) == 2
    x3 = rng.standard_normal(x.shape).astype(np.float32)
    x3[..., 0] = 5.0  # a visible change: the record must not keep reading an earlier array
    op.reset_operands(x=torch.from_numpy(x3))  # another kind: the record is dropped
    want = _unplanned(am.MoeGatingTopK, (x3, k), kw)
    for _ in range(2):
        got = op.execute()
        assert isinstance(got[0], np.ndarray)  # (the caller's kind is the plan's first kind: numpy)
        _same(got, want)
    assert len(runs) == 2  # (a torch tensor in an operand described from numpy: the general path, every call)
    op.free()


def test_plans_with_a_stream_or_reused_outputs_keep_the_general_path(monkeypatch):
    rng = np.random.default_rng(7)
    runs = _lean_runs(monkeypatch)
    args, kw = _gating(rng, 16)
    want = _unplanned(am.MoeGatingTopK, args, kw)
    stream = am.Stream()
    try:
        with am.MoeGatingTopK(*args, **kw, stream=stream) as op:
            op.plan()
            for _ in range(3):
                _same(op.execute(), want)
        with am.MoeGatingTopK(*args, **kw, reuse_outputs=True) as op:
            op.plan()
            first = op.execute()
            second = op.execute()
            assert np.shares_memory(first[0], second[0])  # reuse_outputs: the same arrays, overwritten
            _same(second, want)
        with am.MoeGatingTopK(*args, **kw) as op:
            op.plan()
            op.execute()
            _same(op.execute(stream=stream), want)  # an explicit stream: the general path, then lean again
            _same(op.execute(), want)
    finally:
        stream.close()
    assert len(runs) == 1


def test_an_empty_operand_does_not_keep_a_call_off_the_lean_path(monkeypatch):
    # an empty window (permuted_tokens with 0 rows) sits in the staging arena, where nothing is ever copied
    rng = np.random.default_rng(8)
    runs = _lean_runs(monkeypatch)
    for _ in range(4):
        args = (rng.standard_normal((0, 64)).astype(np.float32), rng.permutation(8).astype(np.int32))
        kw = dict(probs=rng.random((1, 8)).astype(np.float32), num_topk=8, range=[0, 0])
        got = am.moe_token_unpermute_with_ep(*args, **kw)
        _same(got, _unplanned(am.MoeTokenUnpermuteWithEp, args, kw))
        assert not got.any()
    assert len(runs) == 3


def test_threads_sharing_one_plan_get_their_own_correct_results(in_threads):
    rng = np.random.default_rng(9)
    args, kw = _gating(rng, 64, np.float32)
    want = _unplanned(am.MoeGatingTopK, args, kw)
    results = []
    with am.MoeGatingTopK(*args, **kw) as op:
        op.plan()
        in_threads(lambda _: results.extend(op.execute() for _ in range(50)))
    assert len(results) == 200
    for got in results:  # (every call's results intact: no call wrote into another's outputs)
        _same(got, want)
