"""MoeReRouting: host runtime vs the numpy reference (all dtype pairs, empty and skewed routing, strides, plans),
every validation rule with its status code, and the data checks (negative counts, counts not summing to A)."""
from __future__ import annotations

import numpy as np
import pytest

from aclnn_moe import AclnnError, ArgumentError
from aclnn_moe._dtypes import bfloat16
from aclnn_moe.capi import lib
from aclnn_moe.ops._compare import assert_same
from aclnn_moe.ops.re_routing import moe_re_routing
from aclnn_moe.reference.re_routing import moe_re_routing as ref

API = "aclnnMoeReRouting"
TOKEN_DTYPES = [np.dtype(np.int8), np.dtype(np.float16), bfloat16]
COUNT_DTYPES = [np.dtype(np.int32), np.dtype(np.int64)]


# ---------------------------------------------------------------------------------------------------- helpers
def make_tokens(rng, a, h, dtype):
    if np.dtype(dtype) == np.int8:
        return rng.integers(-128, 128, (a, h), dtype=np.int8)
    return rng.standard_normal((a, h)).astype(dtype)


def random_counts(rng, n, e, a, dtype=np.int32):
    """[n, e] non-negative counts summing to a."""
    cuts = np.sort(rng.integers(0, a + 1, n * e - 1))
    return np.diff(np.concatenate([[0], cuts, [a]])).reshape(n, e).astype(dtype)


def check(tokens, counts, scales=None):
    got = moe_re_routing(tokens, counts, per_token_scales=scales)
    want = ref(tokens, counts, per_token_scales=scales)
    names = ("permute_tokens", "permute_per_token_scales", "permute_token_idx", "expert_token_num")
    for name, g, w in zip(names, got, want):
        assert_same(g, w, name)
    # the gather-index property, independently of the reference
    np.testing.assert_array_equal(np.asarray(got[0]).view(np.uint8),
                                  np.asarray(tokens)[got[2]].view(np.uint8))
    return got


def raw_args(a=6, h=4, n=2, e=3, *, tdt=np.int8, cdt=np.int32, scales=True):
    """Valid arguments for the raw C call (counts summing to a)."""
    tokens = np.zeros((a, h), tdt)
    counts = np.zeros((n, e), cdt)
    counts.flat[0] = a
    sc = np.zeros(a, np.float32) if scales else None
    return [tokens, counts, sc, 1, 0, np.zeros((a, h), tdt), np.zeros(a, np.float32), np.zeros(a, np.int32),
            np.zeros(e, cdt)]


# ---------------------------------------------------------------------------------------------------- values
@pytest.mark.parametrize("tdt", TOKEN_DTYPES, ids=str)
@pytest.mark.parametrize("cdt", COUNT_DTYPES, ids=str)
@pytest.mark.parametrize("with_scales", [True, False])
def test_matches_reference(rng, tdt, cdt, with_scales):
    for a, h, n, e in ((1, 1, 1, 1), (40, 7, 2, 4), (300, 96, 4, 8), (1024, 7168, 16, 16), (77, 33, 3, 1)):
        tokens = make_tokens(rng, a, h, tdt)
        counts = random_counts(rng, n, e, a, cdt)
        check(tokens, counts, rng.standard_normal(a).astype(np.float32) if with_scales else None)


def test_small_known_answer():
    # rank 0 sends 1 token to expert 0 and 2 to expert 1; rank 1 sends 2 to expert 0 and 1 to expert 1
    tokens = np.arange(6, dtype=np.int8).reshape(6, 1)
    counts = np.array([[1, 2], [2, 1]], np.int32)
    scales = np.arange(6, dtype=np.float32) / 10
    t, s, idx, num = moe_re_routing(tokens, counts, per_token_scales=scales)
    np.testing.assert_array_equal(idx, [0, 3, 4, 1, 2, 5])  # expert 0: r0 row 0, r1 rows 3,4; expert 1: ...
    np.testing.assert_array_equal(t[:, 0], [0, 3, 4, 1, 2, 5])
    np.testing.assert_array_equal(s, scales[[0, 3, 4, 1, 2, 5]])
    np.testing.assert_array_equal(num, [3, 3])
    assert num.dtype == np.int32


