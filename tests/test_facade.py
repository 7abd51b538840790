"""The Pythonic layer: array libraries in and out, plans and rebinding, streams and events, the workspace
pool, and the error policy. Operator numerics are tested per operator in test_<op>.py."""
from __future__ import annotations

import numpy as np
import pytest

import aclnn_moe as am
from aclnn_moe import reference as ref
from aclnn_moe._dtypes import bfloat16


def _logits(rng, t=8, e=64, dtype=np.float32):
    return rng.standard_normal((t, e)).astype(dtype)


def test_results_come_back_in_the_callers_library(rng):
    x = _logits(rng)
    y, idx, out = am.moe_gating_top_k(x, 4)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32 and idx.dtype == np.int32 and out is None
    yb, _, _ = am.moe_gating_top_k(x.astype(bfloat16), 4)
    assert yb.dtype == bfloat16
    d = am.to_device(x)
    yd, idxd, _ = am.moe_gating_top_k(d, 4)
    assert isinstance(yd, am.DeviceArray) and yd.shape == (8, 4)
    np.testing.assert_array_equal(yd.to_host(), y)
    np.testing.assert_array_equal(idxd.to_host(), idx)


def test_dlpack_producers_are_accepted(rng):
    class Producer:  # any object speaking DLPack on the CPU
        def __init__(self, a):
            self._a = a

        def __dlpack__(self, **kw):
            return self._a.__dlpack__(**kw)

        def __dlpack_device__(self):
            return self._a.__dlpack_device__()

    x = _logits(rng)
    y, idx, _ = am.moe_gating_top_k(Producer(x), 3)
    y_ref, idx_ref, _ = ref.moe_gating_top_k(x, 3)
    np.testing.assert_array_equal(idx, idx_ref)


def test_non_contiguous_views_are_described_not_copied(rng):
    big = _logits(rng, 16, 128)
    view = big[::2, ::2]  # strided in both dimensions
    y, idx, _ = am.moe_gating_top_k(view, 4)
    y_ref, idx_ref, _ = ref.moe_gating_top_k(np.ascontiguousarray(view), 4)
    np.testing.assert_array_equal(idx, idx_ref)
    np.testing.assert_allclose(y, y_ref, rtol=1e-6)
    flipped = big[::-1]  # negative strides have no aclTensor form: copied
    _, idx2, _ = am.moe_gating_top_k(flipped, 4)
    np.testing.assert_array_equal(idx2, ref.moe_gating_top_k(np.ascontiguousarray(flipped), 4)[1])


def test_torch_cpu_tensors_round_trip(rng):
    torch = pytest.importorskip("torch", reason="torch is optional; its interop is tested where it is installed")
    x = torch.from_numpy(_logits(rng)).to(torch.bfloat16)
    y, idx, _ = am.moe_gating_top_k(x.t().contiguous().t(), 4)  # a transposed (non-contiguous) tensor
    assert isinstance(y, torch.Tensor) and y.dtype == torch.bfloat16 and idx.dtype == torch.int32
    y_ref, idx_ref, _ = ref.moe_gating_top_k(x.float().numpy().astype(bfloat16), 4)
    np.testing.assert_array_equal(idx.numpy(), idx_ref)


def test_plan_once_execute_many_with_rebinding(rng):
    xs = [_logits(rng) for _ in range(3)]
    with am.MoeGatingTopK(xs[0], 4, renorm=0) as op:
        op.plan()
        for x in xs:
            op.reset_operands(x=x)
            y, idx, _ = op.execute()
            np.testing.assert_array_equal(idx, ref.moe_gating_top_k(x, 4)[1])
        with pytest.raises(am.ArgumentError, match="layout"):
            op.reset_operands(x=_logits(rng, 4))  # another shape needs another plan
    with pytest.raises(RuntimeError, match="freed"):
        op.execute()


def test_plan_with_device_operands_rebinds_addresses(rng):
    xs = [_logits(rng) for _ in range(3)]
    ds = [am.to_device(x) for x in xs]
    op = am.MoeGatingTopK(ds[0], 2).plan()
    try:
        for x, d in zip(xs, ds):
            op.reset_operands(x=d)  # aclSetInputTensorAddr on the repeatable executor
            _, idx, _ = op.execute()
            np.testing.assert_array_equal(idx.to_host(), ref.moe_gating_top_k(x, 2)[1])
    finally:
        op.free()
    op.free()  # idempotent


def test_streams_events_and_the_workspace_pool(rng):
    x = _logits(rng, 64, 256)
    with am.Stream() as s:
        start, end = am.Event(), am.Event()
        start.record(s)
        am.moe_gating_top_k(x, 8, k_group=4, group_count=8, stream=s)
        end.record(s)
        s.synchronize()
        assert end.elapsed_ms(start) > 0
        am.moe_gating_top_k(x, 8, stream=int(s))  # a raw handle works too
    assert s.closed
    am.moe_gating_top_k(x, 8)
    settled = am.workspace_pool.nbytes
    assert settled > 0  # gating asks for per-thread scratch
    for _ in range(3):
        am.moe_gating_top_k(x, 8)
    assert am.workspace_pool.nbytes == settled  # reused, not reallocated per call
    pool = am.WorkspacePool()
    a = pool.get(1000)
    assert pool.get(500) == a  # a smaller request reuses the buffer
    b = pool.get(4000)
    assert pool.nbytes >= 4000 and pool.get(4000) == b
    pool.release()
    assert pool.nbytes == 0
    made = []

    def counting(nbytes):  # a caller-provided allocator
        made.append(nbytes)
        return am.DeviceBuffer(nbytes)

    pool.set_allocator(counting)
    pool.get(256)
    pool.get(128)
    assert made == [256]
    pool.release()


def test_errors_carry_status_api_and_message(rng):
    with pytest.raises(am.AclnnError) as e:
        am.moe_compute_expert_tokens(np.array([-7, 0], np.int32), 3)  # no expert has a negative id
    assert e.value.status == 161002 and e.value.api == "aclnnMoeComputeExpertTokens"
    assert "-7" in e.value.message
    with pytest.raises(am.ArgumentError) as a:
        am.moe_gating_top_k(np.zeros((2, 8), np.int32), 2)
    assert a.value.param == "x" and "dtype" in str(a.value)
    with pytest.raises(am.ArgumentError) as a:
        am.moe_compute_expert_tokens(np.zeros(3, np.int32), 0)
    assert a.value.param == "num_expert"


def test_concurrent_callers_get_their_own_scratch(rng):
    """Threads calling on the same (default) stream never share or free each other's workspace."""
    import threading

    xs = [_logits(rng, 32 + 32 * i, 256) for i in range(4)]
    want = [ref.moe_gating_top_k(x, 8, k_group=4, group_count=8)[1] for x in xs]
    errors = []

    def work(i):
        try:
            for _ in range(20):
                _, idx, _ = am.moe_gating_top_k(xs[i], 8, k_group=4, group_count=8)
                np.testing.assert_array_equal(idx, want[i])
        except Exception as e:  # noqa: BLE001  (collected and asserted below)
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_calls_are_logged_at_debug_level(rng, caplog):
    import logging

    with caplog.at_level(logging.DEBUG, logger="aclnn_moe"):
        am.moe_gating_top_k(_logits(rng), 2)
    assert any("aclnnMoeGatingTopK" in r.message and "x[8, 64]:float32:numpy" in r.message for r in caplog.records)
