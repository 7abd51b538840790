"""aclnnMoeTokenPermuteWithEp against the numpy reference, its EP window edge cases and every documented rule."""
from __future__ import annotations

import numpy as np
import pytest

from aclnn_moe import AclnnError, ArgumentError
from aclnn_moe._dtypes import bfloat16
from aclnn_moe.capi import lib
from aclnn_moe.ops import _compare
from aclnn_moe.ops.token_permute_with_ep import moe_token_permute_with_ep
from aclnn_moe.reference.token_permute_with_ep import moe_token_permute_with_ep as ref

API = "aclnnMoeTokenPermuteWithEp"
FLOAT_DTYPES = (np.float32, np.float16, bfloat16)


def assert_same(got, exp):
    _compare.assert_all_same(tuple(got), tuple(exp), ("permute_tokens", "sorted_indices", "permute_probs"), API)


def run_both(tokens, indices, **kw):
    got = moe_token_permute_with_ep(tokens, indices, **kw)
    exp = ref(tokens, indices, **kw)
    assert_same(got, exp)
    return got


# ---------------------------------------------------------------------------------------------- vs reference
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("idx_dtype", (np.int32, np.int64))
@pytest.mark.parametrize("t,k,h,e", [(1, 1, 1, 1), (3, 2, 4, 4), (17, 3, 33, 5), (128, 8, 256, 64),
                                     (300, 1, 64, 300), (64, 16, 128, 8)])