def test_empty_experts_and_ranks(rng):
    tokens = make_tokens(rng, 50, 16, np.float16)
    counts = random_counts(rng, 4, 6, 50)
    counts[:, [0, 3, 5]] = 0          # experts that receive nothing
    counts[2, :] = 0                  # a rank that sends nothing
    counts[0, 1] += 50 - counts.sum()  # keep the sum
    got = check(tokens, counts)
    assert list(got[3][[0, 3, 5]]) == [0, 0, 0]


def test_skewed_all_tokens_one_block(rng):
    tokens = make_tokens(rng, 2000, 64, bfloat16)
    counts = np.zeros((8, 8), np.int64)
    counts[5, 7] = 2000
    got = check(tokens, counts, rng.random(2000, dtype=np.float32))
    np.testing.assert_array_equal(got[2], np.arange(2000))
    assert got[3].dtype == np.int64 and got[3][7] == 2000


def test_zero_tokens(rng):
    got = check(np.zeros((0, 8), np.int8), np.zeros((3, 4), np.int32), np.zeros(0, np.float32))
    assert got[0].shape == (0, 8) and got[3].tolist() == [0, 0, 0, 0]


def test_int8_with_scales_moves_scales_with_tokens(rng):
    tokens = make_tokens(rng, 500, 128, np.int8)
    counts = random_counts(rng, 4, 8, 500, np.int64)
    scales = rng.random(500, dtype=np.float32) + 0.5
    t, s, idx, _ = check(tokens, counts, scales)
    np.testing.assert_array_equal(s, scales[idx])


def test_scales_output_zero_filled_without_scales(rng):
    _, s, _, _ = moe_re_routing(make_tokens(rng, 20, 4, np.int8), random_counts(rng, 2, 2, 20))
    assert s.dtype == np.float32 and s.shape == (20,) and not s.any()


def test_hidden_size_limit_is_inclusive(rng):
    check(make_tokens(rng, 3, 16384, np.int8), np.array([[1, 2]], np.int32))


def test_non_contiguous_inputs(rng):
    a, h = 120, 40
    wide = make_tokens(rng, a, 2 * h, np.float16)
    tokens = wide[:, ::2]                                    # column stride 2
    counts = random_counts(rng, 5, 3, a).T.copy().T          # transposed storage: [N, E] with strides (1, N)
    assert not counts.flags.c_contiguous
    scales = rng.random(2 * a, dtype=np.float32)[::2]        # stride 2
    check(tokens, counts, scales)
    check(np.ascontiguousarray(tokens[::-1])[::3], random_counts(rng, 2, 2, 40))


# ---------------------------------------------------------------------------------------------------- data checks
def test_counts_not_summing_to_a(rng):
    tokens = make_tokens(rng, 10, 4, np.int8)
    with pytest.raises(AclnnError) as ei:
        moe_re_routing(tokens, np.array([[3, 3], [3, 0]], np.int32))
    assert ei.value.status == lib.ACLNN_ERR_PARAM_INVALID and "9" in ei.value.message and "10" in ei.value.message
    with pytest.raises(AclnnError) as ei:   # more rows than exist: would read past the end
        moe_re_routing(tokens, np.array([[3, 3], [3, 5]], np.int32))
    assert ei.value.status == lib.ACLNN_ERR_PARAM_INVALID and "14" in ei.value.message


def test_negative_count(rng):
    with pytest.raises(AclnnError) as ei:
        moe_re_routing(make_tokens(rng, 4, 4, np.int8), np.array([[5, -1]], np.int64))
    assert ei.value.status == lib.ACLNN_ERR_PARAM_INVALID and "[0, 1]" in ei.value.message and "-1" in ei.value.message


