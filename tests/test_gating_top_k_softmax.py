"""aclnnMoeGatingTopKSoftmax and aclnnMoeGatingTopKSoftmaxV2 against the numpy reference (2-D and 3-D x, the
finished mask, renorm 0/1, the softmax output, every dtype) and every documented rule."""
from __future__ import annotations

import numpy as np
import pytest

from aclnn_moe import ArgumentError
from aclnn_moe._dtypes import bfloat16
from aclnn_moe.capi import lib
from aclnn_moe.ops._compare import assert_all_same
from aclnn_moe.ops.gating_top_k_softmax import MoeGatingTopKSoftmax, moe_gating_top_k_softmax, separated_logits
from aclnn_moe.ops.gating_top_k_softmax_v2 import moe_gating_top_k_softmax_v2
from aclnn_moe.reference.gating_top_k_softmax import (moe_gating_top_k_softmax as ref_v1,
                                                      moe_gating_top_k_softmax_v2 as ref_v2, round_bf16_away)

V1, V2 = "aclnnMoeGatingTopKSoftmax", "aclnnMoeGatingTopKSoftmaxV2"
FLOATS = (np.float32, np.float16, bfloat16)
SHAPES = [((1, 1), 1), ((5, 8), 2), ((33, 64), 8), ((4, 7, 128), 6), ((2, 3, 256), 32), ((17, 2048), 1024),
          ((3, 1000), 999)]


def v1_both(x, finished=None, k=1):
    got = moe_gating_top_k_softmax(x, finished, k)
    assert_all_same(got, ref_v1(x, finished, k), ("y", "expert_idx", "row_idx"), V1)
    return got


def v2_both(x, **kw):
    got = moe_gating_top_k_softmax_v2(x, **kw)
    assert_all_same(got, ref_v2(x, **kw), ("y", "expert_idx", "softmax_result"), V2)
    return got


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,k", SHAPES)
def test_v1_matches_reference(rng, dtype, shape, k):
    x = (rng.standard_normal(shape) * 3).astype(dtype)  # random: ties and near-ties included
    v1_both(x, None, k)
    v1_both(x, rng.random(shape[:-1]) < 0.5, k)
    v1_both(separated_logits(rng, shape, dtype), None, k)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,k", SHAPES)
@pytest.mark.parametrize("renorm,output_softmax", [(0, False), (0, True), (1, False), (1, True)])
def test_v2_matches_reference(rng, dtype, shape, k, renorm, output_softmax):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    _, _, sm = v2_both(x, k=k, renorm=renorm, output_softmax=output_softmax)
    assert (sm is None) == (renorm == 1 or not output_softmax)
    v2_both(x, k=k, finished=rng.random(shape[:-1]) < 0.5, renorm=renorm, output_softmax=output_softmax)


def test_v1_row_idx_is_k_major():
    x = np.zeros((3, 4), np.float32)
    _, idx, row_idx = moe_gating_top_k_softmax(x, None, 2)
    np.testing.assert_array_equal(row_idx, [[0, 3], [1, 4], [2, 5]])  # row_idx[r, j] = j*N + r
    np.testing.assert_array_equal(idx, [[0, 1]] * 3)  # ties rank the lower expert first
    _, _, row_idx = moe_gating_top_k_softmax(np.zeros((2, 3, 4), np.float32), None, 2)
    np.testing.assert_array_equal(row_idx.reshape(6, 2), np.arange(12).reshape(2, 6).T)


def test_official_example_values():
    x = np.array([[0.1, 0.1, 0.1, 0.1], [0.2, 0.2, 0.2, 0.2], [0.3, 0.3, 0.3, 0.3]], np.float32)
    y, idx, row_idx = moe_gating_top_k_softmax(x, np.array([False, False, True]), 1)
    np.testing.assert_allclose(y, 0.25)
    np.testing.assert_array_equal(idx[:, 0], [0, 0, 4])  # a finished row gets the expert count
    np.testing.assert_array_equal(row_idx[:, 0], [0, 1, 2])


