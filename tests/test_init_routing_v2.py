"""aclnnMoeInitRoutingV2 against the numpy reference (dropless and drop/pad), and every documented rule."""
from __future__ import annotations

import numpy as np
import pytest

from aclnn_moe import AclnnError, ArgumentError
from aclnn_moe._dtypes import bfloat16
from aclnn_moe.capi import lib
from aclnn_moe.ops._compare import assert_all_same, assert_same
from aclnn_moe.ops.init_routing_v2 import moe_init_routing_v2
from aclnn_moe.ops.token_permute_with_ep import moe_token_permute_with_ep
from aclnn_moe.reference.init_routing_v2 import moe_init_routing_v2 as ref

API = "aclnnMoeInitRoutingV2"
FLOAT_DTYPES = (np.float32, np.float16, bfloat16)
NAMES = ("expanded_x", "expanded_row_idx", "expert_tokens_count_or_cumsum", "expert_tokens_before_capacity")


def run_both(x, expert_idx, **kw):
    got = moe_init_routing_v2(x, expert_idx, **kw)
    assert_all_same(got, ref(x, expert_idx, **kw), NAMES, API)
    return got


# ---------------------------------------------------------------------------------------------- dropless
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("n,k,h,e", [(1, 1, 1, 1), (3, 2, 4, 3), (37, 3, 19, 7), (256, 8, 512, 64), (100, 1, 64, 256)])
@pytest.mark.parametrize("flag", [0, 1, 2])
def test_dropless_matches_reference(rng, dtype, n, k, h, e, flag):
    x = rng.standard_normal((n, h)).astype(dtype)
    expert_idx = rng.integers(0, e, (n, k)).astype(np.int32)
    for active in (0, 1, n * k // 2 + 1, n * k, n * k + 5):
        run_both(x, expert_idx, active_num=active, expert_num=e, expert_tokens_count_or_cumsum_flag=flag)


def test_row_idx_equals_token_permute_sorted_indices(rng):
    x = rng.standard_normal((50, 16)).astype(np.float16)
    expert_idx = rng.integers(0, 10, (50, 4)).astype(np.int32)
    ex, row_idx, _, _ = moe_init_routing_v2(x, expert_idx)
    permuted, sorted_indices, _ = moe_token_permute_with_ep(x, expert_idx)
    np.testing.assert_array_equal(row_idx, sorted_indices)
    assert_same(ex, permuted, "expanded_x vs permute_tokens")


def test_counts_and_cumsum(rng):
    expert_idx = np.array([[1, 2], [0, 1], [0, 2], [5, 1]], np.int32)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    _, _, cum, _ = moe_init_routing_v2(x, expert_idx, expert_num=6, expert_tokens_count_or_cumsum_flag=1)
    _, _, cnt, _ = moe_init_routing_v2(x, expert_idx, expert_num=6, expert_tokens_count_or_cumsum_flag=2)
    np.testing.assert_array_equal(cnt, [2, 3, 2, 0, 0, 1])
    np.testing.assert_array_equal(cum, [2, 5, 7, 7, 7, 8])


def test_unbounded_ids_without_counts(rng):
    """Without a count output and in dropless mode expert_num does not bound the ids (expert_num may be 0)."""
    x = rng.standard_normal((30, 8)).astype(np.float32)
    expert_idx = rng.integers(0, 2**31 - 1, (30, 3)).astype(np.int32)
    run_both(x, expert_idx)
    run_both(x, expert_idx, expert_num=4, active_num=50)


def test_skewed_and_empty_experts(rng):
    x = rng.standard_normal((64, 32)).astype(bfloat16)
    skew = np.where(rng.random((64, 4)) < 0.95, 3, rng.integers(0, 128, (64, 4))).astype(np.int32)
    run_both(x, skew, expert_num=128, expert_tokens_count_or_cumsum_flag=2)
    run_both(x, skew, expert_num=128, expert_capacity=10, drop_pad_mode=1, expert_tokens_before_capacity_flag=True)
    one = np.zeros((64, 4), np.int32)
    _, row_idx, cnt, _ = run_both(x, one, expert_num=2, expert_tokens_count_or_cumsum_flag=2)
    np.testing.assert_array_equal(row_idx, np.arange(256))
    np.testing.assert_array_equal(cnt, [256, 0])


# ---------------------------------------------------------------------------------------------- drop / pad
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("n,k,h,e,c", [(3, 2, 4, 3, 2), (3, 2, 4, 3, 1), (40, 4, 24, 8, 5), (64, 8, 128, 16, 64),
                                       (20, 1, 8, 50, 2)])
def test_drop_pad_matches_reference(rng, dtype, n, k, h, e, c):
    x = rng.standard_normal((n, h)).astype(dtype)
    expert_idx = rng.integers(0, e, (n, k)).astype(np.int32)
    for flag in (False, True):
        run_both(x, expert_idx, expert_capacity=c, expert_num=e, drop_pad_mode=1,
                 expert_tokens_before_capacity_flag=flag)


def test_official_drop_pad_example():
    x = np.array([[0.1] * 4, [0.2] * 4, [0.3] * 4], np.float32)
    expert_idx = np.array([[1, 2], [0, 1], [0, 2]], np.int32)
    ex, row_idx, counts, before = moe_init_routing_v2(x, expert_idx, expert_capacity=2, expert_num=3,
                                                      drop_pad_mode=1, expert_tokens_before_capacity_flag=True)
    assert counts is None
    np.testing.assert_array_equal(row_idx, [2, 4, 0, 3, 1, 5])
    np.testing.assert_array_equal(before, [2, 2, 2])
    np.testing.assert_array_equal(ex[:, :, 0], np.float32([[0.2, 0.3], [0.1, 0.2], [0.1, 0.3]]))


def test_dropped_rows_and_zero_slots(rng):
    x = rng.standard_normal((6, 4)).astype(np.float16) + 8
    expert_idx = np.array([[0, 0], [0, 2], [0, 2], [0, 0], [2, 2], [0, 2]], np.int32)
    ex, row_idx, _, before = run_both(x, expert_idx, expert_capacity=3, expert_num=4, drop_pad_mode=1,
                                      expert_tokens_before_capacity_flag=True)
    np.testing.assert_array_equal(before, [7, 0, 5, 0])
    assert (row_idx == -1).sum() == 4 + 2  # 7 - 3 dropped on expert 0, 5 - 3 on expert 2
    assert np.all(ex[1] == 0) and np.all(ex[3] == 0)  # empty experts are zero-filled
    # pairs 0, 1, 2 are expert 0's first three (slots 0..2); pair 3 is expert 2's first (slot 2*C + 0); pair 4, the
    # fourth of expert 0, is dropped
    np.testing.assert_array_equal(row_idx[:5], [0, 1, 2, 6, -1])


def test_flags_of_the_other_mode_are_ignored(rng):
    x = rng.standard_normal((8, 4)).astype(np.float32)
    expert_idx = rng.integers(0, 4, (8, 2)).astype(np.int32)
    got = run_both(x, expert_idx, expert_capacity=4, expert_num=4, drop_pad_mode=1,
                   expert_tokens_count_or_cumsum_flag=2)
    assert got[2] is None and got[3] is None
    got = run_both(x, expert_idx, expert_num=4, expert_tokens_before_capacity_flag=True)
    assert got[3] is None


# ---------------------------------------------------------------------------------------------- layouts
def test_non_contiguous_inputs(rng):
    x = rng.standard_normal((30, 40)).astype(np.float32)[:, ::4]
    expert_idx = np.asfortranarray(rng.integers(0, 6, (30, 3)).astype(np.int32))
    assert not x.flags.c_contiguous and not expert_idx.flags.c_contiguous
    run_both(x, expert_idx, expert_num=6, expert_tokens_count_or_cumsum_flag=1, active_num=50)
    run_both(x[::2], expert_idx[::2], expert_num=6, expert_capacity=4, drop_pad_mode=1)


def test_empty_inputs():
    got = moe_init_routing_v2(np.zeros((0, 4), np.float32), np.zeros((0, 2), np.int32), expert_num=3,
                              expert_tokens_count_or_cumsum_flag=2)
    assert got[0].shape == (0, 4) and got[1].shape == (0,)
    np.testing.assert_array_equal(got[2], [0, 0, 0])
    got = moe_init_routing_v2(np.ones((3, 4), np.float32), np.zeros((3, 0), np.int32), expert_num=2,
                              expert_capacity=2, drop_pad_mode=1, expert_tokens_before_capacity_flag=True)
    assert got[0].shape == (2, 2, 4) and np.all(got[0] == 0)
    np.testing.assert_array_equal(got[3], [0, 0])


# ---------------------------------------------------------------------------------------------- data checks
@pytest.mark.parametrize("kw", [dict(expert_num=4, expert_tokens_count_or_cumsum_flag=1),
                                dict(expert_num=4, expert_tokens_count_or_cumsum_flag=2),
                                dict(expert_num=4, expert_capacity=2, drop_pad_mode=1)])
def test_expert_id_outside_expert_num_is_an_error(rng, kw):
    x = rng.standard_normal((5, 4)).astype(np.float32)
    ids = rng.integers(0, 4, (5, 2)).astype(np.int32)
    ids[2, 1] = 4
    with pytest.raises(AclnnError) as e:
        moe_init_routing_v2(x, ids, **kw)
    assert e.value.status == lib.ACLNN_ERR_PARAM_INVALID and "expertIdx[2, 1] = 4" in e.value.c_message


def test_negative_expert_id_is_an_error(rng):
    x = rng.standard_normal((5, 4)).astype(np.float32)
    ids = rng.integers(0, 4, (5, 2)).astype(np.int32)
    ids[4, 0] = -1
    with pytest.raises(AclnnError) as e:
        moe_init_routing_v2(x, ids)
    assert e.value.status == lib.ACLNN_ERR_PARAM_INVALID and "expertIdx[4, 0] = -1" in e.value.c_message


# ---------------------------------------------------------------------------------------------- status codes
def _args(n=4, k=2, h=3, e=3, active=0, cap=0, mode=0, flag=1, before=False, dtype=np.float32):
    total = n * k
    if mode == 1:
        ex = np.zeros((e, cap, h), dtype)
    else:
        ex = np.zeros((total if active == 0 else min(active, total), h), dtype)
    return dict(x=np.ones((n, h), dtype), idx=np.zeros((n, k), np.int32), active=active, cap=cap, e=e, mode=mode,
                flag=flag, before=before, ex=ex, row=np.zeros(total, np.int32),
                cnt=np.zeros(e, np.int32) if mode == 0 and flag else None,
                bef=np.zeros(e, np.int32) if mode == 1 and before else None)


def _status(ws_status, a):
    return ws_status(API, a["x"], a["idx"], a["active"], a["cap"], a["e"], a["mode"], a["flag"], a["before"],
                     a["ex"], a["row"], a["cnt"], a["bef"])


def test_valid_arguments_pass(ws_status):
    assert _status(ws_status, _args()) == (0, "")
    assert _status(ws_status, _args(flag=0, e=0))[0] == 0
    assert _status(ws_status, _args(active=5))[0] == 0
    assert _status(ws_status, _args(mode=1, cap=2, flag=0, before=True))[0] == 0
    assert _status(ws_status, _args(mode=1, cap=4, flag=0))[0] == 0


@pytest.mark.parametrize("field", ["cnt"])  # the required ones: test_contract.py
def test_null_tensor_161001(ws_status, field):
    a = _args()
    a[field] = None
    status, msg = _status(ws_status, a)
    assert status == lib.ACLNN_ERR_PARAM_NULLPTR and API in msg


def test_null_before_capacity_output_161001(ws_status):
    a = _args(mode=1, cap=2, flag=0, before=True)
    a["bef"] = None
    assert _status(ws_status, a)[0] == lib.ACLNN_ERR_PARAM_NULLPTR


@pytest.mark.parametrize("field,value", [  # the outputs (inputs outside their dtypes: test_contract.py)
    ("ex", np.zeros((8, 3), np.float16)),
    ("row", np.zeros(8, np.int64)),
    ("cnt", np.zeros(3, np.int64)),
])
def test_dtype_161002(ws_status, field, value):
    a = _args()
    a[field] = value
    assert _status(ws_status, a)[0] == lib.ACLNN_ERR_PARAM_INVALID


def test_before_capacity_dtype_161002(ws_status):
    a = _args(mode=1, cap=2, flag=0, before=True)
    a["bef"] = np.zeros(3, np.float32)
    assert _status(ws_status, a)[0] == lib.ACLNN_ERR_PARAM_INVALID


@pytest.mark.parametrize("make", [
    lambda: dict(_args(), x=np.ones((4, 3, 1), np.float32)),
    lambda: dict(_args(), idx=np.zeros((5, 2), np.int32)),
    lambda: dict(_args(), idx=np.zeros(4, np.int32)),
    lambda: dict(_args(), cap=-1),
    lambda: dict(_args(flag=0), e=-1, cnt=None),
    lambda: dict(_args(), mode=2),
    lambda: dict(_args(), mode=-1),
    lambda: _args(mode=1, cap=0, flag=0),
    lambda: dict(_args(mode=1, cap=2, flag=0), e=0, ex=np.zeros((0, 2, 3), np.float32)),
    lambda: _args(mode=1, cap=5, flag=0),                      # capacity > N
    lambda: dict(_args(), flag=3),
    lambda: dict(_args(flag=1), e=0, cnt=np.zeros(0, np.int32)),
    lambda: dict(_args(), active=-1),
    lambda: dict(_args(), ex=np.zeros((7, 3), np.float32)),
    lambda: dict(_args(), ex=np.zeros((8, 4), np.float32)),
    lambda: dict(_args(), ex=np.zeros((8, 3, 1), np.float32)),
    lambda: dict(_args(mode=1, cap=2, flag=0), ex=np.zeros((3, 3, 3), np.float32)),
    lambda: dict(_args(mode=1, cap=2, flag=0), ex=np.zeros((6, 3), np.float32)),
    lambda: dict(_args(), row=np.zeros(7, np.int32)),
    lambda: dict(_args(), row=np.zeros((4, 2), np.int32)),
    lambda: dict(_args(), cnt=np.zeros(4, np.int32)),
    lambda: dict(_args(), cnt=np.zeros((3, 1), np.int32)),
    lambda: dict(_args(mode=1, cap=2, flag=0, before=True), bef=np.zeros(2, np.int32)),
])
def test_shape_and_attribute_rules_561103(ws_status, make):
    # hand-written op_api: shape and attribute failures are ACLNN_ERR_INNER_NULLPTR (spec/host-vs-cann.md)
    status, msg = _status(ws_status, make())
    assert status == lib.ACLNN_ERR_INNER_NULLPTR, msg
    assert API in msg


def test_facade_rejects_bad_dtypes_early():
    with pytest.raises(ArgumentError):
        moe_init_routing_v2(np.ones((2, 2), np.float32), np.zeros((2, 1), np.int64))
    with pytest.raises(ArgumentError):
        moe_init_routing_v2(np.ones((2, 2, 1), np.float32), np.zeros((2, 1), np.int32))
