"""MoeGatingTopK: host runtime vs the numpy reference, every validation rule, ties, strides, plans."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aclnn_moe import AclnnError, ArgumentError
from aclnn_moe._dtypes import bfloat16
from aclnn_moe._errors import recent_message
from aclnn_moe.capi import ffi, lib
from aclnn_moe.ops.gating_top_k import moe_gating_top_k
from aclnn_moe.reference import moe_gating_top_k as ref

API = "aclnnMoeGatingTopK"
DTYPES = [np.dtype(np.float32), np.dtype(np.float16), bfloat16]


# ---------------------------------------------------------------------------------------------------- helpers
def _ordered_bits(a):
    """Integers whose order and spacing are those of the floats' representable values (1 apart = 1 ulp)."""
    bits = a.view(np.uint16).astype(np.int64) if a.dtype.itemsize == 2 else a.view(np.uint32).astype(np.int64)
    sign = 1 << (8 * a.dtype.itemsize - 1)
    return np.where(bits & sign, -(bits & (sign - 1)), bits)


def assert_matches(got, want, x_dtype):
    y, idx, norm = got
    y_ref, idx_ref, norm_ref = want
    assert y.dtype == x_dtype and idx.dtype == np.int32
    assert y.shape == y_ref.shape and idx.shape == idx_ref.shape
    np.testing.assert_array_equal(idx, idx_ref)
    if x_dtype == np.float32:
        np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-30)
    else:  # fp16 / bf16: within one ulp of the reference rounded to nearest even from fp32
        ulps = np.abs(_ordered_bits(y) - _ordered_bits(y_ref))
        assert ulps.max(initial=0) <= 1, f"y differs by {ulps.max()} ulp"
    if norm_ref is None:
        assert norm is None
    else:
        assert norm.dtype == np.float32 and norm.shape == norm_ref.shape
        np.testing.assert_allclose(norm, norm_ref, rtol=1e-5, atol=1e-30)


def run_both(x, k, **attrs):
    got = moe_gating_top_k(x, k, **attrs)
    want = ref(x, k, **attrs)
    assert_matches(got, want, x.dtype)
    return got


def separated(rng, rows, experts, dtype, span=8.0):
    """Logits that are a permutation of an evenly spaced grid per row (exact in fp16/bf16 for E <= 256): no two
    experts of a row score alike, so the ranking cannot hinge on a rounding difference."""
    base = np.stack([rng.permutation(experts) for _ in range(rows)]).astype(np.float64)
    return (base * (span / experts) - span / 2).astype(dtype)


def small_bias(rng, experts, dtype, scale=0.25):
    return (rng.permutation(experts) * (scale / experts)).astype(dtype)


