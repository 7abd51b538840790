"""aclnnMoeTokenPermute against the numpy reference, num_out_tokens in every form, and every documented rule."""
from __future__ import annotations

import numpy as np
import pytest

from aclnn_moe import AclnnError, ArgumentError
from aclnn_moe._dtypes import bfloat16
from aclnn_moe.capi import lib
from aclnn_moe.ops.token_permute import MoeTokenPermute, moe_token_permute
from aclnn_moe.reference.token_permute import moe_token_permute as ref

API = "aclnnMoeTokenPermute"
DTYPES = (np.float32, np.float16, bfloat16, np.int8)


def make_tokens(rng, shape, dtype):
    if dtype == np.int8:
        return rng.integers(-128, 128, shape).astype(np.int8)
    return rng.standard_normal(shape).astype(dtype)


def assert_same(got, exp):
    for name, g, r in zip(("permuted_tokens", "sorted_indices"), got, exp):
        assert g.dtype == r.dtype and g.shape == r.shape, f"{name}: {g.dtype}{g.shape} != {r.dtype}{r.shape}"
        np.testing.assert_array_equal(g.view(np.uint8), r.view(np.uint8), err_msg=name)


def run_both(tokens, indices, *args):
    got = moe_token_permute(tokens, indices, *args)
    assert_same(got, ref(tokens, indices, *args))
    return got


# ---------------------------------------------------------------------------------------------- vs reference
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("idx_dtype", (np.int32, np.int64))
@pytest.mark.parametrize("t,k,h,e", [(1, 1, 1, 1), (3, 2, 4, 3), (17, 3, 33, 5), (128, 8, 256, 64),
                                     (300, 1, 64, 300), (64, 16, 128, 8), (9, 512, 2, 1000)])
