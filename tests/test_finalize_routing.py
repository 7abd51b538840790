"""MoeFinalizeRouting (V1) and MoeFinalizeRoutingV2: host runtime vs the numpy reference (every dtype, every
dropPadMode, every combination of optional inputs, strides, plans), the fp16 per-operation rounding, dropped
rows, index range checks, and every validation rule of both versions with its status code."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from aclnn_moe import AclnnError, ArgumentError
from aclnn_moe._dtypes import bfloat16
from aclnn_moe.capi import lib
from aclnn_moe.ops._compare import assert_same
from aclnn_moe.ops.finalize_routing import MoeFinalizeRouting, available_versions, moe_finalize_routing
from aclnn_moe.ops.init_routing import moe_init_routing, standard_row_idx
from aclnn_moe.reference.finalize_routing import moe_finalize_routing as ref

V1, V2 = "aclnnMoeFinalizeRouting", "aclnnMoeFinalizeRoutingV2"
DTYPES = [np.dtype(np.float32), np.dtype(np.float16), bfloat16]


# ---------------------------------------------------------------------------------------------------- helpers
def case(rng, n, k, h, e, dt, mode, *, c=4, drop_frac=0.25, scale_dt=None):
    """Random operands of one problem; modes 1/3 get [E, C, H] rows and some dropped (-1) slots."""
    if mode in (1, 3):
        x = rng.standard_normal((e, c, h)).astype(dt)
        rows = rng.permutation(e * c)[: n * k] if n * k <= e * c else rng.integers(0, e * c, n * k)
        rows = np.where(rng.random(n * k) < drop_frac, -1, rows).astype(np.int32)
    else:
        x = rng.standard_normal((n * k, h)).astype(dt)
        rows = rng.permutation(n * k).astype(np.int32)
    return dict(
        x=x, rows=rows,
        skip1=rng.standard_normal((n, h)).astype(dt),
        skip2=rng.standard_normal((n, h)).astype(dt),
        bias=rng.standard_normal((e, h)).astype(dt),
        scales=rng.random((n, k)).astype(scale_dt or dt),
        experts=rng.integers(0, e, (n, k)).astype(np.int32),
    )


def run_both(d, mode, *, use=("skip1", "skip2", "bias", "scales", "experts"), api_version=None):
    args = [d[name] if name in use else None for name in ("skip1", "skip2", "bias", "scales")]
    experts = d["experts"] if "experts" in use else None
    got = moe_finalize_routing(d["x"], *args, d["rows"], experts, mode, api_version=api_version)
    want = ref(d["x"], *args, d["rows"], experts, mode)
    assert_same(got, want, f"mode {mode} {d['x'].dtype} {use} v{api_version}")
    return got


def v2_args(n=3, k=2, h=4, e=2, dt=np.float32, mode=0, c=3):
    """Valid raw arguments of aclnnMoeFinalizeRoutingV2 (index values in range)."""
    x = np.zeros((e, c, h) if mode in (1, 3) else (n * k, h), dt)
    rows = np.arange(n * k, dtype=np.int32) % (e * c if mode in (1, 3) else n * k)
    return [x, rows, np.zeros((n, h), dt), np.zeros((n, h), dt), np.zeros((e, h), dt), np.zeros((n, k), dt),
            np.zeros((n, k), np.int32), mode, np.zeros((n, h), dt)]


def v1_args(n=3, k=2, h=4, e=2, dt=np.float32):
    return [np.zeros((n * k, h), dt), np.zeros((n, h), dt), np.zeros((n, h), dt), np.zeros((e, h), dt),
            np.zeros((n, k), dt), np.arange(n * k, dtype=np.int32), np.zeros((n, k), np.int32),
            np.zeros((n, h), dt)]


# ---------------------------------------------------------------------------------------------------- values
def test_official_example():
    """The aclnn doc example (V1 and V2 mode 0): fp32 rows, x1, x2, bias, scales."""
    x = np.array([0.1, 1.1, 2.1, 3.1, 4.1, 5.1, 6.1, 7.1, 8.1, 9.1, 10.1, 11.1] * 2, np.float32).reshape(6, 4)
    x1 = np.array([0.2, 1.2, 2.2, 3.2, 4.2, 5.2, 6.2, 7.2, 8.2, 9.2, 10.2, 11.2], np.float32).reshape(3, 4)
    bias = np.array([0.2, 0.4] * 4, np.float32).reshape(2, 4)
    scales = np.array([1.3, 1.6, 1.2, 1.8, 1.2, 2.3], np.float32).reshape(3, 2)
    experts = np.array([0, 1, 0, 1, 0, 1], np.int32).reshape(3, 2)
    rows = np.array([2, 1, 4, 3, 0, 5], np.int32)
    for v in available_versions():
        got = moe_finalize_routing(x, x1, x1, bias, scales, rows, experts, 0, api_version=v)
        # out[0] = 2*x1[0] + 1.3*(x[2] + b0) + 1.6*(x[3] + b1), with k-major positions 0 and 3
        want0 = 2 * x1[0] + 1.3 * (x[2] + bias[0]) + 1.6 * (x[3] + bias[1])
        np.testing.assert_allclose(got[0], want0, rtol=1e-6)
        assert_same(got, ref(x, x1, x1, bias, scales, rows, experts, 0), f"official example v{v}")


@pytest.mark.parametrize("dt", DTYPES, ids=str)
@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_v2_matches_reference(rng, dt, mode):
    for n, k, h, e in ((1, 1, 1, 1), (5, 4, 5, 16), (50, 4, 10, 16), (33, 8, 700, 64), (16, 8, 7168, 256)):
        d = case(rng, n, k, h, e, dt, mode, c=max(2, (n * k) // e + 2))
        run_both(d, mode, api_version=2)


@pytest.mark.parametrize("dt", DTYPES, ids=str)
@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_v2_optional_inputs(rng, dt, mode):
    d = case(rng, 13, 3, 67, 5, dt, mode)
    names = ("skip1", "skip2", "bias", "scales")
    for mask in itertools.product((0, 1), repeat=4):
        use = {nm for nm, m in zip(names, mask) if m}
        if "skip2" in use and "skip1" not in use:
            continue
        if "bias" in use:
            use.add("experts")
        if "scales" not in use:  # K = 1 without scales: one slot per token
            d1 = case(rng, 13, 1, 67, 5, dt, mode)
            run_both(d1, mode, use=use, api_version=2)
            continue
        run_both(d, mode, use=use, api_version=2)
    # expertIdx without bias is accepted and ignored (even out of range)
    d2 = dict(d, experts=np.full((13, 3), 99, np.int32))
    run_both(d2, mode, use=("skip1", "scales", "experts"), api_version=2)


def test_bf16_with_fp32_scales(rng):
    for mode in range(4):
        d = case(rng, 40, 4, 300, 8, bfloat16, mode, scale_dt=np.float32)
        run_both(d, mode, api_version=2)


@pytest.mark.parametrize("dt", DTYPES, ids=str)
def test_v1_matches_reference(rng, dt):
    if 1 not in available_versions():
        pytest.skip("backend has no aclnnMoeFinalizeRouting")
    for n, k, h, e in ((1, 1, 1, 1), (50, 4, 10, 16), (64, 8, 1000, 64)):
        d = case(rng, n, k, h, e, dt, 0)
        run_both(d, 0, api_version=1)
        run_both(d, 0, use=("skip1", "bias", "scales", "experts"), api_version=1)


def test_v1_equals_v2_mode0(rng):
    d = case(rng, 30, 4, 100, 8, np.float16, 0)
    a = moe_finalize_routing(d["x"], d["skip1"], d["skip2"], d["bias"], d["scales"], d["rows"], d["experts"], 0,
                             api_version=1)
    b = moe_finalize_routing(d["x"], d["skip1"], d["skip2"], d["bias"], d["scales"], d["rows"], d["experts"], 0,
                             api_version=2)
    assert_same(a, b, "V1 vs V2 mode 0")


def test_fp16_rounds_after_every_operation():
    """acc = 1 and four terms of 2^-11 (half an ulp of 1): fp16 arithmetic rounds every add back to 1 (ties to
    even), whereas accumulating in fp32 would give 1 + 2^-9."""
    n, k, h = 1, 4, 8
    x = np.full((n * k, h), 2.0 ** -11, np.float16)
    rows = np.arange(n * k, dtype=np.int32)
    skip1 = np.ones((n, h), np.float16)
    scales = np.ones((n, k), np.float16)
    for v in available_versions():
        got = moe_finalize_routing(x, skip1, None, np.zeros((k, h), np.float16), scales, rows,
                                   np.zeros((n, k), np.int32), 0, api_version=v)
        np.testing.assert_array_equal(got, np.ones((n, h), np.float16))
    # and (x + bias) is rounded before the scale multiplies it: (2^-11 + 1) -> 1 in fp16, times 2 -> 2
    got = moe_finalize_routing(x[:1], None, None, np.ones((1, h), np.float16), np.full((1, 1), 2, np.float16),
                               rows[:1], np.zeros((1, 1), np.int32), 2, api_version=2)
    np.testing.assert_array_equal(got, np.full((1, h), 2.0, np.float16))


def test_dropped_rows_contribute_nothing(rng):
    """-1 slots in modes 1/3 add neither the row nor the bias (the kernel's behaviour; the official goldens
    would add scale * bias)."""
    e, c, h, n, k = 4, 3, 8, 5, 2
    x = rng.standard_normal((e, c, h)).astype(np.float32)
    skip1 = rng.standard_normal((n, h)).astype(np.float32)
    bias = rng.standard_normal((e, h)).astype(np.float32) + 10
    rows = np.full(n * k, -1, np.int32)
    for mode in (1, 3):
        got = moe_finalize_routing(x, skip1, None, bias, np.ones((n, k), np.float32), rows,
                                   np.zeros((n, k), np.int32), mode)
        np.testing.assert_array_equal(got, skip1)
        got = moe_finalize_routing(x, None, None, None, None, rows[:n], None, mode)
        np.testing.assert_array_equal(got, np.zeros((n, h), np.float32))


def test_layouts_k_major_vs_row_major(rng):
    """Mode 0 reads position k*N + i, mode 2 reads i*K + k: the same routing in both layouts agrees."""
    n, k, h = 6, 3, 16
    x = rng.standard_normal((n * k, h)).astype(np.float32)
    dst = rng.permutation(n * k).reshape(n, k)          # dst[i, k]: row of token i, slot k
    scales = rng.random((n, k)).astype(np.float32)
    kmajor = dst.T.reshape(-1).astype(np.int32)
    rowmajor = dst.reshape(-1).astype(np.int32)
    a = moe_finalize_routing(x, None, None, None, scales, kmajor, None, 0)
    b = moe_finalize_routing(x, None, None, None, scales, rowmajor, None, 2)
    np.testing.assert_array_equal(a, b)
    direct = sum(scales[:, j:j + 1] * x[dst[:, j]] for j in range(k))
    np.testing.assert_allclose(a, direct, rtol=1e-6)


def test_init_routing_then_finalize_round_trip(rng):
    """init_routing (V1) -> identity experts -> finalize mode 0 with unit scales gives K * x."""
    n, k, h, e = 40, 4, 32, 8
    x = rng.integers(-8, 8, (n, h)).astype(np.float32)
    experts = rng.integers(0, e, (n, k)).astype(np.int32)
    expanded_x, expanded_row_idx, _ = moe_init_routing(x, standard_row_idx(n, k), experts, n)
    out = moe_finalize_routing(expanded_x, None, None, None, np.ones((n, k), np.float32), expanded_row_idx, None, 0)
    np.testing.assert_array_equal(out, k * x)


def test_non_contiguous_inputs(rng):
    n, k, h, e = 20, 4, 48, 6
    for mode in range(4):
        d = case(rng, n, k, h, e, np.float16, mode)
        wide = np.repeat(d["x"], 2, axis=-1)
        d["x"] = wide[..., ::2]                                       # column stride 2
        d["skip1"] = np.asfortranarray(d["skip1"])                    # column-major
        d["bias"] = np.repeat(d["bias"], 3, axis=0)[::3]              # row stride 3H
        d["scales"] = np.asfortranarray(d["scales"])
        d["experts"] = np.asfortranarray(d["experts"])
        d["rows"] = np.repeat(d["rows"], 2)[::2]
        assert not d["x"].flags.c_contiguous
        run_both(d, mode, api_version=2)
        if mode == 0:
            run_both(d, mode, api_version=1)


def test_row_strided_inputs_keep_the_fast_path(rng):
    """Rows that are slices of wider arrays (row stride != H, columns contiguous)."""
    n, k, h, e = 12, 4, 37, 5
    for dt in DTYPES:
        for mode in (0, 3):
            d = case(rng, n, k, h, e, dt, mode)
            d["x"] = np.concatenate([d["x"], d["x"]], axis=-1)[..., :h]
            d["skip1"] = np.concatenate([d["skip1"], d["skip1"]], axis=1)[:, 3:3 + h]
            d["bias"] = np.concatenate([d["bias"], d["bias"]], axis=1)[:, h:]
            run_both(d, mode, api_version=2)


def test_many_slots(rng):
    """K above the 64 slots the vector path gathers per token (falls back to the tile path)."""
    n, k, h = 3, 70, 24
    for dt in DTYPES:
        d = case(rng, n, k, h, k, dt, 2)
        run_both(d, 2, api_version=2)


# ---------------------------------------------------------------------------------------------------- index checks
@pytest.mark.parametrize("mode, bad", [(0, 6), (0, -1), (2, 100), (2, -1), (1, -2), (1, 9), (3, -5), (3, 9)])
def test_row_index_out_of_range(mode, bad):
    n, k, h, e, c = 3, 2, 4, 3, 3            # rows = 6 (modes 0/2) or E*C = 9 (modes 1/3)
    x = np.ones((e, c, h) if mode in (1, 3) else (n * k, h), np.float32)
    rows = np.array([0, 1, 2, 3, 4, bad], np.int32)
    with pytest.raises(AclnnError) as ei:
        moe_finalize_routing(x, None, None, None, np.ones((n, k), np.float32), rows, None, mode)
    assert ei.value.status == lib.ACLNN_ERR_PARAM_INVALID
    assert "expandedRowIdx[5]" in ei.value.c_message and str(bad) in ei.value.message


@pytest.mark.parametrize("bad", [-1, 2, 1 << 30])
def test_expert_index_out_of_range(bad):
    x = np.ones((6, 4), np.float32)
    experts = np.array([[0, 1], [1, bad], [0, 0]], np.int32)
    for v in available_versions():
        with pytest.raises(AclnnError) as ei:
            moe_finalize_routing(x, np.ones((3, 4), np.float32), None, np.ones((2, 4), np.float32),
                                 np.ones((3, 2), np.float32), np.arange(6, dtype=np.int32), experts, 0,
                                 api_version=v)
        assert ei.value.status == lib.ACLNN_ERR_PARAM_INVALID
        assert "[1, 1]" in ei.value.message and str(bad) in ei.value.message


# ---------------------------------------------------------------------------------------------------- V2 rules
def test_v2_valid_raw_calls(ws_status):
    for mode in range(4):
        assert ws_status(V2, *v2_args(mode=mode), run=True) == (0, ""), mode
    args = v2_args(dt=bfloat16)
    args[5] = np.zeros((3, 2), np.float32)     # mixed precision: bf16 rows, fp32 scales
    assert ws_status(V2, *args, run=True) == (0, "")


# inputs outside their dtypes: test_contract.py; the same-dtype rules and the output here
@pytest.mark.parametrize("i, bad", [
    (2, np.zeros((3, 4), np.float16)),          # x1 dtype != expandedX
    (3, np.zeros((3, 4), np.float16)),          # x2
    (4, np.zeros((2, 4), np.float16)),          # bias
    (5, np.zeros((3, 2), np.float16)),          # scales fp16 with fp32 rows
    (8, np.zeros((3, 4), np.float16)),          # out dtype != expandedX
])
def test_v2_dtype_rules(ws_status, i, bad):
    args = v2_args()
    args[i] = bad
    status, msg = ws_status(V2, *args)
    assert status == lib.ACLNN_ERR_PARAM_INVALID, msg


def test_v2_fp32_scales_need_bf16_rows(ws_status):
    args = v2_args(dt=np.float16)
    args[5] = np.zeros((3, 2), np.float32)
    assert ws_status(V2, *args)[0] == lib.ACLNN_ERR_PARAM_INVALID


def _v2(mode=0, **repl):
    args = v2_args(mode=mode)
    names = ["x", "rows", "x1", "x2", "bias", "scales", "experts", "mode", "out"]
    for key, value in repl.items():
        args[names.index(key)] = value
    return args


V2_SHAPE_CASES = {
    "dropPadMode 4": _v2(mode=4),
    "dropPadMode -1": _v2(mode=-1),
    "rowIdx 2-D": _v2(rows=np.arange(6, dtype=np.int32).reshape(3, 2)),
    "scales 1-D": _v2(scales=np.zeros(6, np.float32)),
    "K == 0": _v2(rows=np.zeros(0, np.int32), scales=np.zeros((3, 0), np.float32), x=np.zeros((0, 4), np.float32),
                  experts=np.zeros((3, 0), np.int32)),
    "mode 0 with 3-D rows": _v2(x=np.zeros((2, 3, 4), np.float32)),
    "mode 1 with 2-D rows": _v2(mode=1, x=np.zeros((6, 4), np.float32)),
    "expandedX rows != N*K": _v2(x=np.zeros((7, 4), np.float32)),
    "rowIdx length != N*K": _v2(rows=np.arange(5, dtype=np.int32)),
    "x1 1-D": _v2(x1=np.zeros(12, np.float32)),
    "x1 shape": _v2(x1=np.zeros((3, 5), np.float32)),
    "x2 without x1": _v2(x1=None),
    "x2 shape": _v2(x2=np.zeros((2, 4), np.float32)),
    "bias without expertIdx": _v2(experts=None),
    "bias 1-D": _v2(bias=np.zeros(8, np.float32)),
    "bias dim0 != E (mode 1)": _v2(mode=1, bias=np.zeros((3, 4), np.float32)),
    "bias dim1 != H": _v2(bias=np.zeros((2, 5), np.float32)),
    "bias dim0 < K": _v2(bias=np.zeros((1, 4), np.float32)),
    "expertIdx shape": _v2(experts=np.zeros((3, 3), np.int32)),
    "expertIdx 1-D": _v2(experts=np.zeros(6, np.int32)),
    "E == 0 (mode 1)": _v2(mode=1, x=np.zeros((0, 3, 4), np.float32), bias=None, experts=None,
                           rows=np.full(6, -1, np.int32)),
    "out shape": _v2(out=np.zeros((3, 5), np.float32)),
    "out 1-D": _v2(out=np.zeros(12, np.float32)),
}


@pytest.mark.parametrize("name", list(V2_SHAPE_CASES))
def test_v2_shape_rules(ws_status, name):
    # hand-written op_api: shape and attribute failures are ACLNN_ERR_INNER_NULLPTR (spec/host-vs-cann.md)
    status, msg = ws_status(V2, *V2_SHAPE_CASES[name])
    assert status == lib.ACLNN_ERR_INNER_NULLPTR, f"{name}: {status} {msg}"
    assert msg.startswith(V2)


# ---------------------------------------------------------------------------------------------------- V1 rules
def test_v1_valid_raw_call(ws_status):
    assert ws_status(V1, *v1_args(), run=True) == (0, "")
    args = v1_args()
    args[2] = None                                 # x2Optional
    assert ws_status(V1, *args, run=True) == (0, "")


@pytest.mark.parametrize("i, bad", [  # the same-dtype rules and the output (inputs: test_contract.py)
    (1, np.zeros((3, 4), np.float16)),
    (3, np.zeros((2, 4), np.float16)),
    (7, np.zeros((3, 4), np.float16)),
])
def test_v1_dtype_rules(ws_status, i, bad):
    args = v1_args()
    args[i] = bad
    assert ws_status(V1, *args)[0] == lib.ACLNN_ERR_PARAM_INVALID


def test_v1_has_no_mixed_precision(ws_status):
    args = v1_args(dt=bfloat16)
    args[4] = np.zeros((3, 2), np.float32)
    assert ws_status(V1, *args)[0] == lib.ACLNN_ERR_PARAM_INVALID


@pytest.mark.parametrize("i, bad", [
    (0, np.zeros(24, np.float32)),                 # expandedX 1-D
    (1, np.zeros((2, 4), np.float32)),             # x1 rows != scales rows
    (1, np.zeros((3, 5), np.float32)),             # x1 H mismatch
    (2, np.zeros((3, 5), np.float32)),             # x2 H mismatch
    (3, np.zeros((2, 5), np.float32)),             # bias H mismatch
    (3, np.zeros((0, 4), np.float32)),             # E == 0
    (4, np.zeros((3, 3), np.float32)),             # scales K != expertIdx K
    (4, np.zeros(6, np.float32)),                  # scales 1-D
    (5, np.arange(5, dtype=np.int32)),             # rowIdx length != expandedX rows
    (5, np.arange(6, dtype=np.int32).reshape(6, 1)),  # rowIdx 2-D
    (6, np.zeros((2, 2), np.int32)),               # expertIdx rows != N
    (7, np.zeros((3, 5), np.float32)),             # out shape
])
def test_v1_shape_rules(ws_status, i, bad):
    args = v1_args()
    args[i] = bad
    status, msg = ws_status(V1, *args)
    assert status == lib.ACLNN_ERR_INNER_TILING_ERROR, msg


def test_v1_k_zero(ws_status):
    args = [np.zeros((0, 4), np.float32), np.zeros((3, 4), np.float32), None, np.zeros((2, 4), np.float32),
            np.zeros((3, 0), np.float32), np.zeros(0, np.int32), np.zeros((3, 0), np.int32),
            np.zeros((3, 4), np.float32)]
    assert ws_status(V1, *args)[0] == lib.ACLNN_ERR_INNER_TILING_ERROR


# ---------------------------------------------------------------------------------------------------- facade
def test_facade_v1_requirements(rng):
    d = case(rng, 4, 2, 8, 3, np.float32, 0)
    for missing in ("skip1", "bias", "scales", "export_for_source_row"):
        kw = dict(skip1=d["skip1"], bias=d["bias"], scales=d["scales"], export_for_source_row=d["experts"])
        kw[missing] = None
        with pytest.raises(ArgumentError) as ei:
            moe_finalize_routing(d["x"], kw["skip1"], None, kw["bias"], kw["scales"], d["rows"],
                                 kw["export_for_source_row"], 0, api_version=1)
        assert ei.value.param == missing
    with pytest.raises(ArgumentError) as ei:
        moe_finalize_routing(d["x"], d["skip1"], None, d["bias"], d["scales"], d["rows"], d["experts"], 2,
                             api_version=1)
    assert ei.value.param == "drop_pad_mode"
    with pytest.raises(ArgumentError):
        moe_finalize_routing(d["x"], None, None, None, None, d["rows"], None, 0, api_version=3)


def test_facade_prefers_v2():
    op = MoeFinalizeRouting(np.zeros((2, 4), np.float32), None, None, None, None, np.arange(2, dtype=np.int32),
                            None)
    try:
        assert op.api_version == available_versions()[0] == 2
    finally:
        op.free()
