"""aclnnMoeTokenUnpermute against the numpy reference (probs or none, dropped rows, zero weights, restore_shape)
and every documented rule."""
from __future__ import annotations

import numpy as np
import pytest

from aclnn_moe import AclnnError, ArgumentError
from aclnn_moe._dtypes import bfloat16
from aclnn_moe.capi import lib
from aclnn_moe.ops.token_unpermute import MoeTokenUnpermute, moe_token_unpermute
from aclnn_moe.reference.token_unpermute import moe_token_unpermute as ref

API = "aclnnMoeTokenUnpermute"
FLOATS = (np.float32, np.float16, bfloat16)


def bits(a):
    return a.view(np.uint16) if a.dtype in (bfloat16, np.float16) else a


def run_both(*args, **kw):
    got = moe_token_unpermute(*args, **kw)
    exp = ref(*args, **kw)
    assert got.dtype == exp.dtype and got.shape == exp.shape
    np.testing.assert_array_equal(bits(got), bits(exp))
    return got


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("pdtype", FLOATS + (None,))
@pytest.mark.parametrize("t,k,h", [(1, 1, 1), (3, 2, 4), (17, 3, 33), (128, 8, 256), (64, 70, 16), (5, 512, 3)])
def test_matches_reference(rng, dtype, pdtype, t, k, h):
    if pdtype is None:
        k = 1
    total = t * k
    sorted_indices = rng.permutation(total).astype(np.int32)
    probs = rng.random((t, k)).astype(pdtype) if pdtype is not None else None
    for rows in (total, total // 2, 0):  # rows dropped by num_out_tokens are skipped
        permuted = rng.standard_normal((rows, h)).astype(dtype)
        run_both(permuted, sorted_indices, probs)


def test_official_example():
    permuted = np.array([[1, 2], [3, 4]], np.float32)
    out = moe_token_unpermute(permuted, np.array([0, 1], np.int32), np.array([[1, 1]], np.float32))
    np.testing.assert_array_equal(out, [[4, 6]])
    out = moe_token_unpermute(permuted, np.array([1, 0], np.int32))  # no probs: K = 1, a gather
    np.testing.assert_array_equal(out, [[3, 4], [1, 2]])


def test_zero_probs_are_skipped_even_with_nan_rows(rng):
    permuted = rng.standard_normal((6, 4)).astype(np.float32)
    permuted[2] = np.nan
    sorted_indices = np.array([2, 0, 1, 3, 4, 5], np.int32)
    probs = np.array([[0, 1], [1, 1], [0.5, 0.5]], np.float32)
    out = run_both(permuted, sorted_indices, probs)
    assert np.isfinite(out).all()


def test_negative_index_with_zero_prob_is_skipped(rng):
    """vLLM-Ascend masks init_routing_v2's -1 rows with zero weights and feeds them here."""
    permuted = rng.standard_normal((4, 8)).astype(bfloat16)
    sorted_indices = np.array([0, -1, 1, 2, -1, 3], np.int32)
    probs = np.array([[0.5, 0], [0.25, 0.25], [0, 1]], np.float32)
    run_both(permuted, sorted_indices, probs)


@pytest.mark.parametrize("with_probs", [True, False])
def test_negative_index_that_would_be_read_is_an_error(rng, with_probs):
    permuted = rng.standard_normal((4, 8)).astype(np.float32)
    sorted_indices = np.array([0, 1, -1, 3], np.int32)
    probs = np.ones((2, 2), np.float32) if with_probs else None
    with pytest.raises(AclnnError) as e:
        moe_token_unpermute(permuted, sorted_indices, probs)
    assert e.value.status == lib.ACLNN_ERR_PARAM_INVALID and "sorted_indices[2]" in e.value.message
    with pytest.raises(IndexError):
        ref(permuted, sorted_indices, probs)


def test_indices_past_the_rows_are_dropped(rng):
    permuted = rng.standard_normal((3, 5)).astype(np.float16)
    sorted_indices = np.array([0, 7, 2, 1, 100, 3], np.int32)
    probs = rng.random((3, 2)).astype(np.float16)
    out = run_both(permuted, sorted_indices, probs)
    np.testing.assert_array_equal(out[2], np.zeros(5, np.float16))  # rows 100 and 3 are past the 3 rows


def test_fp32_accumulation_and_single_rounding():
    """bf16 sums are accumulated in fp32 and rounded once: 1 + 2^-8 + 2^-8 = 1 + 2^-7, where rounding each
    addition to bf16 would give 1 (ties to even)."""
    permuted = np.array([[1.0], [2.0 ** -8], [2.0 ** -8]], np.float32).astype(bfloat16)
    out = moe_token_unpermute(permuted, np.array([0, 1, 2], np.int32), np.ones((1, 3), bfloat16))
    assert float(out[0, 0]) == 1.0 + 2.0 ** -7


@pytest.mark.parametrize("restore_shape", [None, [1], [3, 4], [99, 99]])
def test_restore_shape_is_ignored(rng, restore_shape):
    permuted = rng.standard_normal((6, 4)).astype(np.float32)
    sorted_indices = rng.permutation(6).astype(np.int32)
    probs = rng.random((3, 2)).astype(np.float32)
    got = moe_token_unpermute(permuted, sorted_indices, probs, restore_shape=restore_shape)
    np.testing.assert_array_equal(got, ref(permuted, sorted_indices, probs))


def test_non_contiguous_inputs(rng):
    base = rng.standard_normal((24, 30)).astype(np.float32)
    sorted_indices = rng.permutation(24).astype(np.int32)
    probs = rng.random((4, 6)).astype(np.float32).T  # [6, 4] view
    run_both(base[:, ::3], sorted_indices, probs)
    run_both(base[::2], rng.permutation(24).astype(np.int32)[::2], rng.random((6, 4)).astype(np.float32)[:, ::2])


def test_empty_inputs():
    out = moe_token_unpermute(np.zeros((0, 8), np.float16), np.zeros(0, np.int32), np.zeros((0, 2), np.float16))
    assert out.shape == (0, 8)
    out = moe_token_unpermute(np.zeros((4, 0), np.float32), np.arange(4, dtype=np.int32))
    assert out.shape == (4, 0)


def test_plan_and_reuse(rng):
    permuted = rng.standard_normal((16, 8)).astype(np.float32)
    sorted_indices = rng.permutation(16).astype(np.int32)
    probs = rng.random((8, 2)).astype(np.float32)
    with MoeTokenUnpermute(permuted, sorted_indices, probs) as op:
        op.plan()
        first = op.execute().copy()
        permuted2 = rng.standard_normal((16, 8)).astype(np.float32)
        op.reset_operands(permuted_tokens=permuted2)
        second = op.execute()
    np.testing.assert_array_equal(first, ref(permuted, sorted_indices, probs))
    np.testing.assert_array_equal(second, ref(permuted2, sorted_indices, probs))


# ---------------------------------------------------------------------------------------------- status codes
def _args(t=3, k=2, h=4, probs=True, dtype=np.float32):
    return dict(x=np.ones((t * k, h), dtype), s=np.arange(t * k, dtype=np.int32),
                p=np.ones((t, k), dtype) if probs else None, padded=False, restore=None,
                out=np.zeros((t if probs else t * k, h), dtype))


def _status(ws_status, a):
    return ws_status(API, a["x"], a["s"], a["p"], a["padded"], a["restore"], a["out"])


def test_valid_arguments_pass(ws_status):
    assert _status(ws_status, _args()) == (0, "")
    assert _status(ws_status, _args(probs=False))[0] == 0
    a = _args()
    a["restore"] = [1]  # torch_npu's default restore_shape
    assert _status(ws_status, a)[0] == 0


@pytest.mark.parametrize("field", ["x", "s", "out"])
def test_null_tensor_161001(ws_status, field):
    a = _args()
    a[field] = None
    status, msg = _status(ws_status, a)
    assert status == lib.ACLNN_ERR_PARAM_NULLPTR and API in msg


@pytest.mark.parametrize("field,value", [
    ("x", np.ones((6, 4), np.int32)),
    ("s", np.arange(6, dtype=np.int64)),
    ("p", np.ones((3, 2), np.float64)),
    ("out", np.zeros((3, 4), np.float16)),
])
def test_dtype_161002(ws_status, field, value):
    a = _args()
    a[field] = value
    assert _status(ws_status, a)[0] == lib.ACLNN_ERR_PARAM_INVALID


@pytest.mark.parametrize("change", [
    dict(padded=True),
    dict(x=np.ones(24, np.float32)),
    dict(s=np.zeros((6, 1), np.int32)),
    dict(p=np.ones(6, np.float32)),
    dict(p=np.ones((2, 2), np.float32)),
    dict(out=np.zeros((4, 4), np.float32)),
    dict(out=np.zeros((3, 5), np.float32)),
])
def test_shape_and_attribute_rules_561002(ws_status, change):
    a = _args()
    a.update(change)
    status, msg = _status(ws_status, a)
    assert status == lib.ACLNN_ERR_INNER_TILING_ERROR, msg
    assert API in msg


def test_topk_limit_561002(ws_status):
    assert _status(ws_status, _args(t=1, k=513))[0] == lib.ACLNN_ERR_INNER_TILING_ERROR
    assert _status(ws_status, _args(t=1, k=512))[0] == 0


def test_mixed_probs_dtype_is_allowed(rng):
    permuted = rng.standard_normal((8, 4)).astype(bfloat16)
    sorted_indices = rng.permutation(8).astype(np.int32)
    for pdt in (np.float32, np.float16):
        run_both(permuted, sorted_indices, rng.random((4, 2)).astype(pdt))


def test_facade_rejects_bad_arguments_early():
    with pytest.raises(ArgumentError):
        moe_token_unpermute(np.ones((2, 2), np.int32), np.zeros(2, np.int32))
    with pytest.raises(ArgumentError):
        moe_token_unpermute(np.ones((2, 2), np.float32), np.zeros((2, 1), np.int32))
    with pytest.raises(ArgumentError):
        moe_token_unpermute(np.ones((2, 2), np.float32), np.zeros(2, np.int32), np.ones(2, np.float32))