def test_matches_reference(rng, dtype, idx_dtype, t, k, h, e):
    tokens = make_tokens(rng, (t, h), dtype)
    indices = rng.integers(0, e, (t, k)).astype(idx_dtype)
    total = t * k
    for n in (None, 0, 1, total // 2, total, total + 5, -1, -(total // 3), -total, -total - 7):
        run_both(tokens, indices, n)


def test_official_example():
    x = np.array([[0.1] * 4, [0.2] * 4, [0.3] * 4], np.float32)
    idx = np.array([[1, 2], [0, 1], [0, 2]], np.int32)
    out, sorted_idx = moe_token_permute(x, idx, 0)
    # expert 0: flat 2, 4; expert 1: flat 0, 3; expert 2: flat 1, 5
    np.testing.assert_array_equal(sorted_idx, [2, 4, 0, 3, 1, 5])
    np.testing.assert_array_equal(out[:, 0], np.float32([0.2, 0.3, 0.1, 0.2, 0.1, 0.3]))


@pytest.mark.parametrize("n,rows", [(None, 24), (0, 24), (5, 5), (24, 24), (100, 24), (-1, 23), (-24, 0),
                                    (-30, 0)])
def test_num_out_tokens_resolution(rng, n, rows):
    tokens = rng.standard_normal((8, 4)).astype(np.float32)
    indices = rng.integers(0, 5, (8, 3)).astype(np.int32)
    out, sorted_idx = run_both(tokens, indices, n)
    assert out.shape == (rows, 4) and sorted_idx.shape == (24,)
    full, _ = moe_token_permute(tokens, indices)
    np.testing.assert_array_equal(out, full[:rows])  # always a prefix of the full permutation


def test_one_dim_indices(rng):
    tokens = rng.standard_normal((40, 8)).astype(np.float16)
    indices = rng.integers(0, 6, 40).astype(np.int64)
    out, _ = run_both(tokens, indices, 25)
    assert out.shape == (25, 8)


def test_ties_keep_flat_order():
    tokens = np.arange(4, dtype=np.float32)[:, None].repeat(2, 1)
    indices = np.array([[1, 0], [0, 1], [1, 0], [0, 0]], np.int32)
    out, sorted_idx = moe_token_permute(tokens, indices)
    np.testing.assert_array_equal(sorted_idx, [5, 0, 1, 6, 7, 2, 3, 4])
    np.testing.assert_array_equal(out[:, 0], [0, 1, 2, 3, 3, 0, 1, 2])


def test_skewed_and_sparse_experts(rng):
    tokens = rng.standard_normal((64, 16)).astype(np.float32)
    skew = np.where(rng.random((64, 4)) < 0.9, 7, rng.integers(0, 1000, (64, 4))).astype(np.int32)
    run_both(tokens, skew, 200)
    same = np.full((64, 4), 3, np.int64)
    out, sorted_idx = moe_token_permute(tokens, same)
    np.testing.assert_array_equal(sorted_idx, np.arange(256))
    np.testing.assert_array_equal(out, tokens[np.arange(256) // 4])
    sparse = rng.choice([0, 16777214], (64, 4)).astype(np.int64)  # the largest allowed id
    run_both(tokens, sparse)


def test_empty_inputs():
    out, sorted_idx = moe_token_permute(np.zeros((0, 8), np.float16), np.zeros((0, 2), np.int32))
    assert out.shape == (0, 8) and sorted_idx.shape == (0,)
    out, sorted_idx = moe_token_permute(np.zeros((4, 0), np.float32), np.zeros((4, 2), np.int32))
    assert out.shape == (8, 0)
    np.testing.assert_array_equal(sorted_idx, np.arange(8))
    out, sorted_idx = moe_token_permute(np.ones((4, 3), np.float32), np.zeros((4, 0), np.int32))
    assert out.shape == (0, 3) and sorted_idx.shape == (0,)


def test_non_contiguous_inputs(rng):
    base = rng.standard_normal((20, 24)).astype(np.float32)
    indices = np.asfortranarray(rng.integers(0, 6, (20, 4)).astype(np.int64))
    run_both(base[:, ::3], indices, 70)
    run_both(base[::2], indices[::2], -3)


def test_higher_rank_tokens(rng):
    tokens = rng.standard_normal((10, 3, 4)).astype(np.float16)
    indices = rng.integers(0, 4, (10, 2)).astype(np.int32)
    out, _ = run_both(tokens, indices, 13)
    assert out.shape == (13, 3, 4)


def test_permute_then_unpermute_restores_tokens(rng):
    from aclnn_moe.ops.token_unpermute import moe_token_unpermute

    tokens = rng.standard_normal((50, 32)).astype(np.float32)
    indices = rng.integers(0, 8, (50, 4)).astype(np.int32)
    permuted, sorted_idx = moe_token_permute(tokens, indices)
    probs = np.full((50, 4), 0.25, np.float32)
    np.testing.assert_allclose(moe_token_unpermute(permuted, sorted_idx, probs), tokens, rtol=1e-6, atol=1e-6)


def test_plan_and_reuse(rng):
    tokens = rng.standard_normal((32, 8)).astype(np.float32)
    indices = rng.integers(0, 4, (32, 2)).astype(np.int32)
    with MoeTokenPermute(tokens, indices, 40) as op:
        op.plan()
        first = [a.copy() for a in op.execute()]
        tokens2 = rng.standard_normal((32, 8)).astype(np.float32)
        indices2 = rng.integers(0, 4, (32, 2)).astype(np.int32)
        op.reset_operands(tokens=tokens2, indices=indices2)
        second = op.execute()
    assert_same(first, ref(tokens, indices, 40))
    assert_same(second, ref(tokens2, indices2, 40))


# ---------------------------------------------------------------------------------------------- data checks
@pytest.mark.parametrize("bad", [-1, 16777215, 2**40])
def test_out_of_range_index_is_an_error(rng, bad):
    tokens = rng.standard_normal((5, 4)).astype(np.float32)
    indices = rng.integers(0, 3, (5, 2)).astype(np.int64)
    indices[3, 1] = bad
    with pytest.raises(AclnnError) as e:
        moe_token_permute(tokens, indices)
    assert e.value.status == lib.ACLNN_ERR_PARAM_INVALID
    assert "indices[7]" in e.value.message and str(bad) in e.value.message
    with pytest.raises(IndexError):
        ref(tokens, indices)


# ---------------------------------------------------------------------------------------------- status codes
def _args(t=4, k=2, h=3, n=0, dtype=np.float32):
    total = t * k
    rows = max(min(n if n > 0 else n + total, total), 0)
    return dict(tokens=np.ones((t, h), dtype), indices=np.zeros((t, k), np.int32), n=n, padded=False,
                out=np.zeros((rows, h), dtype), sorted=np.zeros(total, np.int32))


def _status(ws_status, a):
    return ws_status(API, a["tokens"], a["indices"], a["n"], a["padded"], a["out"], a["sorted"])


def test_valid_arguments_pass(ws_status):
    assert _status(ws_status, _args()) == (0, "")
    assert _status(ws_status, _args(n=-3))[0] == 0
    assert _status(ws_status, _args(dtype=np.int8))[0] == 0


@pytest.mark.parametrize("field", ["tokens", "indices", "out", "sorted"])
def test_null_tensor_161001(ws_status, field):
    a = _args()
    a[field] = None
    status, msg = _status(ws_status, a)
    assert status == lib.ACLNN_ERR_PARAM_NULLPTR and API in msg


@pytest.mark.parametrize("field,value", [
    ("tokens", np.ones((4, 3), np.int32)),
    ("tokens", np.ones((4, 3), np.float64)),
    ("indices", np.zeros((4, 2), np.int16)),
    ("indices", np.zeros((4, 2), np.float32)),
    ("out", np.zeros((8, 3), np.float16)),
    ("sorted", np.zeros(8, np.int64)),
])
def test_dtype_161002(ws_status, field, value):
    a = _args()
    a[field] = value
    assert _status(ws_status, a)[0] == lib.ACLNN_ERR_PARAM_INVALID


@pytest.mark.parametrize("change", [
    dict(padded=True),
    dict(tokens=np.ones(4, np.float32)),
    dict(indices=np.zeros((4, 2, 1), np.int32)),
    dict(indices=np.zeros((5, 2), np.int32)),
    dict(out=np.zeros((7, 3), np.float32)),
    dict(out=np.zeros((8, 4), np.float32)),
    dict(out=np.zeros(24, np.float32)),
    dict(sorted=np.zeros(7, np.int32)),
    dict(sorted=np.zeros((8, 1), np.int32)),
])
def test_shape_and_attribute_rules_561002(ws_status, change):
    a = _args()
    a.update(change)
    status, msg = _status(ws_status, a)
    assert status == lib.ACLNN_ERR_INNER_TILING_ERROR, msg
    assert API in msg


def test_topk_and_size_limits_561002(ws_status):
    assert _status(ws_status, _args(k=513))[0] == lib.ACLNN_ERR_INNER_TILING_ERROR
    assert _status(ws_status, _args(k=512))[0] == 0
    tokens = np.broadcast_to(np.float16(1), (32768, 1))
    indices = np.broadcast_to(np.int32(0), (32768, 512))  # 2^24 >= 16777215
    with pytest.raises(AclnnError) as e:
        moe_token_permute(tokens, indices, 1)
    assert e.value.status == lib.ACLNN_ERR_INNER_TILING_ERROR and "16777215" in e.value.message


def test_facade_rejects_bad_arguments_early():
    with pytest.raises(ArgumentError):
        moe_token_permute(np.ones((2, 2), np.int32), np.zeros((2, 1), np.int32))
    with pytest.raises(ArgumentError):
        moe_token_permute(np.ones((2, 2), np.float32), np.zeros((2, 1, 1), np.int32))
    with pytest.raises(ArgumentError):
        moe_token_permute(np.ones(2, np.float32), np.zeros(2, np.int32))