# ---------------------------------------------------------------------------------------------------- numerics
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("rows", [1, 7, 64])
def test_deepseek_v3(rng, dtype, rows):
    """E=256, 8 groups, keep 4 by top-2 sum, k=8, sigmoid, bias, routed_scaling_factor 2.5 (the NPU's fast path)."""
    x = separated(rng, rows, 256, dtype)
    bias = small_bias(rng, 256, dtype)
    run_both(x, 8, bias=bias, k_group=4, group_count=8, group_select_mode=1, norm_type=1,
             routed_scaling_factor=2.5)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_deepseek_v3_random_logits(rng, dtype):
    x = rng.uniform(-2, 2, (300, 256)).astype(dtype)
    bias = rng.uniform(-2, 2, 256).astype(dtype)
    run_both(x, 8, bias=bias, k_group=4, group_count=8, group_select_mode=1, norm_type=1,
             routed_scaling_factor=2.5, out_flag=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_qwen3_softmax(rng, dtype):
    x = rng.standard_normal((128, 128)).astype(dtype)
    y, _, _ = run_both(x, 8, norm_type=0, out_flag=True)
    # softmax weights are NOT renormalised: they sum to less than 1
    assert np.all(y.astype(np.float32).sum(axis=1) < 1.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_mixtral(rng, dtype):
    x = rng.standard_normal((257, 8)).astype(dtype)
    run_both(x, 2)
    run_both(x, 2, norm_type=1)


@pytest.mark.parametrize("k", [1, 8, 33, 512, 2048])
def test_limit_2048_experts(rng, k):
    x = rng.standard_normal((9, 2048)).astype(np.float32)
    run_both(x, k, out_flag=True)
    run_both(x, k, norm_type=1, bias=rng.uniform(-0.1, 0.1, 2048).astype(np.float32))


def test_limit_2048_grouped(rng):
    """64 groups of 32 experts: align32(32) * 64 == 2048, the largest grouped layout."""
    x = rng.standard_normal((17, 2048)).astype(np.float32)
    bias = rng.uniform(-0.1, 0.1, 2048).astype(np.float32)
    for mode in (0, 1):
        run_both(x, 40, bias=bias, k_group=5, group_count=64, group_select_mode=mode, norm_type=1)
        run_both(x, 256, bias=bias, k_group=8, group_count=64, group_select_mode=mode, norm_type=0)


_GROUP_LAYOUTS = [  # experts, group_count, k_group, k
    (16, 4, 2, 3), (64, 8, 3, 24), (256, 8, 4, 8), (256, 16, 1, 16), (128, 2, 1, 64), (96, 3, 2, 5),
    (256, 8, 8, 20),   # k_group == group_count: grouping inactive
    (64, 64, 10, 10),  # group_count == E: grouping inactive (mode 0 only: mode 1 needs 2 experts per group)
    (64, 1, 1, 10),    # group_count 1
]


@pytest.mark.parametrize("norm_type", [0, 1])
@pytest.mark.parametrize("experts,group_count,k_group,k,mode", [
    layout + (mode,) for layout in _GROUP_LAYOUTS for mode in (0, 1) if mode == 0 or layout[0] // layout[1] >= 2])
def test_group_configurations(rng, mode, norm_type, experts, group_count, k_group, k):
    x = rng.standard_normal((33, experts)).astype(np.float32)
    bias = rng.uniform(-0.5, 0.5, experts).astype(np.float32)
    run_both(x, k, bias=bias, k_group=k_group, group_count=group_count, group_select_mode=mode,
             norm_type=norm_type, out_flag=True, routed_scaling_factor=1.5)
    run_both(x, k, k_group=k_group, group_count=group_count, group_select_mode=mode, norm_type=norm_type)


@pytest.mark.parametrize("norm_type", [0, 1])
@pytest.mark.parametrize("experts,k", [(2, 1), (5, 2), (8, 2), (8, 8), (15, 4), (16, 2), (17, 3), (24, 6), (31, 2),
                                       (32, 8), (33, 2), (40, 16)])
def test_few_experts(rng, norm_type, experts, k):
    """Rows shorter than a vector or with a partial one (the scores' masked tails) and few candidates (the scalar
    top-k): the same scores, order and ties as the reference; bf16 rows as Mixtral's (E = 8) are."""
    x = rng.standard_normal((37, experts)).astype(np.float32)
    x[3, :] = x[3, 0]  # a row of ties: ranked by index
    run_both(x, k, norm_type=norm_type, out_flag=True)
    run_both(separated(rng, 37, experts, bfloat16), k, norm_type=norm_type, bias=small_bias(rng, experts, bfloat16))


def test_group_mode_changes_the_selection():
    """A group with one strong expert beats one with two good experts under max (mode 0), loses under top-2 sum."""
    x = np.full((1, 8), -4.0, np.float32)
    x[0, 0] = 3.0           # group 0: one strong expert
    x[0, 4:6] = 2.0         # group 1: two good experts
    _, idx0, _ = run_both(x, 2, k_group=1, group_count=2, group_select_mode=0, norm_type=1)
    _, idx1, _ = run_both(x, 2, k_group=1, group_count=2, group_select_mode=1, norm_type=1)
    assert set(idx0[0]) <= {0, 1, 2, 3} and idx0[0, 0] == 0
    assert set(idx1[0]) == {4, 5}


def test_bias_steers_selection_only(rng):
    x = np.zeros((1, 8), np.float32)
    x[0, 2] = 1.0
    bias = np.zeros(8, np.float32)
    bias[6] = 10.0
    y, idx, norm = run_both(x, 2, bias=bias, norm_type=1, out_flag=True)
    assert list(idx[0]) == [6, 2]
    sig = 1 / (1 + np.exp(-np.array([0.0, 1.0])))
    np.testing.assert_allclose(y[0], sig / sig.sum(), rtol=1e-6)  # weights from the unbiased scores
    np.testing.assert_allclose(norm[0, 6], 0.5)                  # norm_out is pre-bias


def test_softmax_weights_and_renorm_flag(rng):
    x = rng.standard_normal((4, 32)).astype(np.float32)
    y, idx, norm = run_both(x, 4, out_flag=True, routed_scaling_factor=3.0)
    e = np.exp(x.astype(np.float64) - x.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    np.testing.assert_allclose(y, 3.0 * np.take_along_axis(p, idx, 1), rtol=1e-5)
    np.testing.assert_allclose(norm, p, rtol=1e-5)


def test_eps_and_scaling(rng):
    x = separated(rng, 3, 256, np.float32)
    bias = small_bias(rng, 256, np.float32)
    # the official example's eps=1 and the official test's routed_scaling_factor=0
    run_both(x, 8, bias=bias, k_group=4, group_count=8, group_select_mode=1, norm_type=1, eps=1.0)
    y, _, _ = run_both(x, 8, bias=bias, k_group=4, group_count=8, group_select_mode=1, norm_type=1,
                       routed_scaling_factor=0.0)
    assert not y.any()
    y, _, _ = run_both(x, 8, norm_type=1, routed_scaling_factor=-2.0)
    assert (y < 0).all()


# ---------------------------------------------------------------------------------------------------- ties
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_equal_logits_lower_index_wins(dtype):
    x = np.zeros((3, 64), dtype)
    _, idx, _ = run_both(x, 5)
    assert (idx == np.arange(5)).all()
    # grouped: every group scores alike -> the lowest k_group groups are kept
    _, idx, _ = run_both(x, 6, k_group=2, group_count=8, group_select_mode=1, norm_type=1)
    assert (idx == np.arange(6)).all()
    _, idx, _ = run_both(x, 12, k_group=2, group_count=8, group_select_mode=0, norm_type=1)
    assert (idx == np.arange(12)).all()


def test_partial_ties():
    x = np.array([[0.0, 1.0, 3.0, 1.0, 3.0, 2.0, 3.0, 0.0]], np.float32)
    _, idx, _ = run_both(x, 5, norm_type=1)
    assert list(idx[0]) == [2, 4, 6, 5, 1]
    # a tie created by the bias
    bias = np.array([0, 0, 0, 0, 0, 0, 0, 0], np.float32)
    x2 = np.array([[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0]], np.float32)
    bias[3] = 1.0 / (1 + np.exp(-5.0)) - 0.5  # sigmoid(0) + bias[3] == sigmoid(5) (up to rounding)
    run_both(x2, 3, bias=bias, norm_type=1)


def test_tied_groups_lower_group_wins():
    # groups 1 and 3 tie on the max; group 1 wins
    x = np.full((1, 16), -3.0, np.float32)
    x[0, 5] = 2.0
    x[0, 13] = 2.0
    _, idx, _ = run_both(x, 4, k_group=1, group_count=4, group_select_mode=0, norm_type=1)
    assert list(idx[0]) == [5, 4, 6, 7]


def test_nan_logit_ranks_last():
    x = np.array([[np.nan, 1.0, 2.0, 0.5]], np.float32)
    _, idx, _ = run_both(x, 3, norm_type=1)
    assert list(idx[0]) == [2, 1, 3]


def test_infinite_logits():
    x = np.array([[-np.inf, 1.0, -np.inf, 0.0], [5.0, -np.inf, 1.0, 2.0]], np.float32)
    run_both(x, 2, norm_type=0)
    run_both(x, 4, norm_type=1)


# ---------------------------------------------------------------------------------------------------- layouts
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_non_contiguous_inputs(rng, dtype):
    big = rng.standard_normal((40, 512)).astype(dtype)
    x_sliced = big[3:36:3, 1:513:2]            # row and column strides
    x_transposed = rng.standard_normal((256, 20)).astype(dtype).T  # column-major [20, 256]
    bias_big = rng.uniform(-0.2, 0.2, 800).astype(dtype)
    bias = bias_big[::3][:256]
    for x in (x_sliced, x_transposed):
        assert not x.flags.c_contiguous
        run_both(x, 8, bias=bias, k_group=4, group_count=8, group_select_mode=1, norm_type=1,
                 routed_scaling_factor=2.5, out_flag=True)
        run_both(x, 16, norm_type=0)


@pytest.mark.parametrize("out_flag", [False, True])
def test_strided_outputs_and_untouched_norm_out(rng, out_flag, device_view, two_phase):
    rows, experts, k = 6, 64, 4
    x = rng.standard_normal((rows, experts)).astype(np.float32)
    xt, _ = device_view(x.reshape(-1), (rows, experts), (experts, 1), 0)
    # y: every other column of a [rows, 2k+1] buffer, offset 1; idx: transposed [k, rows] storage
    y_base = np.full(rows * (2 * k + 1) + 1, -1.0, np.float32)
    yt, ybuf = device_view(y_base, (rows, k), (2 * k + 1, 2), 1)
    i_base = np.full(k * rows, -1, np.int32)
    it, ibuf = device_view(i_base, (rows, k), (1, rows), 0)
    o_base = np.full(rows * experts * 2, 7.0, np.float32)
    ot, obuf = device_view(o_base, (rows, experts), (2 * experts, 1), experts)
    assert two_phase("aclnnMoeGatingTopK", xt, ffi.NULL, k, 1, 1, 0, 0, 0, out_flag, 1.0, 1e-20, yt, it, ot) == 0, recent_message()
    y_dev, i_dev, o_dev = ybuf.download(y_base.copy()), ibuf.download(i_base.copy()), obuf.download(o_base.copy())
    y_ref, idx_ref, norm_ref = ref(x, k, out_flag=True)
    y_got = np.lib.stride_tricks.as_strided(y_dev[1:], (rows, k), ((2 * k + 1) * 4, 8))
    np.testing.assert_allclose(y_got, y_ref, rtol=1e-5)
    np.testing.assert_array_equal(i_dev.reshape(k, rows).T, idx_ref)
    untouched_y = np.ones(y_base.size, bool)
    untouched_y[1 + np.arange(rows)[:, None] * (2 * k + 1) + 2 * np.arange(k)] = False
    assert (y_dev[untouched_y] == -1.0).all()  # nothing written outside the view
    o2 = o_dev.reshape(rows, 2 * experts)
    assert (o2[:, :experts] == 7.0).all()
    if out_flag:
        np.testing.assert_allclose(o2[:, experts:], norm_ref, rtol=1e-5)
    else:  # out is left untouched when out_flag is false
        assert (o2 == 7.0).all()


def test_zero_rows():
    y, idx, norm = moe_gating_top_k(np.zeros((0, 16), np.float32), 4, out_flag=True)
    assert y.shape == (0, 4) and idx.shape == (0, 4) and norm.shape == (0, 16)


def test_multithreaded_large_batch(rng):
    x = rng.standard_normal((4099, 256)).astype(bfloat16)
    bias = rng.uniform(-0.1, 0.1, 256).astype(bfloat16)
    run_both(x, 8, bias=bias, k_group=4, group_count=8, group_select_mode=1, norm_type=1,
             routed_scaling_factor=2.5, out_flag=True)


# ---------------------------------------------------------------------------------------------------- properties
@st.composite
def gating_cases(draw):
    per = draw(st.sampled_from([1, 2, 3, 4, 8, 16, 32]))
    group_count = draw(st.sampled_from([1, 2, 3, 4, 8, 16]))
    experts = per * group_count
    k_group = draw(st.integers(1, group_count))
    mode = draw(st.integers(0, 1)) if per >= 2 else 0
    k = draw(st.integers(1, k_group * per))
    rows = draw(st.integers(0, 12))
    dtype = draw(st.sampled_from(DTYPES))
    norm_type = draw(st.integers(0, 1))
    with_bias = draw(st.booleans())
    out_flag = draw(st.booleans())
    rsf = draw(st.sampled_from([1.0, 2.5, 0.5]))
    seed = draw(st.integers(0, 2**32 - 1))
    return experts, group_count, k_group, mode, k, rows, dtype, norm_type, with_bias, out_flag, rsf, seed


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gating_cases())
def test_property_matches_reference(case):
    experts, group_count, k_group, mode, k, rows, dtype, norm_type, with_bias, out_flag, rsf, seed = case
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, (rows, experts)).astype(dtype)
    bias = rng.uniform(-0.5, 0.5, experts).astype(dtype) if with_bias else None
    y, idx, norm = run_both(x, k, bias=bias, k_group=k_group, group_count=group_count, group_select_mode=mode,
                            norm_type=norm_type, out_flag=out_flag, routed_scaling_factor=rsf)
    # invariants independent of the reference
    assert ((idx >= 0) & (idx < experts)).all()
    assert all(len(set(r)) == k for r in idx.tolist())
    if norm_type == 1 and rows:
        np.testing.assert_allclose(y.astype(np.float32).sum(1), rsf, rtol=2e-2)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 64), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_property_quantised_logits_ties(experts, levels, seed):
    """Logits drawn from a handful of values: many ties, all resolved to the lower index."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, levels, (5, experts)).astype(np.float32)
    k = int(rng.integers(1, experts + 1))
    _, idx, _ = run_both(x, k, norm_type=int(rng.integers(0, 2)))
    for row, sel in zip(x, idx):
        order = sorted(range(experts), key=lambda e: (-row[e], e))
        assert list(sel) == order[:k]


# ---------------------------------------------------------------------------------------------------- errors
def test_null_workspace_size_and_executor(device_view):
    x = np.zeros((4, 8), np.float32)
    xt, _ = device_view(x.reshape(-1), (4, 8), (8, 1), 0)
    yt, _ = device_view(np.zeros(8, np.float32), (4, 2), (2, 1), 0)
    it, _ = device_view(np.zeros(8, np.int32), (4, 2), (2, 1), 0)
    ot, _ = device_view(np.zeros(32, np.float32), (4, 8), (8, 1), 0)
    args = (xt, ffi.NULL, 2, 1, 1, 0, 0, 0, False, 1.0, 1e-20, yt, it, ot)
    null = lib.ACLNN_ERR_PARAM_NULLPTR
    assert lib.aclnnMoeGatingTopKGetWorkspaceSize(*args, ffi.NULL, ffi.new("aclOpExecutor **")) == null
    assert lib.aclnnMoeGatingTopKGetWorkspaceSize(*args, ffi.new("uint64_t *"), ffi.NULL) == null


# an input dtype outside the listed ones is tested for every operator by test_contract.py; these are the
# same-dtype and output rules
@pytest.mark.parametrize("what", ["bias_dtype", "y_dtype", "idx_dtype", "out_dtype"])
def test_dtype_rules(ws_status, what):
    x = np.zeros((4, 8), np.float32)
    bias = None
    y, idx, out = np.zeros((4, 2), np.float32), np.zeros((4, 2), np.int32), np.zeros((4, 8), np.float32)
    if what == "bias_dtype":
        bias = np.zeros(8, np.float16)
    elif what == "y_dtype":
        y = y.astype(np.float16)
    elif what == "idx_dtype":
        idx = idx.astype(np.int64)
    else:
        out = out.astype(np.float16)
    status, msg = ws_status(API, x, bias, 2, 1, 1, 0, 0, 0, False, 1.0, 1e-20, y, idx, out)
    assert status == lib.ACLNN_ERR_PARAM_INVALID, msg
    assert API in msg


def test_format_rule(device_view, two_phase):
    xt, _ = device_view(np.zeros(32, np.float32), (4, 8), (8, 1), 0, fmt=lib.ACL_FORMAT_FRACTAL_NZ)
    yt, _ = device_view(np.zeros(8, np.float32), (4, 2), (2, 1), 0)
    it, _ = device_view(np.zeros(8, np.int32), (4, 2), (2, 1), 0)
    ot, _ = device_view(np.zeros(32, np.float32), (4, 8), (8, 1), 0)
    assert two_phase("aclnnMoeGatingTopK", xt, ffi.NULL, 2, 1, 1, 0, 0, 0, False, 1.0, 1e-20, yt, it, ot) \
        == lib.ACLNN_ERR_PARAM_INVALID


# (name, x shape, bias shape or None, k, k_group, group_count, mode, renorm, norm_type, out_flag, y/idx/out shapes)
_F = np.float32
SHAPE_RULES = [
    ("x_3d", (2, 4, 8), None, 2, 1, 1, 0, 0, 0, False, None),
    ("x_1d", (8,), None, 2, 1, 1, 0, 0, 0, False, None),
    ("bias_2d", (4, 8), (1, 8), 2, 1, 1, 0, 0, 0, False, None),
    ("bias_len", (4, 8), (7,), 2, 1, 1, 0, 0, 0, False, None),
    ("k_gt_e", (4, 8), None, 9, 1, 1, 0, 0, 0, False, None),
    ("y_1d", (4, 8), None, 2, 1, 1, 0, 0, 0, False, ((8,), (4, 2), (4, 8))),
    ("y_rows", (4, 8), None, 2, 1, 1, 0, 0, 0, False, ((3, 2), (4, 2), (4, 8))),
    ("y_k", (4, 8), None, 2, 1, 1, 0, 0, 0, False, ((4, 3), (4, 2), (4, 8))),
    ("idx_rows", (4, 8), None, 2, 1, 1, 0, 0, 0, False, ((4, 2), (5, 2), (4, 8))),
    ("idx_k", (4, 8), None, 2, 1, 1, 0, 0, 0, False, ((4, 2), (4, 1), (4, 8))),
    ("idx_3d", (4, 8), None, 2, 1, 1, 0, 0, 0, False, ((4, 2), (4, 2, 1), (4, 8))),
    ("out_1d", (4, 8), None, 2, 1, 1, 0, 0, 0, False, ((4, 2), (4, 2), (32,))),
    ("out_shape_with_flag", (4, 8), None, 2, 1, 1, 0, 0, 0, True, ((4, 2), (4, 2), (4, 7))),
    ("out_rows_with_flag", (4, 8), None, 2, 1, 1, 0, 0, 0, True, ((4, 2), (4, 2), (3, 8))),
    ("e_gt_2048", (2, 2049), None, 2, 1, 1, 0, 0, 0, False, None),
    ("k_zero", (4, 8), None, 0, 1, 1, 0, 0, 0, False, None),
    ("k_negative", (4, 8), None, -1, 1, 1, 0, 0, 0, False, None),
    ("k_group_zero", (4, 8), None, 2, 0, 1, 0, 0, 0, False, None),
    ("k_group_gt_group_count", (4, 8), None, 2, 3, 2, 0, 0, 0, False, None),
    ("group_count_zero", (4, 8), None, 2, 0, 0, 0, 0, 0, False, None),
    ("group_count_negative", (4, 8), None, 2, -2, -1, 0, 0, 0, False, None),
    ("norm_type_2", (4, 8), None, 2, 1, 1, 0, 0, 2, False, None),
    ("norm_type_negative", (4, 8), None, 2, 1, 1, 0, 0, -1, False, None),
    ("mode_2", (4, 8), None, 2, 1, 1, 2, 0, 0, False, None),
    ("renorm_1", (4, 8), None, 2, 1, 1, 0, 1, 0, False, None),
    ("e_not_divisible", (4, 10), None, 2, 1, 4, 0, 0, 0, False, None),
    ("mode1_one_per_group", (4, 8), None, 2, 8, 8, 1, 0, 1, False, None),
    ("k_gt_kgroup_times_per", (4, 16), None, 5, 1, 4, 0, 0, 1, False, None),
    ("align32_when_grouped", (2, 2000), None, 8, 2, 80, 0, 0, 1, False, None),
]


@pytest.mark.parametrize("rule", SHAPE_RULES, ids=[r[0] for r in SHAPE_RULES])
def test_shape_and_attribute_rules(ws_status, rule):
    name, xs, bs, k, kg, gc, mode, renorm, nt, flag, outs = rule
    x = np.zeros(xs, _F)
    bias = np.zeros(bs, _F) if bs else None
    if outs is None:
        rows = xs[0] if len(xs) == 2 else 4
        e = xs[-1]
        kk = max(k, 1)
        outs = ((rows, kk), (rows, kk), (rows, e))
    y, idx, out = np.zeros(outs[0], _F), np.zeros(outs[1], np.int32), np.zeros(outs[2], _F)
    status, msg = ws_status(API, x, bias, k, kg, gc, mode, renorm, nt, flag, 1.0, 1e-20, y, idx, out)
    assert status == lib.ACLNN_ERR_INNER_TILING_ERROR, f"{name}: {status} {msg}"
    assert msg.startswith(API)


def test_rules_that_pass(ws_status):
    """Boundaries that the NPU accepts."""
    z = np.zeros
    # the align32 rule applies only while grouping is active: with k_group == group_count it is skipped
    assert ws_status(API, z((2, 2000), _F), None, 8, 80, 80, 0, 0, 1, False, 1.0, 1e-20,
                     z((2, 8), _F), z((2, 8), np.int32), z((2, 2000), _F))[0] == 0
    # E == 2048, k == E
    assert ws_status(API, z((1, 2048), _F), None, 2048, 1, 1, 0, 0, 0, False, 1.0, 1e-20,
                     z((1, 2048), _F), z((1, 2048), np.int32), z((1, 2048), _F))[0] == 0
    # out's extents are only checked when out_flag is set (it must still be 2-D)
    status, msg = ws_status(API, z((4, 8), _F), None, 2, 1, 1, 0, 0, 0, False, 1.0, 1e-20,
                            z((4, 2), _F), z((4, 2), np.int32), z((1, 1), _F), run=True)
    assert status == 0, msg


def test_facade_argument_errors():
    x = np.zeros((4, 8), np.float32)
    with pytest.raises(ArgumentError, match="k"):
        moe_gating_top_k(x, 9)
    with pytest.raises(ArgumentError, match="bias"):
        moe_gating_top_k(x, 2, bias=np.zeros(8, np.float16))
    with pytest.raises(ArgumentError, match="x"):
        moe_gating_top_k(x.astype(np.int32), 2)
    with pytest.raises(ArgumentError, match="x"):
        moe_gating_top_k(np.zeros(8, np.float32), 2)
    with pytest.raises(AclnnError) as e:
        moe_gating_top_k(x, 2, renorm=1)
    assert e.value.status == lib.ACLNN_ERR_INNER_TILING_ERROR
    with pytest.raises(AclnnError) as e:
        moe_gating_top_k(x, 2, k_group=3, group_count=2)
    assert e.value.status == lib.ACLNN_ERR_INNER_TILING_ERROR
