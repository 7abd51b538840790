"""aclnnMoeInitRoutingQuant (V1 layout, static int8) and aclnnMoeInitRoutingQuantV2 (torch_npu's
npu_moe_init_routing_quant: V2 layout, static or dynamic int8) against the numpy references, the kernels' rounding
(fp16 arithmetic for static, ties away from zero for QuantV2's dynamic mode), and every documented rule with its
status (561002: both are generated operators)."""
from __future__ import annotations

import numpy as np
import pytest

from aclnn_moe import AclnnError, ArgumentError
from aclnn_moe._dtypes import bfloat16
from aclnn_moe.ops.init_routing import moe_init_routing
from aclnn_moe.ops.init_routing_quant import MoeInitRoutingQuant, moe_init_routing_quant
from aclnn_moe.ops.init_routing_quant_v2 import MoeInitRoutingQuantV2, moe_init_routing_quant_v2
from aclnn_moe.ops.init_routing_v2 import moe_init_routing_v2
from aclnn_moe.reference.init_routing_quant import moe_init_routing_quant as ref_v1
from aclnn_moe.reference.init_routing_quant_v2 import moe_init_routing_quant_v2 as ref_v2

API1 = "aclnnMoeInitRoutingQuant"
API2 = "aclnnMoeInitRoutingQuantV2"
FLOAT_DTYPES = (np.float32, np.float16, bfloat16)
NAMES2 = ("expanded_x", "expanded_row_idx", "expert_token_cumsum_or_count", "expert_tokens_before_capacity",
          "expanded_scale")


def k_major_row_idx(n, k):
    return np.arange(n * k, dtype=np.int32).reshape(k, n).T.copy()


def run_v1(x, row_idx, expert_idx, active, scale, offset):
    got = moe_init_routing_quant(x, row_idx, expert_idx, active, scale, offset)
    exp = ref_v1(x, row_idx, expert_idx, active, scale, offset)
    for name, g, r in zip(("expanded_x", "expanded_row_idx", "expanded_expert_idx"), got, exp):
        assert g.dtype == r.dtype and g.shape == r.shape, f"{name}: {g.dtype}{g.shape} != {r.dtype}{r.shape}"
        np.testing.assert_array_equal(g, r, err_msg=name)
    return got


def run_v2(x, expert_idx, **kw):
    got = moe_init_routing_quant_v2(x, expert_idx, **kw)
    exp = ref_v2(x, expert_idx, **kw)
    for name, g, r in zip(NAMES2, got, exp):
        assert (g is None) == (r is None), name
        if g is None:
            continue
        assert g.dtype == r.dtype and g.shape == r.shape, f"{name}: {g.dtype}{g.shape} != {r.dtype}{r.shape}"
        np.testing.assert_array_equal(g, r, err_msg=name)
    return got