def test_matches_reference(rng, dtype, idx_dtype, t, k, h, e):
    tokens = rng.standard_normal((t, h)).astype(dtype)
    indices = rng.integers(0, e, (t, k)).astype(idx_dtype)
    probs = rng.random((t, k)).astype(dtype)
    total = t * k
    for window in (None, [0, total], [0, 0], [total // 3, total - total // 4], [total // 2, total]):
        run_both(tokens, indices, probs=probs, range=window)
    run_both(tokens, indices, range=[0, max(total // 2, 1)])  # without probs: permute_probs is None


def test_official_example():
    x = np.array([[0.1] * 4, [0.2] * 4, [0.3] * 4], np.float32)
    idx = np.array([[1, 2], [3, 1], [2, 3]], np.int32)
    probs = np.array([[0.5, 0.3], [0.4, 0.2], [0.5, 0.4]], np.float32)
    out, sorted_idx, pp = moe_token_permute_with_ep(x, idx, probs=probs, range=[1, 5], num_out_tokens=6)
    np.testing.assert_array_equal(sorted_idx, [0, 2, 4, 1, 3, 5])
    np.testing.assert_array_equal(out[:, 0], np.float32([0.2, 0.1, 0.3, 0.2]))
    np.testing.assert_array_equal(pp, np.float32([0.2, 0.3, 0.5, 0.4]))


def test_one_dim_indices(rng):
    tokens = rng.standard_normal((40, 8)).astype(np.float16)
    indices = rng.integers(0, 6, 40).astype(np.int64)
    probs = rng.random(40).astype(np.float16)
    got = run_both(tokens, indices, probs=probs, range=[5, 30])
    assert got[0].shape == (25, 8) and got[2].shape == (25,)


# ---------------------------------------------------------------------------------------------- EP windows
@pytest.mark.parametrize("window", [[0, 24], [0, 1], [23, 24], [0, 0], [7, 7], [24, 24], [10, 3], [24, 0],
                                    [5, 6], [1, 23]])
def test_window_edges(rng, window):
    t, k = 8, 3
    tokens = rng.standard_normal((t, 5)).astype(np.float32)
    indices = rng.integers(0, 4, (t, k)).astype(np.int32)
    probs = rng.random((t, k)).astype(np.float32)
    got = run_both(tokens, indices, probs=probs, range=window)
    start, end = window
    n_out = end - start if end - start > 0 else end - start + t * k
    assert got[0].shape[0] == min(n_out, t * k)


def test_start_equal_end_outputs_whole_permutation(rng):
    """start == end resolves to T*K rows; the NPU kernel then writes row d at d (no start offset)."""
    tokens = rng.standard_normal((6, 4)).astype(np.float32)
    indices = rng.integers(0, 3, (6, 2)).astype(np.int32)
    full = moe_token_permute_with_ep(tokens, indices)
    for s in (0, 5, 12):
        got = moe_token_permute_with_ep(tokens, indices, range=[s, s])
        np.testing.assert_array_equal(got[0], full[0])
        np.testing.assert_array_equal(got[1], full[1])


def test_end_before_start_zero_fills_the_tail(rng):
    tokens = rng.standard_normal((4, 3)).astype(np.float32) + 10
    indices = rng.integers(0, 3, (4, 2)).astype(np.int32)
    out, sorted_idx, _ = moe_token_permute_with_ep(tokens, indices, range=[6, 2])  # n_out = 2 - 6 + 8 = 4
    assert out.shape == (4, 3)
    assert np.all(out[:2] >= 5) and np.all(out[2:] == 0)  # sorted rows 6, 7 then two rows past the end


@pytest.mark.parametrize("n", [0, 1, 5, 23, 24])
def test_num_out_tokens_without_range(rng, n):
    tokens = rng.standard_normal((8, 4)).astype(bfloat16)
    indices = rng.integers(0, 5, (8, 3)).astype(np.int32)
    got = run_both(tokens, indices, num_out_tokens=n)
    assert got[0].shape == (n if n > 0 else 24, 4)


@pytest.mark.parametrize("n", [25, 100, -1, -24])
def test_num_out_tokens_outside_total_561002(rng, n):
    """Without a range the official tiling checks [0, num_out_tokens] like a range: it must lie in [0, T*K]."""
    tokens = rng.standard_normal((8, 4)).astype(np.float32)
    indices = rng.integers(0, 5, (8, 3)).astype(np.int32)
    with pytest.raises(AclnnError) as e:
        moe_token_permute_with_ep(tokens, indices, num_out_tokens=n)
    assert e.value.status == lib.ACLNN_ERR_INNER_TILING_ERROR
    with pytest.raises(ValueError):
        ref(tokens, indices, num_out_tokens=n)


def test_num_out_tokens_ignored_with_range(rng):
    tokens = rng.standard_normal((8, 4)).astype(np.float32)
    indices = rng.integers(0, 5, (8, 3)).astype(np.int32)
    a = moe_token_permute_with_ep(tokens, indices, range=[2, 9], num_out_tokens=3)
    b = moe_token_permute_with_ep(tokens, indices, range=[2, 9], num_out_tokens=0)
    assert a[0].shape == (7, 4)
    np.testing.assert_array_equal(a[0], b[0])


def test_ranks_partition_the_full_permutation(rng):
    t, k, e, ranks = 50, 4, 16, 4
    tokens = rng.standard_normal((t, 32)).astype(np.float16)
    indices = rng.integers(0, e, (t, k)).astype(np.int32)
    probs = rng.random((t, k)).astype(np.float16)
    full, full_sorted, full_probs = moe_token_permute_with_ep(tokens, indices, probs=probs)
    bounds = np.linspace(0, t * k, ranks + 1).astype(int)
    parts = [moe_token_permute_with_ep(tokens, indices, probs=probs, range=[int(a), int(b)])
             for a, b in zip(bounds[:-1], bounds[1:])]
    _compare.assert_same(np.concatenate([p[0] for p in parts]), full, "permute_tokens of the ranks")
    _compare.assert_same(np.concatenate([p[2] for p in parts]), full_probs, "permute_probs of the ranks")
    for p in parts:
        np.testing.assert_array_equal(p[1], full_sorted)


# ---------------------------------------------------------------------------------------------- routing shapes
def test_skewed_and_empty_experts(rng):
    tokens = rng.standard_normal((64, 16)).astype(np.float32)
    skew = np.where(rng.random((64, 4)) < 0.9, 7, rng.integers(0, 1000, (64, 4))).astype(np.int32)
    run_both(tokens, skew, range=[10, 200])
    same = np.full((64, 4), 3, np.int64)  # every pair on one expert: stable order = flat order
    out, sorted_idx, _ = moe_token_permute_with_ep(tokens, same)
    np.testing.assert_array_equal(sorted_idx, np.arange(256))
    np.testing.assert_array_equal(out, tokens[np.arange(256) // 4])
    sparse = rng.choice([0, 16777214], (64, 4)).astype(np.int64)  # largest allowed id, most experts empty
    run_both(tokens, sparse, range=[0, 100])


def test_ties_keep_flat_order():
    tokens = np.arange(4, dtype=np.float32)[:, None].repeat(2, 1)
    indices = np.array([[1, 0], [0, 1], [1, 0], [0, 0]], np.int32)
    _, sorted_idx, _ = moe_token_permute_with_ep(tokens, indices)
    # expert 0: flat 1, 2, 5, 6, 7 -> rows 0..4; expert 1: flat 0, 3, 4 -> rows 5..7
    np.testing.assert_array_equal(sorted_idx, [5, 0, 1, 6, 7, 2, 3, 4])


def test_empty_inputs():
    tokens = np.zeros((0, 8), np.float16)
    indices = np.zeros((0, 2), np.int32)
    out, sorted_idx, pp = moe_token_permute_with_ep(tokens, indices, probs=np.zeros((0, 2), np.float16))
    assert out.shape == (0, 8) and sorted_idx.shape == (0,) and pp.shape == (0,)
    out, _, _ = moe_token_permute_with_ep(np.zeros((4, 0), np.float32), np.zeros((4, 2), np.int32))
    assert out.shape == (8, 0)


def test_non_contiguous_inputs(rng):
    base = rng.standard_normal((20, 24)).astype(np.float32)
    tokens = base[:, ::3]  # column stride 3
    indices = np.asfortranarray(rng.integers(0, 6, (20, 4)).astype(np.int64))
    probs = rng.random((4, 20)).astype(np.float32).T  # transposed view
    assert not tokens.flags.c_contiguous and not indices.flags.c_contiguous and not probs.flags.c_contiguous
    run_both(tokens, indices, probs=probs, range=[3, 70])
    run_both(base[::2], indices[::2], probs=probs[::2], range=[1, 30])  # row stride 2


def test_higher_rank_tokens(rng):
    tokens = rng.standard_normal((10, 3, 4)).astype(np.float16)
    indices = rng.integers(0, 4, (10, 2)).astype(np.int32)
    got = run_both(tokens, indices, range=[2, 15])
    assert got[0].shape == (13, 3, 4)


# ---------------------------------------------------------------------------------------------- data checks
@pytest.mark.parametrize("bad", [-1, 16777215, 2**40])
def test_out_of_range_index_is_an_error(rng, bad):
    tokens = rng.standard_normal((5, 4)).astype(np.float32)
    indices = rng.integers(0, 3, (5, 2)).astype(np.int64)
    indices[3, 1] = bad
    with pytest.raises(AclnnError) as e:
        moe_token_permute_with_ep(tokens, indices)
    assert e.value.status == lib.ACLNN_ERR_PARAM_INVALID
    assert "indices[7]" in e.value.message and str(bad) in e.value.message


# ---------------------------------------------------------------------------------------------- status codes
def _args(t=4, k=2, h=3, probs=True, window=(1, 5), n_out=None, dtype=np.float32, idx_dtype=np.int32):
    total = t * k
    if n_out is None:
        n_out = window[1] - window[0] if window else total
        n_out = n_out + total if n_out <= 0 else n_out
    tokens = np.ones((t, h), dtype)
    indices = np.zeros((t, k), idx_dtype)
    p = np.ones((t, k), dtype) if probs else None
    return dict(tokens=tokens, indices=indices, probs=p, range=list(window) if window else None, num_out=0,
                padded=False, out=np.zeros((n_out, h), dtype), sorted=np.zeros(total, np.int32),
                pout=np.zeros(n_out, dtype) if probs else None)


def _status(ws_status, a):
    return ws_status(API, a["tokens"], a["indices"], a["probs"], a["range"], a["num_out"], a["padded"], a["out"],
                     a["sorted"], a["pout"])


def test_valid_arguments_pass(ws_status):
    assert _status(ws_status, _args()) == (0, "")
    assert _status(ws_status, _args(probs=False))[0] == 0
    assert _status(ws_status, _args(window=None))[0] == 0


@pytest.mark.parametrize("field", ["pout"])  # the required ones: test_contract.py
def test_null_tensor_161001(ws_status, field):
    a = _args()
    a[field] = None
    status, msg = _status(ws_status, a)
    assert status == lib.ACLNN_ERR_PARAM_NULLPTR
    assert "aclnnMoeTokenPermuteWithEp" in msg


# inputs outside their dtypes: test_contract.py; int16 indices (not among its candidates), the same-dtype
# rule of probs and the outputs here
@pytest.mark.parametrize("field,value", [
    ("indices", np.zeros((4, 2), np.int16)),
    ("probs", np.ones((4, 2), np.float16)),          # probs must have the tokens dtype
    ("out", np.zeros((4, 3), np.float16)),
    ("sorted", np.zeros(8, np.int64)),
    ("pout", np.zeros(4, np.float16)),
])
def test_dtype_161002(ws_status, field, value):
    a = _args()
    a[field] = value
    assert _status(ws_status, a)[0] == lib.ACLNN_ERR_PARAM_INVALID


@pytest.mark.parametrize("change", [
    dict(padded=True),
    dict(range=[1, 2, 3]),
    dict(range=[-1, 5]),
    dict(range=[1, 9]),
    dict(range=[9, 1]),
    dict(indices=np.zeros((4, 2, 1), np.int32)),
    dict(indices=np.zeros((5, 2), np.int32)),
    dict(tokens=np.ones(4, np.float32)),
    dict(probs=np.ones((4, 3), np.float32)),
    dict(probs=np.ones((5, 2), np.float32)),
    dict(probs=np.ones(8, np.float32)),
    dict(out=np.zeros((5, 3), np.float32)),
    dict(out=np.zeros((4, 4), np.float32)),
    dict(out=np.zeros(12, np.float32)),
    dict(sorted=np.zeros(7, np.int32)),
    dict(sorted=np.zeros((8, 1), np.int32)),
    dict(pout=np.zeros(5, np.float32)),
    dict(pout=np.zeros((4, 1), np.float32)),
])
def test_shape_and_attribute_rules_561002(ws_status, change):
    a = _args()
    a.update(change)
    status, msg = _status(ws_status, a)
    assert status == lib.ACLNN_ERR_INNER_TILING_ERROR, msg
    assert "aclnnMoeTokenPermuteWithEp" in msg


def test_topk_limits_561002(ws_status):
    a = _args(k=513, window=(0, 0), probs=False)
    assert _status(ws_status, a)[0] == lib.ACLNN_ERR_INNER_TILING_ERROR
    a = _args(k=512, window=(0, 0), probs=False)
    assert _status(ws_status, a)[0] == 0
    a = _args(k=0, window=(0, 0), probs=False)
    assert _status(ws_status, a)[0] == lib.ACLNN_ERR_INNER_TILING_ERROR


def test_too_many_indices_561002():
    tokens = np.broadcast_to(np.float16(1), (32768, 1))
    indices = np.broadcast_to(np.int32(0), (32768, 512))  # 2^24 >= 16777215
    with pytest.raises(AclnnError) as e:
        moe_token_permute_with_ep(tokens, indices, range=[0, 1])
    assert e.value.status == lib.ACLNN_ERR_INNER_TILING_ERROR and "16777215" in e.value.message


def test_facade_rejects_bad_dtypes_early():
    with pytest.raises(ArgumentError):
        moe_token_permute_with_ep(np.ones((2, 2), np.int32), np.zeros((2, 1), np.int32))
    with pytest.raises(ArgumentError):
        moe_token_permute_with_ep(np.ones((2, 2), np.float32), np.zeros((2, 1, 1), np.int32))