def test_huge_counts_do_not_overflow(rng):
    big = np.array([[2**62, 2**62, 2**62, 4]], np.int64)
    with pytest.raises(AclnnError) as ei:
        moe_re_routing(make_tokens(rng, 4, 4, np.int8), big)
    assert ei.value.status == lib.ACLNN_ERR_PARAM_INVALID


# ---------------------------------------------------------------------------------------------------- rules
def test_valid_raw_call(ws_status):
    assert ws_status(API, *raw_args(), run=True) == (0, "")
    assert ws_status(API, *raw_args(scales=False), run=True) == (0, "")


# fp32 tokens, fp16 scales (inputs outside their dtypes): test_contract.py; int16 counts (not among its
# candidates) and the output rules here
@pytest.mark.parametrize("i, bad", [
    (1, np.array([[6, 0, 0], [0, 0, 0]], np.int16)),  # counts int16
    (5, np.zeros((6, 4), np.float16)),          # permute_tokens dtype != tokens
    (6, np.zeros(6, np.float16)),               # permute scales not fp32
    (7, np.zeros(6, np.int64)),                 # idx not int32
    (8, np.zeros(3, np.int64)),                 # expert_token_num dtype != counts
])
def test_dtype_rules(ws_status, i, bad):
    args = raw_args()
    args[i] = bad
    status, msg = ws_status(API, *args)
    assert status == lib.ACLNN_ERR_PARAM_INVALID, msg


@pytest.mark.parametrize("i, bad", [
    (0, np.zeros(24, np.int8)),                 # tokens 1-D
    (0, np.zeros((6, 4, 1), np.int8)),          # tokens 3-D
    (1, np.array([6, 0, 0], np.int32)),         # counts 1-D
    (2, np.zeros((6, 1), np.float32)),          # scales 2-D
    (2, np.zeros(5, np.float32)),               # scales
    (5, np.zeros((6, 5), np.int8)),             # permute_tokens shape
    (6, np.zeros(7, np.float32)),               # permute scales shape
    (7, np.zeros(5, np.int32)),                 # idx shape
    (8, np.zeros(4, np.int32)),                 # expert_token_num shape != [E]
])
def test_shape_rules(ws_status, i, bad):
    args = raw_args()
    args[i] = bad
    status, msg = ws_status(API, *args)
    assert status == lib.ACLNN_ERR_INNER_TILING_ERROR, msg


def test_attribute_rules(rng):
    tokens, counts = make_tokens(rng, 6, 4, np.int8), np.array([[6]], np.int32)
    with pytest.raises(AclnnError) as ei:
        moe_re_routing(tokens, counts, expert_token_num_type=0)
    assert ei.value.status == lib.ACLNN_ERR_INNER_TILING_ERROR
    assert "expert_token_num_type" in ei.value.message and "expertTokenNumType" in ei.value.c_message
    with pytest.raises(AclnnError) as ei:
        moe_re_routing(tokens, counts, idx_type=1)
    assert ei.value.status == lib.ACLNN_ERR_INNER_TILING_ERROR
    assert "idx_type" in ei.value.message and "idxType" in ei.value.c_message
    with pytest.raises(AclnnError) as ei:
        moe_re_routing(make_tokens(rng, 2, 16385, np.int8), np.array([[2]], np.int32))
    assert ei.value.status == lib.ACLNN_ERR_INNER_TILING_ERROR and "16384" in ei.value.message


def test_facade_argument_errors(rng):
    with pytest.raises(ArgumentError) as ei:
        moe_re_routing(np.zeros((4, 4), np.float32), np.array([[4]], np.int32))
    assert ei.value.param == "tokens"
    with pytest.raises(ArgumentError) as ei:
        moe_re_routing(np.zeros((4, 4), np.int8), np.array([4], np.int32))
    assert ei.value.param == "expert_token_num_per_rank"
    with pytest.raises(ArgumentError) as ei:
        moe_re_routing(np.zeros((4, 4), np.int8), np.array([[4]], np.int32), per_token_scales=np.zeros(4))
    assert ei.value.param == "per_token_scales"
