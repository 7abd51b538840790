"""MoeInitRouting (V1): host runtime vs the numpy reference (dtypes, shapes of the official tests, active_num,
stable ties, negative and large expert ids, strides, plans), the data checks on expertIdx and rowIdx, and every
validation rule with its status code."""
from __future__ import annotations

import numpy as np
import pytest

from aclnn_moe import AclnnError, ArgumentError
from aclnn_moe._dtypes import bfloat16
from aclnn_moe.capi import lib
from aclnn_moe.ops._compare import assert_same
from aclnn_moe.ops.init_routing import moe_init_routing, standard_row_idx
from aclnn_moe.reference.init_routing import moe_init_routing as ref

API = "aclnnMoeInitRouting"
DTYPES = [np.dtype(np.float32), np.dtype(np.float16), bfloat16]


def check(x, row_idx, expert_idx, active_num):
    got = moe_init_routing(x, row_idx, expert_idx, active_num)
    want = ref(x, row_idx, expert_idx, active_num)
    for name, g, w in zip(("expanded_x", "expanded_row_idx", "expanded_expert_idx"), got, want):
        assert_same(g, w, name)
    return got


def raw_args(n=3, k=2, h=4, dt=np.float32, active=3):
    return [np.zeros((n, h), dt), standard_row_idx(n, k), np.zeros((n, k), np.int32), active,
            np.zeros((min(n, active) * k, h), dt), np.zeros(n * k, np.int32), np.zeros(n * k, np.int32)]