def test_v2_renorm_1_softmaxes_the_top_k_logits(rng):
    x = separated_logits(rng, (6, 16), np.float32)
    y, idx, _ = moe_gating_top_k_softmax_v2(x, k=4, renorm=1)
    top = np.take_along_axis(x, idx, 1).astype(np.float64)
    np.testing.assert_allclose(y, np.exp(top) / np.exp(top).sum(1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(y.sum(1), 1, rtol=1e-6)


def test_v2_softmax_result_is_the_full_softmax(rng):
    x = rng.standard_normal((2, 5, 32)).astype(np.float16)
    y, idx, sm = moe_gating_top_k_softmax_v2(x, k=3, output_softmax=True)
    assert sm.dtype == np.float32 and sm.shape == x.shape
    np.testing.assert_allclose(sm.sum(-1), 1, rtol=1e-5)
    np.testing.assert_array_equal(y, np.take_along_axis(sm, idx, -1).astype(np.float16))


def test_bf16_rounds_ties_away_from_zero():
    """y in bf16 is stored with CAST_ROUND: 1 + 2^-8 (a tie) becomes 1 + 2^-7, not 1 as nearest-even would."""
    v = np.array([1 + 2.0 ** -8, 1 + 3 * 2.0 ** -8, 0.5 + 2.0 ** -9], np.float32)
    np.testing.assert_array_equal(round_bf16_away(v).astype(np.float32), [1 + 2.0 ** -7, 1 + 2.0 ** -6, 0.5 + 2.0 ** -8])


def test_nan_rows_rank_the_first_experts(rng):
    x = rng.standard_normal((3, 8)).astype(np.float32)
    x[1, 5] = np.nan
    y, idx, _ = v1_both(x, None, 3)
    np.testing.assert_array_equal(idx[1], [0, 1, 2])
    assert np.isnan(y[1]).all() and np.isfinite(y[[0, 2]]).all()


def test_infinities(rng):
    x = rng.standard_normal((4, 8)).astype(np.float32)
    x[0, 3] = np.inf
    x[1, :] = -np.inf
    x[2, 2] = -np.inf
    v1_both(x, None, 2)
    v2_both(x, k=2, renorm=1)


def test_non_contiguous_inputs(rng):
    base = rng.standard_normal((12, 64)).astype(bfloat16)
    fin = rng.random((24,)) < 0.5
    v1_both(base[:, ::2], fin[::2], 4)
    v1_both(base[::3], None, 5)
    v2_both(base[:, ::4], k=3, finished=fin[1::2], renorm=1)


def test_plan_and_reuse(rng):
    x = rng.standard_normal((8, 32)).astype(np.float16)
    with MoeGatingTopKSoftmax(x, None, 4) as op:
        op.plan()
        first = op.execute()
        x2 = rng.standard_normal((8, 32)).astype(np.float16)
        op.reset_operands(x=x2)
        second = op.execute()
    assert_all_same(first, ref_v1(x, None, 4), ("y", "expert_idx", "row_idx"), "first")
    assert_all_same(second, ref_v1(x2, None, 4), ("y", "expert_idx", "row_idx"), "second")


def test_v2_empty_rows():
    y, idx, sm = moe_gating_top_k_softmax_v2(np.zeros((0, 8), np.float32), k=2, output_softmax=True)
    assert y.shape == (0, 2) and idx.shape == (0, 2) and sm.shape == (0, 8)


# ---------------------------------------------------------------------------------------------- status codes
def _v1(x_shape=(4, 8), k=2, fin=True, dtype=np.float32):
    lead = x_shape[:-1]
    return dict(x=np.ones(x_shape, dtype), f=np.zeros(lead, bool) if fin else None, k=k,
                y=np.zeros(lead + (k,), dtype), i=np.zeros(lead + (k,), np.int32), r=np.zeros(lead + (k,), np.int32))


def _s1(ws_status, a):
    return ws_status(V1, a["x"], a["f"], a["k"], a["y"], a["i"], a["r"])


def _v2(x_shape=(4, 8), k=2, fin=True, renorm=0, flag=True, dtype=np.float32):
    lead = x_shape[:-1]
    return dict(x=np.ones(x_shape, dtype), f=np.zeros(lead, bool) if fin else None, k=k, renorm=renorm, flag=flag,
                y=np.zeros(lead + (k,), dtype), i=np.zeros(lead + (k,), np.int32),
                s=np.zeros(x_shape, np.float32))


def _s2(ws_status, a):
    return ws_status(V2, a["x"], a["f"], a["k"], a["renorm"], a["flag"], a["y"], a["i"], a["s"])


def test_valid_arguments_pass(ws_status):
    assert _s1(ws_status, _v1()) == (0, "")
    assert _s1(ws_status, _v1(x_shape=(2, 3, 8), k=8))[0] == 0
    assert _s2(ws_status, _v2()) == (0, "")
    a = _v2(renorm=1)
    a["s"] = None  # ignored with renorm 1
    assert _s2(ws_status, a)[0] == 0


@pytest.mark.parametrize("change", [
    dict(k=0), dict(k=9), dict(k=-1),
    dict(x=np.ones((4, 0), np.float32)), dict(x=np.ones((0, 8), np.float32)),
    dict(x=np.ones(8, np.float32)), dict(x=np.ones((1, 2, 3, 8), np.float32)),
    dict(f=np.zeros(5, bool)), dict(f=np.zeros((4, 1), bool)),
    dict(y=np.zeros((4, 3), np.float32)), dict(i=np.zeros((5, 2), np.int32)), dict(r=np.zeros((4, 2, 1), np.int32)),
])
def test_v1_shape_and_attribute_rules_561002(ws_status, change):
    a = _v1()
    a.update(change)
    status, msg = _s1(ws_status, a)
    assert status == lib.ACLNN_ERR_INNER_TILING_ERROR, msg
    assert V1 in msg


def test_k_limit_1024_561002(ws_status):
    assert _s1(ws_status, _v1(x_shape=(2, 1100), k=1025))[0] == lib.ACLNN_ERR_INNER_TILING_ERROR
    assert _s1(ws_status, _v1(x_shape=(2, 1100), k=1024))[0] == 0
    assert _s2(ws_status, _v2(x_shape=(2, 1100), k=1025))[0] == lib.ACLNN_ERR_INNER_TILING_ERROR


@pytest.mark.parametrize("change", [
    dict(k=0), dict(k=9), dict(renorm=2), dict(renorm=-1),
    dict(x=np.ones((4, 0), np.float32)), dict(f=np.zeros(3, bool)),
    dict(s=None), dict(s=np.zeros((4, 8), np.float16)), dict(s=np.zeros((4, 9), np.float32)),
    dict(y=np.zeros((4, 3), np.float32)),
])
def test_v2_shape_and_attribute_rules_561002(ws_status, change):
    a = _v2()
    a.update(change)
    status, msg = _s2(ws_status, a)
    assert status == lib.ACLNN_ERR_INNER_TILING_ERROR, msg


@pytest.mark.parametrize("field,value", [("x", np.ones((4, 8), np.float64)), ("f", np.zeros(4, np.int8)),
                                         ("y", np.zeros((4, 2), np.float16)), ("i", np.zeros((4, 2), np.int64))])
def test_dtype_161002(ws_status, field, value):
    for make, status in ((_v1, _s1), (_v2, _s2)):
        a = make()
        a[field] = value
        assert status(ws_status, a)[0] == lib.ACLNN_ERR_PARAM_INVALID


def test_facade_rejects_bad_k_early():
    with pytest.raises(ArgumentError):
        moe_gating_top_k_softmax(np.ones((2, 4), np.float32), None, 5)
    with pytest.raises(ArgumentError):
        moe_gating_top_k_softmax_v2(np.ones((2, 4), np.float32), k=0)
    with pytest.raises(ArgumentError):
        moe_gating_top_k_softmax(np.ones((2, 4), np.float32), None, 2.5)