# ============================================================================================ MoeInitRoutingQuant
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("n,k,h,e", [(1, 1, 1, 1), (3, 2, 4, 3), (37, 3, 19, 7), (200, 8, 256, 64)])
def test_quant_v1_matches_reference(rng, dtype, n, k, h, e):
    x = (rng.standard_normal((n, h)) * 4).astype(dtype)
    expert_idx = rng.integers(0, e, (n, k)).astype(np.int32)
    for active in (0, 1, n // 2 + 1, n, n + 3):
        for scale, offset in ((1.0, 1.0), (31.75, -2.5), (0.3452, 1.8369), (500.0, 0.0)):
            run_v1(x, k_major_row_idx(n, k), expert_idx, active, scale, offset)


def test_quant_v1_routes_as_init_routing(rng):
    x = rng.standard_normal((40, 16)).astype(np.float16)
    ids = rng.integers(0, 9, (40, 3)).astype(np.int32)
    row_idx = k_major_row_idx(40, 3)
    q, r, e = moe_init_routing_quant(x, row_idx, ids, 40, 1.0, 0.0)
    ex, r0, e0 = moe_init_routing(x, row_idx, ids, 40)
    np.testing.assert_array_equal(r, r0)
    np.testing.assert_array_equal(e, e0)
    np.testing.assert_array_equal(q, np.clip(np.rint(ex.astype(np.float32)), -128, 127).astype(np.int8))


def test_quant_v1_fp16_arithmetic():
    """the kernel multiplies and adds in fp16 with the attributes rounded to fp16, then rounds half to even:
    scale 2.5009765625 is 2.5 in fp16, so x = 1 gives rint(2.5) = 2 (fp32 arithmetic would give 3)"""
    zero = np.zeros((1, 1), np.int32)
    x = np.array([[1.0, 3.0, -1.0, 100.0, -100.0]], np.float32)
    got, _, _ = moe_init_routing_quant(x, zero, zero, 1, 2.5009765625, 0.0)
    np.testing.assert_array_equal(got[0], [2, 8, -2, 127, -128])  # 7.5 -> 8 (even), 250 / -250 saturate
    x = np.array([[1.0, 2.0, 3.0, 4.0, -2.0]], np.float16)
    got, _, _ = moe_init_routing_quant(x, zero, zero, 1, 1.0, 0.5)
    np.testing.assert_array_equal(got[0], [2, 2, 4, 4, -2])  # 1.5, 2.5, 3.5, 4.5, -1.5


def test_quant_v1_active_rows_and_layout(rng):
    x = rng.standard_normal((6, 4)).astype(np.float32)
    ids = rng.integers(0, 3, (6, 2)).astype(np.int32)
    got = run_v1(x, k_major_row_idx(6, 2), ids, 2, 10.0, 0.0)
    assert got[0].shape == (4, 4)
    got = run_v1(x, k_major_row_idx(6, 2), ids, 0, 10.0, 0.0)
    assert got[0].shape == (0, 4)


def test_quant_v1_plan_and_reuse(rng):
    x = rng.standard_normal((16, 8)).astype(bfloat16)
    ids, ids2 = (rng.integers(0, 4, (16, 2)).astype(np.int32) for _ in range(2))
    row_idx = k_major_row_idx(16, 2)
    with MoeInitRoutingQuant(x, row_idx, ids, 16, 20.0, 1.0) as op:
        op.plan()
        a = [v.copy() for v in op.execute()]
        op.reset_operands(expert_idx=ids2)
        b = op.execute()
    for g, r in zip(a, ref_v1(x, row_idx, ids, 16, 20.0, 1.0)):
        np.testing.assert_array_equal(g, r)
    for g, r in zip(b, ref_v1(x, row_idx, ids2, 16, 20.0, 1.0)):
        np.testing.assert_array_equal(g, r)


def test_quant_v1_row_idx_must_be_a_permutation(rng):
    x = rng.standard_normal((4, 4)).astype(np.float32)
    ids = rng.integers(0, 3, (4, 2)).astype(np.int32)
    bad = k_major_row_idx(4, 2)
    bad[1, 1] = 8
    with pytest.raises(AclnnError) as e:
        moe_init_routing_quant(x, bad, ids, 4, 1.0, 0.0)
    assert e.value.status == 161002 and "[1, 1] = 8" in e.value.message
    bad[1, 1] = 0
    with pytest.raises(AclnnError) as e:
        moe_init_routing_quant(x, bad, ids, 4, 1.0, 0.0)
    assert e.value.status == 161002 and "more than once" in e.value.message


def test_quant_v1_attributes_must_be_numbers(rng):
    x = np.ones((2, 2), np.float32)
    ids = np.zeros((2, 1), np.int32)
    with pytest.raises(ArgumentError):
        moe_init_routing_quant(x, k_major_row_idx(2, 1), ids, 2, "1.0", 0.0)
    with pytest.raises(ArgumentError):
        moe_init_routing_quant(x, k_major_row_idx(2, 1), ids, 2, 1.0, True)


def _v1(n=4, k=2, h=3, active=4, dtype=np.float32):
    return dict(x=np.ones((n, h), dtype), row=k_major_row_idx(n, k), idx=np.zeros((n, k), np.int32), active=active,
                ex=np.zeros((min(n, max(active, 0)) * k, h), np.int8), erow=np.zeros(n * k, np.int32),
                eexp=np.zeros(n * k, np.int32))


def _status1(ws_status, a, run=False):
    return ws_status(API1, a["x"], a["row"], a["idx"], a["active"], 1.5, -0.5, a["ex"], a["erow"], a["eexp"], run=run)


def test_quant_v1_valid_arguments_pass(ws_status):
    assert _status1(ws_status, _v1(), run=True) == (0, "")
    assert _status1(ws_status, _v1(active=0))[0] == 0
    assert _status1(ws_status, _v1(active=9))[0] == 0


@pytest.mark.parametrize("field", ["x", "row", "idx", "ex", "erow", "eexp"])
def test_quant_v1_null_161001(ws_status, field):
    a = _v1()
    a[field] = None
    status, msg = _status1(ws_status, a)
    assert status == 161001 and API1 in msg


@pytest.mark.parametrize("field,value", [
    ("x", np.ones((4, 3), np.int8)),
    ("row", np.zeros((4, 2), np.int64)),
    ("idx", np.zeros((4, 2), np.int64)),
    ("ex", np.zeros((8, 3), np.float32)),
    ("erow", np.zeros(8, np.int64)),
    ("eexp", np.zeros(8, np.float32)),
])
def test_quant_v1_dtype_161002(ws_status, field, value):
    a = _v1()
    a[field] = value
    assert _status1(ws_status, a)[0] == 161002


@pytest.mark.parametrize("make", [
    lambda: dict(_v1(), x=np.ones((4, 3, 1), np.float32)),
    lambda: dict(_v1(), row=np.zeros(8, np.int32)),
    lambda: dict(_v1(), row=np.zeros((4, 3), np.int32)),
    lambda: dict(_v1(), idx=np.zeros((5, 2), np.int32), row=np.zeros((5, 2), np.int32)),
    lambda: dict(_v1(), active=-1),
    lambda: dict(_v1(), ex=np.zeros(24, np.int8)),
    lambda: dict(_v1(), ex=np.zeros((6, 3), np.int8)),
    lambda: dict(_v1(), ex=np.zeros((8, 2), np.int8)),
    lambda: dict(_v1(), erow=np.zeros((8, 1), np.int32)),
    lambda: dict(_v1(), eexp=np.zeros(7, np.int32)),
    lambda: dict(_v1(), erow=np.zeros(7, np.int32), eexp=np.zeros(7, np.int32)),
])
def test_quant_v1_shape_and_attribute_rules_561002(ws_status, make):
    status, msg = _status1(ws_status, make())
    assert status == 561002, msg
    assert API1 in msg


# ============================================================================================ MoeInitRoutingQuantV2
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("n,k,h,e", [(1, 1, 1, 1), (3, 2, 4, 3), (37, 3, 19, 7), (128, 8, 256, 64)])
@pytest.mark.parametrize("quant", [0, 1])
def test_quant_v2_dropless_matches_reference(rng, dtype, n, k, h, e, quant):
    x = (rng.standard_normal((n, h)) * 3).astype(dtype)
    expert_idx = rng.integers(0, e, (n, k)).astype(np.int32)
    kw = dict(quant_mode=quant, expert_num=e)
    if quant == 0:
        kw.update(scale=np.array([17.5], np.float32), offset=np.array([-0.75], np.float32))
    for flag in (0, 1, 2):
        for active in (0, 1, n * k // 2 + 1, n * k + 5):
            run_v2(x, expert_idx, active_num=active, expert_tokens_num_mode=flag, **kw)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("n,k,h,e,c", [(3, 2, 4, 3, 2), (3, 2, 4, 3, 1), (40, 4, 24, 8, 5), (64, 8, 128, 16, 64)])
@pytest.mark.parametrize("quant", [0, 1])
def test_quant_v2_drop_pad_matches_reference(rng, dtype, n, k, h, e, c, quant):
    x = (rng.standard_normal((n, h)) * 3).astype(dtype)
    expert_idx = rng.integers(0, e, (n, k)).astype(np.int32)
    kw = dict(quant_mode=quant, expert_num=e, expert_capacity=c, drop_pad_mode=1)
    if quant == 0:
        kw.update(scale=np.array([0.3452], np.float32), offset=np.array([1.8369], np.float32))
    for before in (False, True):
        got = run_v2(x, expert_idx, expert_tokens_before_capacity_flag=before, **kw)
        assert got[0].shape == (e, c, h)


@pytest.mark.parametrize("smooth_rows", [1, "E"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_quant_v2_dynamic_smooth_scale(rng, smooth_rows, dtype):
    n, k, h, e = 48, 4, 80, 12
    x = rng.standard_normal((n, h)).astype(dtype)
    expert_idx = rng.integers(0, e, (n, k)).astype(np.int32)
    smooth = rng.uniform(0.1, 4, (1 if smooth_rows == 1 else e, h)).astype(np.float32)
    run_v2(x, expert_idx, scale=smooth, expert_num=e, active_num=0, quant_mode=1)
    run_v2(x, expert_idx, scale=smooth, expert_num=e, active_num=100, quant_mode=1, expert_tokens_num_mode=2)
    run_v2(x, expert_idx, scale=smooth, expert_num=e, expert_capacity=10, drop_pad_mode=1, quant_mode=1)


def test_quant_v2_dynamic_rounds_ties_away_from_zero():
    x = np.array([[127.0, 0.5, 1.5, 2.5, -0.5, -2.5, 0.0, -127.0]], np.float32)
    q, _, _, _, s = moe_init_routing_quant_v2(x, np.zeros((1, 1), np.int32), active_num=0, expert_num=1)
    np.testing.assert_array_equal(q[0], [127, 1, 2, 3, -1, -3, 0, -127])
    np.testing.assert_array_equal(s, [1.0])


def test_quant_v2_static_fp16_arithmetic():
    zero = np.zeros((1, 1), np.int32)
    x = np.array([[1.0, 3.0, 2.0, 100.0]], np.float32)
    q, _, _, _, s = moe_init_routing_quant_v2(x, zero, scale=np.array([2.5009765625], np.float32),
                                              offset=np.array([0.0], np.float32), active_num=0, expert_num=1,
                                              quant_mode=0)
    np.testing.assert_array_equal(q[0], [2, 8, 5, 127])  # fp16 scale 2.5: 2.5 -> 2, 7.5 -> 8, 5, saturated
    assert s is None


def test_quant_v2_dynamic_zero_rows_and_empty_slots(rng):
    x = np.zeros((4, 6), np.float16)
    x[1] = 3
    q, row_idx, _, _, s = moe_init_routing_quant_v2(x, np.array([[0], [0], [2], [0]], np.int32), active_num=0,
                                                    expert_num=3, expert_capacity=2, drop_pad_mode=1)
    assert q.shape == (3, 2, 6) and np.all(q[1] == 0) and np.all(q[0, 1] == 127) and np.all(q[0, 0] == 0)
    np.testing.assert_array_equal(s, np.float32([0, np.float32(3) / np.float32(127), 0, 0, 0, 0]))
    np.testing.assert_array_equal(row_idx, [0, 1, 4, -1])


def test_quant_v2_routes_as_init_routing_v2(rng):
    x = rng.standard_normal((30, 16)).astype(np.float32)
    ids = rng.integers(0, 6, (30, 3)).astype(np.int32)
    for kw in (dict(active_num=0, expert_tokens_num_mode=1), dict(expert_capacity=7, drop_pad_mode=1,
                                                                   expert_tokens_before_capacity_flag=True)):
        q = moe_init_routing_quant_v2(x, ids, expert_num=6, **kw)
        kw2 = {("expert_tokens_count_or_cumsum_flag" if key == "expert_tokens_num_mode" else key): v
               for key, v in kw.items()}
        r = moe_init_routing_v2(x, ids, expert_num=6, **kw2)
        for a, b in zip(q[1:4], r[1:4]):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_array_equal(a, b)


def test_quant_v2_torch_defaults(rng):
    """torch_npu's npu_moe_init_routing_quant defaults: active_num 1024, expert_num 256, dynamic quantisation"""
    x = rng.standard_normal((8, 16)).astype(np.float16)
    ids = rng.integers(0, 256, (8, 2)).astype(np.int32)
    q, row_idx, counts, before, s = run_v2(x, ids)
    assert q.shape == (16, 16) and q.dtype == np.int8 and s.shape == (16,) and counts is None and before is None


def test_quant_v2_plan_and_reuse(rng):
    x = rng.standard_normal((16, 8)).astype(np.float16)
    ids, ids2 = (rng.integers(0, 4, (16, 2)).astype(np.int32) for _ in range(2))
    kw = dict(expert_num=4, active_num=0, expert_tokens_num_mode=2, scale=np.ones((4, 8), np.float32) * 2)
    with MoeInitRoutingQuantV2(x, ids, **kw) as op:
        op.plan()
        a = [v.copy() for v in op.execute() if v is not None]
        op.reset_operands(expert_idx=ids2)
        b = [v for v in op.execute() if v is not None]
    for g, r in zip(a, [v for v in ref_v2(x, ids, **kw) if v is not None]):
        np.testing.assert_array_equal(g, r)
    for g, r in zip(b, [v for v in ref_v2(x, ids2, **kw) if v is not None]):
        np.testing.assert_array_equal(g, r)


@pytest.mark.parametrize("kw", [dict(expert_tokens_num_mode=1), dict(expert_capacity=2, drop_pad_mode=1),
                                dict(scale=np.ones((4, 4), np.float32))])
def test_quant_v2_expert_id_outside_expert_num_is_an_error(rng, kw):
    x = rng.standard_normal((5, 4)).astype(np.float32)
    ids = rng.integers(0, 4, (5, 2)).astype(np.int32)
    ids[3, 0] = 4
    with pytest.raises(AclnnError) as e:
        moe_init_routing_quant_v2(x, ids, expert_num=4, active_num=0, **kw)
    assert e.value.status == 161002 and "[3, 0] = 4" in e.value.message


def test_quant_v2_unbounded_ids_are_fine_without_counts(rng):
    x = rng.standard_normal((6, 4)).astype(np.float32)
    ids = rng.integers(0, 2**31 - 1, (6, 2)).astype(np.int32)
    run_v2(x, ids, expert_num=0, active_num=0)
    ids[0, 0] = -1
    with pytest.raises(AclnnError) as e:
        moe_init_routing_quant_v2(x, ids, expert_num=0, active_num=0)
    assert e.value.status == 161002


def _v2(n=4, k=2, h=3, e=3, active=0, cap=0, mode=0, flag=1, before=False, quant=1, scale=None, offset=None):
    total = n * k
    rows = e * cap if mode == 1 else (total if active == 0 else min(active, total))
    ex = np.zeros((e, cap, h) if mode == 1 else (rows, h), np.int8)
    return dict(x=np.ones((n, h), np.float32), idx=np.zeros((n, k), np.int32), scale=scale, offset=offset,
                active=active, cap=cap, e=e, mode=mode, flag=flag, before=before, quant=quant, ex=ex,
                row=np.zeros(total, np.int32), cnt=np.zeros(e, np.int32) if mode == 0 and flag else None,
                bef=np.zeros(e, np.int32) if mode == 1 and before else None,
                dyn=np.zeros(rows, np.float32) if quant == 1 else None)


def _static2(**kw):
    return _v2(quant=0, scale=np.ones(1, np.float32), offset=np.zeros(1, np.float32), **kw)


def _status2(ws_status, a, run=False):
    return ws_status(API2, a["x"], a["idx"], a["scale"], a["offset"], a["active"], a["cap"], a["e"], a["mode"],
                     a["flag"], a["before"], a["quant"], a["ex"], a["row"], a["cnt"], a["bef"], a["dyn"], run=run)


def test_quant_v2_valid_arguments_pass(ws_status):
    assert _status2(ws_status, _v2(), run=True) == (0, "")
    assert _status2(ws_status, _static2(), run=True) == (0, "")
    assert _status2(ws_status, _v2(flag=0, e=0))[0] == 0
    assert _status2(ws_status, _v2(active=5))[0] == 0
    assert _status2(ws_status, _v2(mode=1, cap=2, flag=0, before=True))[0] == 0
    assert _status2(ws_status, _v2(scale=np.ones((3, 3), np.float32)))[0] == 0
    assert _status2(ws_status, _v2(scale=np.ones((1, 3), np.float32)))[0] == 0
    assert _status2(ws_status, dict(_static2(), dyn=None))[0] == 0


@pytest.mark.parametrize("field", ["x", "idx", "ex", "row"])
def test_quant_v2_null_161001(ws_status, field):
    a = _v2()
    a[field] = None
    status, msg = _status2(ws_status, a)
    assert status == 161001 and API2 in msg


@pytest.mark.parametrize("field,value", [
    ("x", np.ones((4, 3), np.int8)),
    ("idx", np.zeros((4, 2), np.int64)),
    ("scale", np.ones((3, 3), np.float16)),
    ("ex", np.zeros((8, 3), np.float32)),
    ("ex", np.zeros((8, 3), np.uint8)),
    ("row", np.zeros(8, np.int64)),
    ("cnt", np.zeros(3, np.int64)),
    ("dyn", np.zeros(8, np.float16)),
])
def test_quant_v2_dtype_161002(ws_status, field, value):
    a = _v2()
    a[field] = value
    assert _status2(ws_status, a)[0] == 161002


@pytest.mark.parametrize("make", [
    lambda: dict(_v2(), quant=2),
    lambda: dict(_v2(), quant=-1),
    lambda: dict(_v2(), x=np.ones((4, 3, 1), np.float32)),
    lambda: dict(_v2(), idx=np.zeros(8, np.int32)),
    lambda: dict(_v2(), idx=np.zeros((5, 2), np.int32)),
    lambda: dict(_v2(), active=-1),
    lambda: dict(_v2(), cap=-1),
    lambda: dict(_v2(flag=0), e=-1),
    lambda: dict(_v2(), mode=2),
    lambda: _v2(mode=1, cap=0, flag=0),
    lambda: _v2(mode=1, cap=5, flag=0),                       # capacity > N
    lambda: dict(_v2(), flag=3),
    lambda: dict(_v2(flag=1), e=0, cnt=np.zeros(0, np.int32)),
    lambda: dict(_v2(), ex=np.zeros((7, 3), np.int8)),
    lambda: dict(_v2(), ex=np.zeros((8, 3, 1), np.int8)),
    lambda: dict(_v2(mode=1, cap=2, flag=0), ex=np.zeros((3, 3, 3), np.int8)),
    lambda: dict(_v2(), row=np.zeros(7, np.int32)),
    lambda: dict(_v2(), cnt=np.zeros(4, np.int32)),
    lambda: dict(_v2(), cnt=None),                             # needed by the flag
    lambda: dict(_v2(mode=1, cap=2, flag=0, before=True), bef=None),
    lambda: dict(_v2(mode=1, cap=2, flag=0, before=True), bef=np.zeros(2, np.int32)),
    lambda: dict(_v2(), dyn=None),                             # needed by dynamic quantisation
    lambda: dict(_v2(), dyn=np.zeros(7, np.float32)),
    lambda: dict(_v2(mode=1, cap=2, flag=0), dyn=np.zeros(8, np.float32)),
    lambda: dict(_static2(), scale=None),
    lambda: dict(_static2(), offset=None),
    lambda: dict(_static2(), scale=np.ones(2, np.float32)),
    lambda: dict(_static2(), offset=np.ones((1, 1), np.float32)),
    lambda: _v2(scale=np.ones(3, np.float32)),
    lambda: _v2(scale=np.ones((2, 3), np.float32)),
    lambda: _v2(scale=np.ones((3, 4), np.float32)),
])
def test_quant_v2_shape_and_attribute_rules_561002(ws_status, make):
    status, msg = _status2(ws_status, make())
    assert status == 561002, msg
    assert API2 in msg



def test_quant_v2_random_configurations_match_reference(rng):
    for _ in range(60):
        n, k, h = int(rng.integers(1, 40)), int(rng.integers(1, 9)), int(rng.integers(1, 70))
        e = int(rng.integers(1, 20))
        dtype = FLOAT_DTYPES[int(rng.integers(0, 3))]
        x = (rng.standard_normal((n, h)) * rng.uniform(0.1, 10)).astype(dtype)
        ids = rng.integers(0, e, (n, k)).astype(np.int32)
        kw = dict(expert_num=e, quant_mode=int(rng.integers(0, 2)), active_num=int(rng.integers(0, n * k + 3)))
        if rng.random() < 0.4:
            kw.update(drop_pad_mode=1, expert_capacity=int(rng.integers(1, n + 1)),
                      expert_tokens_before_capacity_flag=bool(rng.random() < 0.5))
        else:
            kw["expert_tokens_num_mode"] = int(rng.integers(0, 3))
        if kw["quant_mode"] == 0:
            kw.update(scale=np.array([rng.uniform(-50, 50)], np.float32), offset=np.array([rng.uniform(-3, 3)],
                                                                                            np.float32))
        elif rng.random() < 0.6:
            kw["scale"] = rng.uniform(0.1, 3, (1 if rng.random() < 0.5 else e, h)).astype(np.float32)
        run_v2(x, ids, **kw)


def test_quant_v1_random_configurations_match_reference(rng):
    for _ in range(40):
        n, k, h = int(rng.integers(1, 40)), int(rng.integers(1, 9)), int(rng.integers(1, 70))
        dtype = FLOAT_DTYPES[int(rng.integers(0, 3))]
        x = (rng.standard_normal((n, h)) * rng.uniform(0.1, 10)).astype(dtype)
        ids = rng.integers(-3, 30, (n, k)).astype(np.int32)
        row_idx = rng.permutation(n * k).astype(np.int32).reshape(n, k)  # any permutation, not only k-major
        run_v1(x, row_idx, ids, int(rng.integers(0, n + 3)), float(rng.uniform(-60, 60)), float(rng.uniform(-4, 4)))
