"""aclnnMoeInitRoutingV3 (torch_npu.npu_moe_init_routing_v2) against the numpy reference: dropless and drop/pad,
active expert ranges, the three count layouts, both row index layouts, static and dynamic int8 quantisation, and
every documented rule with its status (561103: a hand-written op_api operator)."""
from __future__ import annotations

import numpy as np
import pytest

from aclnn_moe import AclnnError, ArgumentError
from aclnn_moe._dtypes import bfloat16
from aclnn_moe.ops.init_routing_v2 import moe_init_routing_v2
from aclnn_moe.ops.init_routing_v3 import MoeInitRoutingV3, moe_init_routing_v3
from aclnn_moe.reference.init_routing_v3 import moe_init_routing_v3 as ref

API = "aclnnMoeInitRoutingV3"
FLOAT_DTYPES = (np.float32, np.float16, bfloat16)
NAMES = ("expanded_x", "expanded_row_idx", "expert_token_cumsum_or_count", "expanded_scale")


def bits(a):
    return a.view(np.uint16) if a.dtype in (bfloat16, np.float16) else a


def run_both(x, expert_idx, **kw):
    got = moe_init_routing_v3(x, expert_idx, **kw)
    exp = ref(x, expert_idx, **kw)
    for name, g, r in zip(NAMES, got, exp):
        assert (g is None) == (r is None), name
        if g is None:
            continue
        assert g.dtype == r.dtype and g.shape == r.shape, f"{name}: {g.dtype}{g.shape} != {r.dtype}{r.shape}"
        np.testing.assert_array_equal(bits(g), bits(r), err_msg=name)
    return got


