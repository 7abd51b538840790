"""aclnnMoeTokenUnpermuteWithEp against the numpy reference, the permute -> unpermute round trip over EP ranks,
and every documented rule."""
from __future__ import annotations

import numpy as np
import pytest

from aclnn_moe import AclnnError, ArgumentError
from aclnn_moe._dtypes import bfloat16
from aclnn_moe.ops.token_permute_with_ep import moe_token_permute_with_ep
from aclnn_moe.capi import lib
from aclnn_moe.ops._compare import assert_same
from aclnn_moe.ops.token_unpermute_with_ep import moe_token_unpermute_with_ep
from aclnn_moe.reference.token_unpermute_with_ep import moe_token_unpermute_with_ep as ref

API = "aclnnMoeTokenUnpermuteWithEp"
FLOAT_DTYPES = (np.float32, np.float16, bfloat16)


def run_both(permuted, sorted_indices, **kw):
    got = moe_token_unpermute_with_ep(permuted, sorted_indices, **kw)
    assert_same(got, ref(permuted, sorted_indices, **kw), API)
    return got


def window_rows(total, window):
    if window is None:
        return total
    return max(window[1] - window[0], 0)


# ---------------------------------------------------------------------------------------------- vs reference
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("probs_dtype", FLOAT_DTYPES + (None,))
@pytest.mark.parametrize("t,k,h", [(1, 1, 1), (3, 2, 2), (19, 3, 37), (128, 8, 256), (64, 1, 96)])
def test_matches_reference(rng, dtype, probs_dtype, t, k, h):
    total = t * k
    sorted_indices = rng.permutation(total).astype(np.int32)
    probs = rng.random((t, k)).astype(probs_dtype) if probs_dtype is not None else None
    for window in (None, [0, total], [total // 4, total - total // 5], [total // 2, total], [0, 1]):
        permuted = rng.standard_normal((max(window_rows(total, window), 1), h)).astype(dtype)
        run_both(permuted, sorted_indices, probs=probs, num_topk=k, range=window)


def test_official_example():
    permuted = np.array([[2, 2], [1, 1], [3, 3], [2, 2]], np.float32)
    sorted_indices = np.array([2, 0, 4, 1, 5, 3], np.int32)
    out = moe_token_unpermute_with_ep(permuted, sorted_indices, probs=np.ones((3, 2), np.float32), range=[1, 5])
    np.testing.assert_array_equal(out, [[1, 1], [4, 4], [3, 3]])


def test_num_topk_defaults(rng):
    permuted = rng.standard_normal((12, 4)).astype(np.float32)
    s = rng.permutation(12).astype(np.int32)
    probs = rng.random((4, 3)).astype(np.float32)
    assert moe_token_unpermute_with_ep(permuted, s, probs=probs).shape == (4, 4)  # K from probs
    np.testing.assert_array_equal(moe_token_unpermute_with_ep(permuted, s), permuted[s])  # K = 1, no probs


def test_fallback_without_range_skips_dropped_rows(rng):
    """range None: start 0, end = rows of permuted_tokens (MoeTokenUnpermute after num_out_tokens)."""
    t, k = 10, 2
    s = rng.permutation(t * k).astype(np.int32)
    permuted = rng.standard_normal((7, 5)).astype(np.float16)
    probs = rng.random((t, k)).astype(np.float32)
    got = run_both(permuted, s, probs=probs)
    dropped = np.all(s.reshape(t, k) >= 7, axis=1)
    assert np.all(got[dropped] == 0)


@pytest.mark.parametrize("window", [[0, 0], [5, 5], [6, 2]])
def test_empty_explicit_window_gives_zeros(rng, window):
    s = rng.permutation(8).astype(np.int32)
    out = run_both(np.ones((8, 3), np.float32), s, num_topk=2, range=window)
    assert np.all(out == 0)


def test_zero_probs_are_skipped(rng):
    """A pair with prob 0 is never read: NaN rows behind it do not poison the sum (vllm-ascend relies on it)."""
    t, k, h = 16, 4, 8
    s = rng.permutation(t * k).astype(np.int32)
    permuted = rng.standard_normal((t * k, h)).astype(np.float32)
    probs = rng.random((t, k)).astype(np.float32)
    probs[rng.random((t, k)) < 0.4] = 0
    permuted[s.reshape(t, k)[probs == 0]] = np.nan
    got = run_both(permuted, s, probs=probs)
    assert np.all(np.isfinite(got))


def test_accumulates_in_fp32_then_rounds_once():
    # bf16 1 + 2^-8 + 2^-8: rounding after every add stays at 1.0 (ties to even), fp32 accumulation reaches
    # 1 + 2^-7, which bf16 represents
    permuted = np.array([[1.0], [2.0 ** -8], [2.0 ** -8]], np.float32).astype(bfloat16)
    out = moe_token_unpermute_with_ep(permuted, np.arange(3, dtype=np.int32), num_topk=3)
    assert float(out[0, 0]) == 1 + 2.0 ** -7


# ---------------------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_permute_unpermute_round_trip(rng, dtype):
    t, k, h, e = 48, 4, 64, 12
    tokens = rng.standard_normal((t, h)).astype(dtype)
    indices = rng.integers(0, e, (t, k)).astype(np.int32)
    probs = rng.random((t, k)).astype(np.float32)
    permuted, sorted_indices, _ = moe_token_permute_with_ep(tokens, indices)
    out = moe_token_unpermute_with_ep(permuted, sorted_indices, probs=probs)
    want = (tokens.astype(np.float32) * probs.sum(1, keepdims=True)).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 2e-2
    np.testing.assert_allclose(out.astype(np.float32), want.astype(np.float32), rtol=tol, atol=tol)
    ones = moe_token_unpermute_with_ep(permuted, sorted_indices, num_topk=k)  # no probs: sum of k copies
    np.testing.assert_allclose(ones.astype(np.float32), (tokens.astype(np.float32) * k), rtol=tol, atol=tol)


def test_ep_ranks_sum_to_the_full_unpermute(rng):
    """Each rank permutes its window, unpermutes its rows; the ranks' partial sums add up to the whole."""
    t, k, h, e, ranks = 40, 4, 32, 16, 4
    tokens = rng.standard_normal((t, h)).astype(np.float32)
    indices = rng.integers(0, e, (t, k)).astype(np.int64)
    probs = rng.random((t, k)).astype(np.float32)
    bounds = np.linspace(0, t * k, ranks + 1).astype(int)
    total = np.zeros((t, h), np.float32)
    for a, b in zip(bounds[:-1], bounds[1:]):
        window = [int(a), int(b)]
        rows, s, pp = moe_token_permute_with_ep(tokens, indices, probs=probs, range=window)
        assert rows.shape[0] == b - a
        total += moe_token_unpermute_with_ep(rows, s, probs=probs, range=window)
    np.testing.assert_allclose(total, tokens * probs.sum(1, keepdims=True), rtol=1e-5, atol=1e-5)


def test_non_contiguous_inputs(rng):
    t, k, h = 12, 3, 10
    s = rng.permutation(t * k).astype(np.int32)
    permuted = rng.standard_normal((t * k, 3 * h)).astype(np.float16)[:, ::3]
    probs = rng.random((k, t)).astype(bfloat16).T
    s_strided = np.stack([s, s]).T.copy()[:, 0]
    assert not permuted.flags.c_contiguous and not probs.flags.c_contiguous and not s_strided.flags.c_contiguous
    run_both(permuted, s_strided, probs=probs, range=[2, 30])


def test_restore_shape(rng):
    s = rng.permutation(8).astype(np.int32)
    permuted = rng.standard_normal((8, 3)).astype(np.float32)
    run_both(permuted, s, num_topk=2, restore_shape=[4, 3])
    with pytest.raises(AclnnError) as e:
        moe_token_unpermute_with_ep(permuted, s, num_topk=2, restore_shape=[8, 3])
    assert e.value.status == lib.ACLNN_ERR_INNER_TILING_ERROR


def test_empty():
    out = moe_token_unpermute_with_ep(np.zeros((0, 4), np.float32), np.zeros(0, np.int32), num_topk=2)
    assert out.shape == (0, 4)


# ---------------------------------------------------------------------------------------------- data checks
def test_negative_index_is_an_error(rng):
    s = rng.permutation(8).astype(np.int32)
    s[5] = -3
    with pytest.raises(AclnnError) as e:
        moe_token_unpermute_with_ep(np.ones((8, 2), np.float32), s, num_topk=2)
    assert e.value.status == lib.ACLNN_ERR_PARAM_INVALID and "sortedIndices[5] = -3" in e.value.c_message


def test_row_outside_permuted_tokens_is_an_error(rng):
    s = np.arange(8, dtype=np.int32)
    with pytest.raises(AclnnError) as e:  # window [0, 8) but only 6 rows: rows 6, 7 would be read
        moe_token_unpermute_with_ep(np.ones((6, 2), np.float32), s, num_topk=2, range=[0, 8])
    assert e.value.status == lib.ACLNN_ERR_PARAM_INVALID and "sortedIndices[6] = 6" in e.value.c_message
    probs = np.ones((4, 2), np.float32)
    probs[3] = 0  # the same rows behind zero probs are never read: no error
    out = moe_token_unpermute_with_ep(np.ones((6, 2), np.float32), s, probs=probs, range=[0, 8])
    np.testing.assert_array_equal(out, [[2, 2], [2, 2], [2, 2], [0, 0]])


# ---------------------------------------------------------------------------------------------- status codes
def _args(t=4, k=2, h=3, rows=None, probs=True, window=(1, 5), dtype=np.float32):
    rows = (window[1] - window[0]) if rows is None else rows
    return dict(permuted=np.ones((rows, h), dtype), sorted=np.arange(t * k, dtype=np.int32),
                probs=np.ones((t, k), dtype) if probs else None, topk=k, range=list(window) if window else None,
                padded=False, restore=None, out=np.zeros((t, h), dtype))


def _status(ws_status, a):
    return ws_status(API, a["permuted"], a["sorted"], a["probs"], a["topk"], a["range"], a["padded"], a["restore"],
                     a["out"])


def test_valid_arguments_pass(ws_status):
    assert _status(ws_status, _args()) == (0, "")
    assert _status(ws_status, _args(probs=False, window=None, rows=8))[0] == 0
    a = _args()
    a["probs"] = np.ones((4, 2), np.float16)  # probs may differ in dtype from the tokens
    assert _status(ws_status, a)[0] == 0
    a = _args()
    a["restore"] = [4, 3]
    assert _status(ws_status, a)[0] == 0


@pytest.mark.parametrize("field,value", [  # the output (inputs outside their dtypes: test_contract.py)
    ("out", np.zeros((4, 3), np.float16)),
])
def test_dtype_161002(ws_status, field, value):
    a = _args()
    a[field] = value
    assert _status(ws_status, a)[0] == lib.ACLNN_ERR_PARAM_INVALID


@pytest.mark.parametrize("change", [
    dict(topk=0),
    dict(topk=-1),
    dict(topk=3),                                   # != probs dim 1
    dict(padded=True),
    dict(range=[1, 2, 3]),
    dict(permuted=np.ones((4, 3, 1), np.float32)),
    dict(permuted=np.ones(4, np.float32)),
    dict(sorted=np.arange(8, dtype=np.int32).reshape(4, 2)),
    dict(sorted=np.arange(6, dtype=np.int32)),       # != probs dim 0 * dim 1
    dict(probs=np.ones(8, np.float32)),
    dict(probs=np.ones((4, 2, 1), np.float32)),
    dict(restore=[4, 4]),
    dict(restore=[4, 3, 1]),
    dict(out=np.zeros((3, 3), np.float32)),
    dict(out=np.zeros((4, 2), np.float32)),
    dict(out=np.zeros(12, np.float32)),
])
def test_shape_and_attribute_rules_561002(ws_status, change):
    a = _args()
    a.update(change)
    status, msg = _status(ws_status, a)
    assert status == lib.ACLNN_ERR_INNER_TILING_ERROR, msg
    assert API in msg


def test_topk_limits_561002(ws_status):
    a = _args(t=1, k=513, probs=False, window=None, rows=513)
    assert _status(ws_status, a)[0] == lib.ACLNN_ERR_INNER_TILING_ERROR
    a = _args(t=1, k=512, probs=False, window=None, rows=512)
    assert _status(ws_status, a)[0] == 0
    a = _args(t=3, k=2, probs=False, window=None, rows=6)
    a["sorted"] = np.arange(7, dtype=np.int32)  # 7 is not a multiple of num_topk 2
    assert _status(ws_status, a)[0] == lib.ACLNN_ERR_INNER_TILING_ERROR


def test_facade_rejects_bad_dtypes_early():
    with pytest.raises(ArgumentError):
        moe_token_unpermute_with_ep(np.ones((2, 2), np.float32), np.arange(2, dtype=np.int64))
