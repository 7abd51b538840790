"""MoeComputeExpertTokens: host runtime vs the numpy reference (the official binary-search golden), every
validation rule, out-of-range values, strides, plans."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aclnn_moe import AclnnError, ArgumentError
from aclnn_moe._errors import recent_message
from aclnn_moe.capi import ffi, lib
from aclnn_moe.ops.compute_expert_tokens import moe_compute_expert_tokens
from aclnn_moe.reference import moe_compute_expert_tokens as ref

API = "aclnnMoeComputeExpertTokens"


def check(src, num_expert):
    got = moe_compute_expert_tokens(src, num_expert)
    want = ref(src, num_expert)
    assert got.dtype == np.int32 and got.shape == (num_expert,)
    np.testing.assert_array_equal(got, want)
    return got


def test_official_example():
    np.testing.assert_array_equal(check(np.array([0, 0, 1, 1, 2, 2], np.int32), 3), [2, 4, 6])


def test_torch_doc_example():
    np.testing.assert_array_equal(check(np.array([0, 0, 0, 1, 1, 2], np.int32), 3), [3, 5, 6])


def test_absent_experts_repeat_the_previous_end():
    np.testing.assert_array_equal(check(np.array([1, 1, 4, 4, 4], np.int32), 7), [0, 2, 2, 2, 5, 5, 5])
    np.testing.assert_array_equal(check(np.array([], np.int32), 4), [0, 0, 0, 0])


def test_value_equal_to_num_expert_is_ignored():
    """The official torch test draws values in [0, num_expert] inclusive and compares with the golden."""
    src = np.array([0, 1, 1, 3, 3, 3], np.int32)
    np.testing.assert_array_equal(check(src, 3), [1, 3, 3])


@pytest.mark.parametrize("m,num_expert", [
    (1, 1), (302, 31), (4096, 256), (65536, 8), (200_000, 2048), (1 << 20, 160), (1000, 2048)])
def test_shapes(rng, m, num_expert):
    src = np.sort(rng.integers(0, num_expert, m)).astype(np.int32)
    check(src, num_expert)


def test_official_test_distribution(rng):
    """OPP test_npu_moe_compute_tokens: length 302, num_expert 31, values randint(0, num_expert) inclusive."""
    for _ in range(5):
        src = np.sort(rng.integers(0, 32, 302)).astype(np.int32)
        check(src, 31)


def test_limit_2_pow_24_rows():
    """M == 2^24 is accepted (the tiling rejects only M > 2^24); multithreaded histogram."""
    m = 1 << 24
    src = np.repeat(np.arange(256, dtype=np.int32), m // 256)
    got = check(src, 256)
    assert got[-1] == m


def test_non_contiguous_input(rng):
    big = np.sort(rng.integers(0, 64, 300_000)).astype(np.int32)
    check(big[::3], 64)
    check(big[1000:2000:7], 64)
    two_d = np.sort(rng.integers(0, 16, (50, 4)), axis=0).astype(np.int32)
    check(two_d[:, 2], 16)  # a column: stride 4


def test_strided_output(rng, device_view, two_phase):
    src = np.sort(rng.integers(0, 10, 100)).astype(np.int32)
    st_, _ = device_view(src, (100,), (1,), 0)
    out_base = np.full(25, -5, np.int32)
    ot, obuf = device_view(out_base, (10,), (2,), 3)  # elements 3, 5, ..., 21
    assert two_phase("aclnnMoeComputeExpertTokens", st_, 10, ot) == 0, recent_message()
    got = obuf.download(out_base.copy())
    np.testing.assert_array_equal(got[3:23:2], ref(src, 10))
    mask = np.ones(25, bool)
    mask[3:23:2] = False
    assert (got[mask] == -5).all()  # nothing written outside the view


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 2048), st.integers(0, 3000), st.integers(0, 2**32 - 1), st.booleans())
def test_property_matches_reference(num_expert, m, seed, with_sentinel):
    rng = np.random.default_rng(seed)
    hi = num_expert + 1 if with_sentinel else num_expert  # values == num_expert are ignored
    src = np.sort(rng.integers(0, hi, m)).astype(np.int32)
    got = check(src, num_expert)
    # independent invariants: non-decreasing, ends at the number of in-range rows, counts per expert
    assert (np.diff(got) >= 0).all()
    assert got[-1] == int((src < num_expert).sum())
    np.testing.assert_array_equal(np.diff(np.r_[0, got]), np.bincount(src, minlength=num_expert + 1)[:num_expert])


# ---------------------------------------------------------------------------------------------------- errors
def test_null_workspace_size_and_executor(device_view):
    src, out = np.zeros(6, np.int32), np.zeros(3, np.int32)
    st_, _ = device_view(src, (6,), (1,), 0)
    ot, _ = device_view(out, (3,), (1,), 0)
    assert lib.aclnnMoeComputeExpertTokensGetWorkspaceSize(st_, 3, ot, ffi.NULL,
                                                           ffi.new("aclOpExecutor **")) == lib.ACLNN_ERR_PARAM_NULLPTR
    assert lib.aclnnMoeComputeExpertTokensGetWorkspaceSize(st_, 3, ot, ffi.new("uint64_t *"),
                                                           ffi.NULL) == lib.ACLNN_ERR_PARAM_NULLPTR


# int64 / float sortedExperts: test_contract.py; int16 (not among its candidates) and the output's dtype here
@pytest.mark.parametrize("src_dtype,out_dtype", [(np.int16, np.int32), (np.int32, np.int64), (np.int32, np.float32)])
def test_dtype_rules(ws_status, src_dtype, out_dtype):
    status, msg = ws_status(API, np.zeros(6, src_dtype), 3, np.zeros(3, out_dtype))
    assert status == lib.ACLNN_ERR_PARAM_INVALID, msg
    assert msg.startswith(API)


def test_format_rule(device_view, two_phase):
    st_, _ = device_view(np.zeros(6, np.int32), (6,), (1,), 0, fmt=lib.ACL_FORMAT_FRACTAL_NZ)
    ot, _ = device_view(np.zeros(3, np.int32), (3,), (1,), 0)
    assert two_phase("aclnnMoeComputeExpertTokens", st_, 3, ot) == lib.ACLNN_ERR_PARAM_INVALID


@pytest.mark.parametrize("name,src_shape,num_expert,out_shape", [
    ("src_2d", (2, 3), 3, (3,)),
    ("src_0d", (), 3, (3,)),
    ("out_2d", (6,), 3, (3, 1)),
    ("out_size", (6,), 3, (4,)),
    ("num_expert_zero", (6,), 0, (1,)),
    ("num_expert_negative", (6,), -3, (3,)),
    ("num_expert_2049", (6,), 2049, (2049,)),
])
def test_shape_rules(ws_status, name, src_shape, num_expert, out_shape):
    status, msg = ws_status(API, np.zeros(src_shape, np.int32), num_expert, np.zeros(out_shape, np.int32))
    assert status == lib.ACLNN_ERR_INNER_TILING_ERROR, f"{name}: {status} {msg}"
    assert msg.startswith(API)


def test_more_than_2_pow_24_rows(ws_status):
    status, msg = ws_status(API, np.zeros((1 << 24) + 1, np.int32), 8, np.zeros(8, np.int32))
    assert status == lib.ACLNN_ERR_INNER_TILING_ERROR and "2^24" in msg


def test_num_expert_2048_passes(ws_status):
    out = np.zeros(2048, np.int32)
    status, msg = ws_status(API, np.array([0, 5, 2047], np.int32), 2048, out, run=True)
    assert status == 0, msg
    assert out[0] == 1 and out[4] == 1 and out[5] == 2 and out[2046] == 2 and out[2047] == 3


@pytest.mark.parametrize("m", [10, 300_000])
@pytest.mark.parametrize("bad", [-1, -(1 << 31)])
@pytest.mark.parametrize("where", ["sorted", "first probe"])
def test_negative_values_are_rejected(m, bad, where, device_view, two_phase):
    """A negative expert id would make the NPU write before its output: the host runtime refuses it, names a
    position and value, and leaves the output untouched. Sorted input has its negatives first (position 0 is
    named); an unsorted one is caught where a search reads a negative id (the golden's first midpoint here)."""
    src = np.sort(np.random.default_rng(m).integers(0, 3, m)).astype(np.int32)
    if where == "sorted":
        src[: m // 3] = bad
        pos = 0
    else:
        pos = (m - 1) // 2
        src[pos] = bad
    st_, _ = device_view(src, (m,), (1,), 0)
    out = np.full(3, -9, np.int32)
    ot, obuf = device_view(out, (3,), (1,), 0)
    assert two_phase("aclnnMoeComputeExpertTokens", st_, 3, ot) == lib.ACLNN_ERR_PARAM_INVALID
    msg = recent_message()
    assert f"sortedExperts[{pos}] = {bad}" in msg, msg
    assert (obuf.download(out.copy()) == -9).all()
    with pytest.raises(AclnnError) as e:
        moe_compute_expert_tokens(src, 3)
    assert e.value.status == lib.ACLNN_ERR_PARAM_INVALID


def test_searches_equal_the_golden_on_any_input():
    """Every expert's result is the golden's own binary search, also on unsorted ids (which break the contract:
    the golden defines the answer there) and on every row count from 0 up (the lockstep step count)."""
    rng = np.random.default_rng(7)
    for m in list(range(0, 70)) + [127, 128, 129, 1000, 4097]:
        for sort in (True, False):
            src = rng.integers(0, 9, m).astype(np.int32)
            if sort:
                src.sort()
            for ne in (1, 8, 63, 64, 65, 130):
                np.testing.assert_array_equal(moe_compute_expert_tokens(src, ne), ref(src, ne),
                                              err_msg=f"m={m} sorted={sort} num_expert={ne}")


@pytest.mark.parametrize("m", [10, 300_000])
@pytest.mark.parametrize("big", [4, 7, 1 << 30])
def test_ids_beyond_the_last_expert_belong_to_no_expert(m, big):
    """Ids >= num_expert are ignored, as the official golden's binary search does; the torch_npu doc's own
    example passes [3, 3, 4, 5, 6, 7] with num_expert 5."""
    src = np.sort(np.random.default_rng(m).integers(0, 3, m)).astype(np.int32)
    src[-(m // 3):] = big
    got = moe_compute_expert_tokens(src, 3)
    np.testing.assert_array_equal(got, ref(src, 3))
    np.testing.assert_array_equal(moe_compute_expert_tokens(np.array([3, 3, 4, 5, 6, 7], np.int32), 5),
                                  [0, 0, 0, 2, 3])


def test_facade_argument_errors():
    with pytest.raises(ArgumentError, match="num_expert"):
        moe_compute_expert_tokens(np.zeros(4, np.int32), 0)
    with pytest.raises(ArgumentError, match="num_expert"):
        moe_compute_expert_tokens(np.zeros(4, np.int32), 2049)
    with pytest.raises(ArgumentError):
        moe_compute_expert_tokens(np.zeros(4, np.int64), 3)
    with pytest.raises(ArgumentError):
        moe_compute_expert_tokens(np.zeros((2, 2), np.int32), 3)