# ---------------------------------------------------------------------------------------------- dropless
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("n,k,h,e", [(1, 1, 1, 1), (3, 4, 2, 4), (37, 3, 19, 7), (128, 8, 256, 64), (50, 1, 33, 300)])
@pytest.mark.parametrize("count_type", [0, 1, 2])
def test_dropless_matches_reference(rng, dtype, n, k, h, e, count_type):
    x = rng.standard_normal((n, h)).astype(dtype)
    expert_idx = rng.integers(0, e, (n, k)).astype(np.int32)
    for row_type in (0, 1):
        for active in (-1, 0, 1, n * k // 2 + 1, n * k + 5):
            run_both(x, expert_idx, expert_num=e, active_num=active, expert_tokens_num_type=count_type,
                     expert_tokens_num_flag=True, row_idx_type=row_type)


@pytest.mark.parametrize("rng_", [(0, 1), (0, 8), (3, 5), (7, 8), (2, 3)])
def test_active_expert_range_edges(rng, rng_):
    x = rng.standard_normal((40, 24)).astype(np.float16)
    expert_idx = rng.integers(0, 8, (40, 4)).astype(np.int32)
    for count_type in (0, 1, 2):
        for row_type in (0, 1):
            ex, row_idx, counts, _ = run_both(x, expert_idx, expert_num=8, active_expert_range=list(rng_),
                                              expert_tokens_num_type=count_type, expert_tokens_num_flag=True,
                                              row_idx_type=row_type)
            inr = (expert_idx >= rng_[0]) & (expert_idx < rng_[1])
            avail = int(inr.sum())
            assert np.all(row_idx[avail:] == -1) if row_type == 1 else (row_idx == -1).sum() == 160 - avail
            assert np.all(ex[avail:] == 0)


def test_range_without_pairs_gives_empty_rows(rng):
    x = rng.standard_normal((10, 8)).astype(np.float32)
    expert_idx = rng.integers(0, 4, (10, 2)).astype(np.int32)
    ex, row_idx, counts, _ = run_both(x, expert_idx, expert_num=8, active_expert_range=[4, 8],
                                      expert_tokens_num_type=2, expert_tokens_num_flag=True)
    assert np.all(ex == 0) and np.all(row_idx == -1) and np.all(counts == 0)


def test_full_range_equals_init_routing_v2(rng):
    x = rng.standard_normal((30, 16)).astype(bfloat16)
    expert_idx = rng.integers(0, 6, (30, 3)).astype(np.int32)
    ex3, row3, cnt3, _ = moe_init_routing_v3(x, expert_idx, expert_num=6, expert_tokens_num_type=1,
                                             expert_tokens_num_flag=True)
    ex2, row2, cnt2, _ = moe_init_routing_v2(x, expert_idx, expert_num=6, expert_tokens_count_or_cumsum_flag=2)
    np.testing.assert_array_equal(bits(ex3), bits(ex2))
    np.testing.assert_array_equal(row3, row2)
    np.testing.assert_array_equal(cnt3, cnt2.astype(np.int64))


def test_official_example_values():
    x = np.array([[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]], np.float32)
    expert_idx = np.array([[1, 2, 0, 3], [0, 2, 1, 3], [0, 1, 3, 2]], np.int32)
    scale = np.array([0.3423, 0.1652, 0.2652], np.float32)
    ex, row_idx, counts, es = run_both(x, expert_idx, scale=scale, active_num=12, expert_capacity=4, expert_num=256,
                                       expert_tokens_num_type=1, expert_tokens_num_flag=True,
                                       active_expert_range=[0, 4], row_idx_type=1)
    np.testing.assert_array_equal(row_idx, [2, 4, 8, 0, 6, 9, 1, 5, 11, 3, 7, 10])
    np.testing.assert_array_equal(counts, [3, 3, 3, 3])
    np.testing.assert_array_equal(es, scale[row_idx // 4])


def test_key_value_layout(rng):
    x = rng.standard_normal((6, 4)).astype(np.float32)
    expert_idx = np.array([[5, 2], [2, 7], [5, 5], [2, 9], [0, 5], [9, 2]], np.int32)
    _, _, kv, _ = moe_init_routing_v3(x, expert_idx, expert_num=10, active_expert_range=[1, 9],
                                      expert_tokens_num_type=2, expert_tokens_num_flag=True)
    assert kv.shape == (10, 2) and kv.dtype == np.int64
    np.testing.assert_array_equal(kv[:3], [[2, 4], [5, 4], [7, 1]])
    assert np.all(kv[3:] == 0)
    _, _, cum, _ = moe_init_routing_v3(x, expert_idx, expert_num=10, active_expert_range=[1, 9],
                                       expert_tokens_num_type=0, expert_tokens_num_flag=True)
    np.testing.assert_array_equal(cum, [0, 4, 4, 4, 8, 8, 9, 9])


def test_skewed_and_empty_experts(rng):
    x = rng.standard_normal((64, 32)).astype(np.float16)
    skew = np.where(rng.random((64, 4)) < 0.95, 3, rng.integers(0, 128, (64, 4))).astype(np.int32)
    for count_type in (0, 1, 2):
        run_both(x, skew, expert_num=128, expert_tokens_num_type=count_type, expert_tokens_num_flag=True,
                 active_expert_range=[2, 100])
    run_both(x, skew, expert_num=128, expert_capacity=10, drop_pad_mode=1, expert_tokens_num_type=1,
             expert_tokens_num_flag=True)
    run_both(x, skew, expert_num=128, quant_mode=1, active_expert_range=[3, 4])


def test_no_count_output_without_the_flag(rng):
    x = rng.standard_normal((8, 4)).astype(np.float32)
    expert_idx = rng.integers(0, 4, (8, 2)).astype(np.int32)
    got = run_both(x, expert_idx, expert_num=4)
    assert got[2] is None and got[3] is None


# ---------------------------------------------------------------------------------------------- drop / pad
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("n,k,h,e,c", [(3, 2, 4, 3, 2), (3, 2, 4, 3, 1), (40, 4, 24, 8, 5), (64, 8, 128, 16, 64),
                                       (20, 1, 8, 50, 2)])
@pytest.mark.parametrize("quant", [-1, 0, 1])
def test_drop_pad_matches_reference(rng, dtype, n, k, h, e, c, quant):
    x = rng.standard_normal((n, h)).astype(dtype)
    expert_idx = rng.integers(0, e, (n, k)).astype(np.int32)
    kw = dict(expert_capacity=c, expert_num=e, drop_pad_mode=1, quant_mode=quant)
    if quant == 0:
        kw.update(scale=np.array([20.0], np.float32), offset=np.array([0.5], np.float32))
    if quant == -1:
        kw.update(scale=rng.standard_normal(n).astype(np.float32))
    for flag in (False, True):
        run_both(x, expert_idx, expert_tokens_num_type=1, expert_tokens_num_flag=flag, **kw)


def test_drop_pad_dropped_pairs_and_zero_slots(rng):
    x = rng.standard_normal((6, 4)).astype(np.float32) + 8
    expert_idx = np.array([[0, 0], [0, 2], [0, 2], [0, 0], [2, 2], [0, 2]], np.int32)
    ex, row_idx, before, _ = run_both(x, expert_idx, expert_capacity=3, expert_num=4, drop_pad_mode=1,
                                      expert_tokens_num_type=1, expert_tokens_num_flag=True)
    np.testing.assert_array_equal(before, [7, 0, 5, 0])
    assert (row_idx == -1).sum() == 6 and np.all(ex[1] == 0) and np.all(ex[3] == 0)
    np.testing.assert_array_equal(row_idx[:5], [0, 1, 2, 6, -1])


# ---------------------------------------------------------------------------------------------- quantisation
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("n,k,h,e", [(1, 1, 1, 2), (17, 3, 40, 5), (64, 8, 512, 32)])
def test_static_quant_matches_reference(rng, dtype, n, k, h, e):
    x = (rng.standard_normal((n, h)) * 3).astype(dtype)
    expert_idx = rng.integers(0, e, (n, k)).astype(np.int32)
    for s, o in ((1.0, 0.0), (40.0, -3.25), (0.3423, 1.8369), (1000.0, 0.0)):
        ex, _, _, es = run_both(x, expert_idx, expert_num=e, quant_mode=0, scale=np.array([s], np.float32),
                                offset=np.array([o], np.float32), active_expert_range=[0, max(1, e // 2)])
        assert ex.dtype == np.int8 and es is None


def test_static_quant_rounding_ties_to_even_and_saturates():
    # fp32 arithmetic (the V3 kernel): x * 1 + 0 with exact halves, and values beyond the int8 range
    x = np.array([[0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, 200.0, -300.0, -128.5]], np.float32)
    ex, _, _, _ = moe_init_routing_v3(x, np.zeros((1, 1), np.int32), expert_num=1, quant_mode=0,
                                      scale=np.array([1.0], np.float32), offset=np.array([0.0], np.float32))
    np.testing.assert_array_equal(ex[0], [0, 2, 2, 0, -2, -2, 126, 127, -128, -128])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("smooth", [None, "1h", "eh"])
@pytest.mark.parametrize("n,k,h,e,rng_", [(9, 2, 16, 4, [0, 4]), (40, 4, 96, 16, [3, 11]), (64, 8, 300, 8, [7, 8])])
def test_dynamic_quant_matches_reference(rng, dtype, smooth, n, k, h, e, rng_):
    x = (rng.standard_normal((n, h)) * 2).astype(dtype)
    expert_idx = rng.integers(0, e, (n, k)).astype(np.int32)
    scale = None
    if smooth == "1h":
        scale = rng.uniform(0.2, 3, (1, h)).astype(np.float32)
    elif smooth == "eh":
        scale = rng.uniform(0.2, 3, (rng_[1] - rng_[0], h)).astype(np.float32)
    for row_type in (0, 1):
        ex, _, _, es = run_both(x, expert_idx, scale=scale, expert_num=e, quant_mode=1, active_expert_range=rng_,
                                row_idx_type=row_type, expert_tokens_num_type=1, expert_tokens_num_flag=True)
        assert ex.dtype == np.int8 and es.dtype == np.float32


def test_dynamic_quant_rounds_ties_to_even():
    # max 127 -> s = 1: the row itself is rounded
    x = np.array([[127.0, 0.5, 1.5, 2.5, -0.5, -2.5, 0.0, -127.0]], np.float32)
    ex, _, _, es = moe_init_routing_v3(x, np.zeros((1, 1), np.int32), expert_num=1, quant_mode=1)
    np.testing.assert_array_equal(ex[0], [127, 0, 2, 2, 0, -2, 0, -127])
    np.testing.assert_array_equal(es, [1.0])


def test_dynamic_quant_zero_row(rng):
    x = np.zeros((2, 8), np.float16)
    ex, _, _, es = moe_init_routing_v3(x, np.array([[0], [1]], np.int32), expert_num=2, quant_mode=1)
    assert np.all(ex == 0) and np.all(es == 0)


def test_int8_x_unquantised(rng):
    x = rng.integers(-128, 128, (20, 12)).astype(np.int8)
    expert_idx = rng.integers(0, 5, (20, 3)).astype(np.int32)
    run_both(x, expert_idx, expert_num=5, active_expert_range=[1, 4], scale=rng.random(20).astype(np.float32))


# ---------------------------------------------------------------------------------------------- layouts, lifecycle
def test_non_contiguous_inputs(rng):
    x = rng.standard_normal((30, 40)).astype(np.float32)[:, ::4]
    expert_idx = np.asfortranarray(rng.integers(0, 6, (30, 3)).astype(np.int32))
    run_both(x, expert_idx, expert_num=6, expert_tokens_num_type=0, expert_tokens_num_flag=True, active_num=50)
    run_both(x[::2], expert_idx[::2], expert_num=6, expert_capacity=4, drop_pad_mode=1, quant_mode=1)


def test_empty_inputs():
    got = moe_init_routing_v3(np.zeros((0, 4), np.float32), np.zeros((0, 2), np.int32), expert_num=3,
                              expert_tokens_num_type=1, expert_tokens_num_flag=True)
    assert got[0].shape == (0, 4) and got[1].shape == (0,)
    np.testing.assert_array_equal(got[2], [0, 0, 0])
    got = moe_init_routing_v3(np.zeros((0, 4), np.float32), np.zeros((0, 2), np.int32), expert_num=3,
                              expert_tokens_num_type=2, expert_tokens_num_flag=True, quant_mode=1)
    assert got[2].shape == (3, 2) and np.all(got[2] == 0) and got[3].shape == (0,)
    got = moe_init_routing_v3(np.ones((3, 4), np.float32), np.zeros((3, 0), np.int32), expert_num=2,
                              expert_capacity=2, drop_pad_mode=1, expert_tokens_num_type=1,
                              expert_tokens_num_flag=True)
    assert got[0].shape == (2, 2, 4) and np.all(got[0] == 0)
    np.testing.assert_array_equal(got[2], [0, 0])


def test_plan_and_reuse(rng):
    x = rng.standard_normal((16, 8)).astype(np.float16)
    ids = rng.integers(0, 6, (16, 2)).astype(np.int32)
    ids2 = rng.integers(0, 6, (16, 2)).astype(np.int32)
    kw = dict(expert_num=6, active_expert_range=[1, 5], quant_mode=1, expert_tokens_num_type=2,
              expert_tokens_num_flag=True)
    with MoeInitRoutingV3(x, ids, **kw) as op:
        op.plan()
        a = [v.copy() for v in op.execute() if v is not None]
        op.reset_operands(expert_idx=ids2)
        b = [v for v in op.execute() if v is not None]
    for g, r in zip(a, [v for v in ref(x, ids, **kw) if v is not None]):
        np.testing.assert_array_equal(g, r)
    for g, r in zip(b, [v for v in ref(x, ids2, **kw) if v is not None]):
        np.testing.assert_array_equal(g, r)


# ---------------------------------------------------------------------------------------------- data checks
@pytest.mark.parametrize("bad", [-1, 4, 2**31 - 1])
def test_expert_id_outside_expert_num_is_an_error(rng, bad):
    x = rng.standard_normal((5, 4)).astype(np.float32)
    ids = rng.integers(0, 4, (5, 2)).astype(np.int32)
    ids[2, 1] = bad
    for kw in (dict(), dict(active_expert_range=[1, 2]), dict(quant_mode=1)):
        with pytest.raises(AclnnError) as e:
            moe_init_routing_v3(x, ids, expert_num=4, **kw)
        assert e.value.status == 161002 and f"[2, 1] = {bad}" in e.value.message
        assert "[0, 4)" in e.value.message


# ---------------------------------------------------------------------------------------------- status codes
def _args(n=4, k=2, h=3, e=4, active=-1, cap=-1, mode=0, ctype=1, flag=True, quant=-1, rng_=None, row_type=0,
          scale=None, offset=None, dtype=np.float32):
    total = n * k
    start, end = (0, e) if not rng_ else rng_
    rows = e * cap if mode == 1 else (total if active <= 0 else min(active, total))
    ex = np.zeros((e, cap, h) if mode == 1 else (rows, h), np.int8 if quant in (0, 1) else dtype)
    cnt = np.zeros((e, 2) if ctype == 2 else (end - start,), np.int64)
    return dict(x=np.ones((n, h), dtype), idx=np.zeros((n, k), np.int32), scale=scale, offset=offset, active=active,
                cap=cap, e=e, mode=mode, ctype=ctype, flag=flag, quant=quant, rng=list(rng_ or []), row_type=row_type,
                ex=ex, row=np.zeros(total, np.int32), cnt=cnt, es=np.zeros(max(rows, 0), np.float32))


def _status(ws_status, a, run=False):
    return ws_status(API, a["x"], a["idx"], a["scale"], a["offset"], a["active"], a["cap"], a["e"], a["mode"],
                     a["ctype"], a["flag"], a["quant"], a["rng"], a["row_type"], a["ex"], a["row"], a["cnt"], a["es"],
                     run=run)


def _static(**kw):
    return _args(quant=0, scale=np.ones(1, np.float32), offset=np.zeros(1, np.float32), **kw)


def test_valid_arguments_pass(ws_status):
    assert _status(ws_status, _args(), run=True) == (0, "")
    assert _status(ws_status, _args(active=0))[0] == 0
    assert _status(ws_status, _args(active=5, rng_=(1, 3)))[0] == 0
    assert _status(ws_status, _args(ctype=2))[0] == 0
    assert _status(ws_status, _args(mode=1, cap=2))[0] == 0
    assert _status(ws_status, _static())[0] == 0
    assert _status(ws_status, _args(quant=1, scale=np.ones((4, 3), np.float32)))[0] == 0
    assert _status(ws_status, _args(quant=1, scale=np.ones((1, 3), np.float32)))[0] == 0
    assert _status(ws_status, dict(_args(flag=False), cnt=np.zeros(1, np.int64)))[0] == 0  # unchecked, unwritten
    assert _status(ws_status, dict(_args(), es=np.zeros(1, np.float32)))[0] == 0  # no scale: unwritten


@pytest.mark.parametrize("field", ["x", "idx", "ex", "row", "cnt", "es"])
def test_null_tensor_161001(ws_status, field):
    a = _args()
    a[field] = None
    status, msg = _status(ws_status, a)
    assert status == 161001 and API in msg


@pytest.mark.parametrize("field,value", [
    ("x", np.ones((4, 3), np.int32)),
    ("x", np.ones((4, 3), np.float64)),
    ("idx", np.zeros((4, 2), np.int64)),
    ("scale", np.ones(4, np.float16)),
    ("ex", np.zeros((8, 3), np.int32)),
    ("row", np.zeros(8, np.int64)),
    ("cnt", np.zeros(4, np.int32)),
    ("es", np.zeros(8, np.float16)),
])
def test_dtype_161002(ws_status, field, value):
    a = _args()
    a[field] = value
    assert _status(ws_status, a)[0] == 161002


def test_quantised_output_must_be_int8_161002(ws_status):
    a = _static()
    a["ex"] = np.zeros((8, 3), np.float32)
    assert _status(ws_status, a)[0] == 161002


def test_destroyed_range_array_is_an_error(two_phase):
    from aclnn_moe.capi import ffi, lib

    arr = lib.aclCreateIntArray(ffi.new("int64_t[]", [0, 2]), 2)
    assert lib.aclDestroyIntArray(arr) == 0
    x = ffi.NULL
    # every required tensor is checked first: with real tensors the dead array is reported, never dereferenced
    from aclnn_moe import DeviceBuffer
    from aclnn_moe._dtypes import acl_dtype

    keep, tensors = [], []
    for shape, dt in (((2, 2), "float32"), ((2, 1), "int32"), ((2, 2), "float32"), ((2,), "int32"), ((2,), "int64"),
                      ((2,), "float32")):
        buf = DeviceBuffer(64)
        keep.append(buf)
        dims = ffi.new("int64_t[]", list(shape))
        tensors.append(lib.aclCreateTensor(dims, len(shape), acl_dtype(dt), ffi.NULL, 0, lib.ACL_FORMAT_ND, dims,
                                           len(shape), buf.cptr))
    try:
        xt, it, et, rt, ct, st = tensors
        status = two_phase(API, xt, it, x, x, -1, -1, 2, 0, 1, True, -1, arr, 0, et, rt, ct, st)
        assert status == 161002
    finally:
        for t in tensors:
            lib.aclDestroyTensor(t)
        for b in keep:
            b.close()


@pytest.mark.parametrize("make", [
    lambda: dict(_args(), mode=2),
    lambda: dict(_args(), active=-2),
    lambda: dict(_args(), e=0),
    lambda: dict(_args(), rng=[1]),
    lambda: dict(_args(), rng=[0, 1, 2]),
    lambda: _args(mode=1, cap=0),
    lambda: _args(mode=1, cap=5),                                  # capacity > N
    lambda: _args(mode=1, cap=2, row_type=1),
    lambda: _args(mode=1, cap=2, rng_=(0, 3)),
    lambda: dict(_args(), ctype=3),
    lambda: _args(mode=1, cap=2, ctype=0),                          # drop/pad counts must be type 1
    lambda: dict(_args(), rng=[-1, 2]),
    lambda: dict(_args(), rng=[2, 2]),
    lambda: dict(_args(), rng=[1, 5]),                              # end > expertNum
    lambda: _args(e=10241, rng_=(0, 10241)),
    lambda: _args(e=6000, ctype=2, rng_=(0, 5121)),
    lambda: dict(_args(), quant=2),                                 # Ascend 950 MXFP8
    lambda: dict(_args(), quant=-2),
    lambda: dict(_args(), row_type=2),
    lambda: dict(_args(), x=np.ones((4, 3, 1), np.float32)),
    lambda: dict(_args(), idx=np.zeros(8, np.int32)),
    lambda: dict(_args(), idx=np.zeros((5, 2), np.int32)),
    lambda: dict(_args(), scale=np.ones(3, np.float32)),            # unquantised scale must be [N]
    lambda: dict(_args(), scale=np.ones((4, 1), np.float32)),
    lambda: dict(_static(), scale=None),
    lambda: dict(_static(), offset=None),
    lambda: dict(_static(), scale=np.ones(2, np.float32)),
    lambda: dict(_static(), offset=np.ones((1, 1), np.float32)),
    lambda: _args(quant=1, scale=np.ones(3, np.float32)),
    lambda: _args(quant=1, scale=np.ones((2, 3), np.float32)),
    lambda: _args(quant=1, scale=np.ones((4, 2), np.float32)),
    lambda: dict(_args(), ex=np.zeros((7, 3), np.float32)),
    lambda: dict(_args(), ex=np.zeros((8, 4), np.float32)),
    lambda: dict(_args(), ex=np.zeros((8, 3, 1), np.float32)),
    lambda: dict(_args(active=5), ex=np.zeros((8, 3), np.float32)),
    lambda: dict(_args(mode=1, cap=2), ex=np.zeros((4, 3, 3), np.float32)),
    lambda: dict(_args(mode=1, cap=2), ex=np.zeros((8, 3), np.float32)),
    lambda: dict(_args(), row=np.zeros(7, np.int32)),
    lambda: dict(_args(), cnt=np.zeros(5, np.int64)),
    lambda: dict(_args(ctype=2), cnt=np.zeros(4, np.int64)),
    lambda: dict(_args(quant=1), es=np.zeros(7, np.float32)),
    lambda: dict(_args(scale=np.ones(4, np.float32)), es=np.zeros(9, np.float32)),
    lambda: dict(_static(), x=np.ones((4, 3), np.int8)),            # int8 x cannot be quantised
])
def test_shape_and_attribute_rules_561103(ws_status, make):
    status, msg = _status(ws_status, make())
    assert status == 561103, msg
    assert API in msg


def test_official_example_configuration_runs(ws_status):
    """fp32 x with an int8 expandedXOut in quantMode -1, as the official example passes: CANN does not reject it;
    the host converts the values (0.1 .. 0.3 -> 0) instead of writing past the buffer."""
    a = _args(n=3, k=4, h=2, e=256, active=12, rng_=(0, 4), row_type=1, scale=np.ones(3, np.float32))
    a["x"] = np.full((3, 2), 0.3, np.float32)
    a["ex"] = np.full((12, 2), 5, np.int8)
    a["es"] = np.zeros(12, np.float32)
    assert _status(ws_status, a, run=True) == (0, "")
    assert np.all(a["ex"] == 0)


def test_facade_rejects_bad_arguments_early():
    with pytest.raises(ArgumentError):
        moe_init_routing_v3(np.ones((2, 2), np.float32), np.zeros((2, 1), np.int64), expert_num=2)
    with pytest.raises(ArgumentError):
        moe_init_routing_v3(np.ones((2, 2), np.float32), np.zeros((2, 1), np.int32), expert_num=2, x_dtype=1)
    with pytest.raises(AclnnError) as e:
        moe_init_routing_v3(np.ones((2, 2), np.float32), np.zeros((2, 1), np.int32))  # expert_num -1
    assert e.value.status == 561103 and "expert_num" in e.value.message


def test_random_configurations_match_reference(rng):
    """a sweep over random shapes, dtypes, ranges, modes and quantisation, skewed and uniform routing"""
    for _ in range(60):
        n, k, h = int(rng.integers(1, 40)), int(rng.integers(1, 9)), int(rng.integers(1, 70))
        e = int(rng.integers(1, 20))
        dtype = FLOAT_DTYPES[int(rng.integers(0, 3))]
        x = (rng.standard_normal((n, h)) * rng.uniform(0.1, 10)).astype(dtype)
        if rng.random() < 0.3:
            ids = np.where(rng.random((n, k)) < 0.8, int(rng.integers(0, e)), rng.integers(0, e, (n, k)))
        else:
            ids = rng.integers(0, e, (n, k))
        ids = ids.astype(np.int32)
        kw = dict(expert_num=e, quant_mode=int(rng.integers(-1, 2)), expert_tokens_num_flag=bool(rng.random() < 0.7))
        if rng.random() < 0.3 and e >= 1:
            kw.update(drop_pad_mode=1, expert_capacity=int(rng.integers(1, n + 1)), expert_tokens_num_type=1)
        else:
            start = int(rng.integers(0, e))
            end = int(rng.integers(start + 1, e + 1))
            kw.update(active_expert_range=[start, end], expert_tokens_num_type=int(rng.integers(0, 3)),
                      row_idx_type=int(rng.integers(0, 2)), active_num=int(rng.integers(-1, n * k + 3)))
        rng_len = (kw["active_expert_range"][1] - kw["active_expert_range"][0]) if "active_expert_range" in kw else e
        if kw["quant_mode"] == 0:
            kw.update(scale=np.array([rng.uniform(-50, 50)], np.float32), offset=np.array([rng.uniform(-3, 3)],
                                                                                            np.float32))
        elif kw["quant_mode"] == 1 and rng.random() < 0.6:
            kw["scale"] = rng.uniform(0.1, 3, (1 if rng.random() < 0.5 else rng_len, h)).astype(np.float32)
        elif kw["quant_mode"] == -1 and rng.random() < 0.5:
            kw["scale"] = rng.standard_normal(n).astype(np.float32)
        run_both(x, ids, **kw)