# ---------------------------------------------------------------------------------------------------- values
def test_official_example():
    x = np.array([[0.1] * 4, [0.2] * 4, [0.3] * 4], np.float32)
    expert_idx = np.array([[1, 2], [0, 1], [0, 2]], np.int32)
    row_idx = np.array([[0, 3], [1, 4], [2, 5]], np.int32)
    ex, er, ee = check(x, row_idx, expert_idx, 3)
    np.testing.assert_array_equal(ee, [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(er, [2, 0, 1, 4, 3, 5])
    np.testing.assert_array_equal(ex[:, 0], np.float32([0.2, 0.3, 0.1, 0.2, 0.1, 0.3]))


@pytest.mark.parametrize("dt", DTYPES, ids=str)
def test_matches_reference(rng, dt):
    # the shapes of the official torch_npu test (n, k, H), experts in [0, 100), plus edge sizes
    for n, k, h in ((10, 2, 200), (430, 4, 1256), (520, 9, 64), (1, 1, 1), (37, 5, 5120), (0, 3, 16)):
        x = rng.standard_normal((n, h)).astype(dt)
        expert_idx = rng.integers(0, 100, (n, k)).astype(np.int32)
        check(x, standard_row_idx(n, k), expert_idx, n)


def test_active_num(rng):
    n, k, h = 50, 4, 24
    x = rng.standard_normal((n, h)).astype(np.float16)
    expert_idx = rng.integers(0, 16, (n, k)).astype(np.int32)
    for active in (0, 1, 7, 49, 50, 51, 10**9):
        ex, _, _ = check(x, standard_row_idx(n, k), expert_idx, active)
        assert ex.shape == (min(n, active) * k, h)


def test_stable_ties(rng):
    """All tokens choose the same experts: the order is the flat position i*K + k (token, then slot)."""
    n, k = 30, 3
    expert_idx = np.tile(np.array([[5, 5, 5]], np.int32), (n, 1))
    row_idx = standard_row_idx(n, k)
    _, er, ee = check(rng.standard_normal((n, 8)).astype(np.float32), row_idx, expert_idx, n)
    assert (ee == 5).all()
    np.testing.assert_array_equal(er[row_idx.reshape(-1)], np.arange(n * k))


def test_random_row_idx_permutation(rng):
    n, k = 64, 4
    row_idx = rng.permutation(n * k).reshape(n, k).astype(np.int32)
    check(rng.standard_normal((n, 16)).astype(bfloat16), row_idx, rng.integers(0, 8, (n, k)).astype(np.int32), 40)


def test_negative_and_large_expert_ids(rng):
    """ids anywhere in (-2^24, 2^24] sort exactly (the doc's range); negatives sort first."""
    n, k = 200, 4
    lo, hi = -(1 << 24) + 1, 1 << 24
    expert_idx = rng.integers(lo, hi + 1, (n, k)).astype(np.int32)
    expert_idx[0, 0], expert_idx[1, 1] = lo, hi
    check(rng.standard_normal((n, 8)).astype(np.float32), standard_row_idx(n, k), expert_idx, n)
    small = rng.integers(-3, 3, (n, k)).astype(np.int32)
    check(rng.standard_normal((n, 8)).astype(np.float32), standard_row_idx(n, k), small, n)


def test_large_problem(rng):
    n, k, h = 2048, 8, 256
    x = rng.standard_normal((n, h)).astype(np.float16)
    check(x, standard_row_idx(n, k), rng.integers(0, 256, (n, k)).astype(np.int32), n)


def test_non_contiguous_inputs(rng):
    n, k, h = 60, 3, 40
    x = rng.standard_normal((n, 2 * h)).astype(np.float32)[:, ::2]
    expert_idx = np.asfortranarray(rng.integers(0, 10, (n, k)).astype(np.int32))
    row_idx = np.arange(n * k, dtype=np.int32).reshape(k, n).T          # a transposed view: the standard form
    assert not row_idx.flags.c_contiguous and not x.flags.c_contiguous
    check(x, row_idx, expert_idx, 30)


# ---------------------------------------------------------------------------------------------------- data checks
@pytest.mark.parametrize("bad", [-(1 << 24), (1 << 24) + 1, -(2**31), 2**31 - 1])
def test_expert_id_outside_range(bad):
    expert_idx = np.array([[0, 1], [2, bad]], np.int32)
    with pytest.raises(AclnnError) as ei:
        moe_init_routing(np.zeros((2, 4), np.float32), standard_row_idx(2, 2), expert_idx, 2)
    assert ei.value.status == lib.ACLNN_ERR_PARAM_INVALID
    assert "expertIdx[1, 1]" in ei.value.c_message and str(bad) in ei.value.message


@pytest.mark.parametrize("bad", [-1, 6, 1000])
def test_row_idx_outside_range(bad):
    row_idx = np.array([[0, 3], [1, 4], [2, bad]], np.int32)
    with pytest.raises(AclnnError) as ei:
        moe_init_routing(np.zeros((3, 4), np.float32), row_idx, np.zeros((3, 2), np.int32), 3)
    assert ei.value.status == lib.ACLNN_ERR_PARAM_INVALID
    assert "rowIdx[2, 1]" in ei.value.c_message and str(bad) in ei.value.message


def test_row_idx_duplicate():
    row_idx = np.array([[0, 3], [1, 4], [2, 3]], np.int32)
    with pytest.raises(AclnnError) as ei:
        moe_init_routing(np.zeros((3, 4), np.float32), row_idx, np.zeros((3, 2), np.int32), 3)
    assert ei.value.status == lib.ACLNN_ERR_PARAM_INVALID and "more than once" in ei.value.message


# ---------------------------------------------------------------------------------------------------- rules
def test_valid_raw_call(ws_status):
    assert ws_status(API, *raw_args(), run=True) == (0, "")


@pytest.mark.parametrize("i, bad", [  # the outputs' dtypes (inputs outside their dtypes: test_contract.py)
    (4, np.zeros((6, 4), np.float16)),          # expandedX dtype != x
    (5, np.zeros(6, np.int64)),
    (6, np.zeros(6, np.float32)),
])
def test_dtype_rules(ws_status, i, bad):
    args = raw_args()
    args[i] = bad
    assert ws_status(API, *args)[0] == lib.ACLNN_ERR_PARAM_INVALID


@pytest.mark.parametrize("i, bad", [
    (0, np.zeros(12, np.float32)),              # x 1-D
    (1, np.zeros(6, np.int32)),                 # rowIdx 1-D
    (1, np.zeros((2, 3), np.int32)),            # rowIdx shape != expertIdx
    (2, np.zeros((3, 3), np.int32)),            # expertIdx K != rowIdx K
    (2, np.zeros(6, np.int32)),                 # expertIdx 1-D
    (3, -1),                                    # activeNum < 0
    (4, np.zeros((5, 4), np.float32)),          # expandedX rows != min(N, activeNum) * K
    (4, np.zeros((6, 5), np.float32)),          # expandedX H
    (5, np.zeros(7, np.int32)),                 # expandedRowIdx shape
    (6, np.zeros((6, 1), np.int32)),            # expandedExpertIdx shape
])
def test_shape_rules(ws_status, i, bad):
    args = raw_args()
    args[i] = bad
    status, msg = ws_status(API, *args)
    assert status == lib.ACLNN_ERR_INNER_TILING_ERROR, msg


def test_rows_of_indices_must_match_x(ws_status):
    args = raw_args()
    args[1], args[2] = standard_row_idx(4, 2), np.zeros((4, 2), np.int32)
    args[5], args[6] = np.zeros(8, np.int32), np.zeros(8, np.int32)
    assert ws_status(API, *args)[0] == lib.ACLNN_ERR_INNER_TILING_ERROR


def test_facade_errors():
    with pytest.raises(AclnnError) as ei:
        moe_init_routing(np.zeros((3, 4), np.float32), standard_row_idx(3, 2), np.zeros((3, 2), np.int32), -1)
    assert ei.value.status == lib.ACLNN_ERR_INNER_TILING_ERROR and "activeNum" in ei.value.c_message
    with pytest.raises(ArgumentError) as ei:
        moe_init_routing(np.zeros((3, 4), np.int32), standard_row_idx(3, 2), np.zeros((3, 2), np.int32), 3)
    assert ei.value.param == "x"
    with pytest.raises(ArgumentError) as ei:
        moe_init_routing(np.zeros((3, 4), np.float32), standard_row_idx(3, 2), np.zeros(6, np.int32), 3)
    assert ei.value.param == "expert_idx"
