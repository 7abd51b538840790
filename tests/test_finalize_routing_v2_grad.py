"""aclnnMoeFinalizeRoutingV2Grad against the numpy reference, as the adjoint of the MoeFinalizeRoutingV2 forward
(numpy reference, row-major modes 2 and 3) in the expanded rows and in the scales, the official example, and the
documented rules (561103)."""
from __future__ import annotations

import numpy as np
import pytest

from aclnn_moe import AclnnError
from aclnn_moe._dtypes import bfloat16
from aclnn_moe.ops.finalize_routing_v2_grad import MoeFinalizeRoutingV2Grad, moe_finalize_routing_v2_grad
from aclnn_moe.reference.finalize_routing import moe_finalize_routing as forward
from aclnn_moe.reference.finalize_routing_v2_grad import moe_finalize_routing_v2_grad as ref
from aclnn_moe.reference.init_routing_v2 import moe_init_routing_v2

API = "aclnnMoeFinalizeRoutingV2Grad"


def bits(a):
    return a.view(np.uint16) if a is not None and a.dtype.itemsize == 2 else a


def run_both(gy, idx, **kw):
    got = moe_finalize_routing_v2_grad(gy, idx, **kw)
    exp = ref(gy, idx, **kw)
    for g, e in zip(got, exp):
        assert (g is None) == (e is None)
        if g is not None:
            assert g.dtype == e.dtype and g.shape == e.shape
            np.testing.assert_array_equal(bits(g), bits(e))
    return got


def drop_layout(rng, r, k, e, c):
    x = np.zeros((r, 1), np.float32)
    experts = rng.integers(0, e, (r, k)).astype(np.int32)
    _, idx, _, _ = moe_init_routing_v2(x, experts, expert_capacity=min(c, r), expert_num=e, drop_pad_mode=1)
    return idx, experts


@pytest.mark.parametrize("dtype", (np.float32, np.float16, bfloat16))
@pytest.mark.parametrize("r,k,h,e", [(1, 1, 1, 1), (2, 2, 2, 2), (19, 3, 37, 5), (64, 8, 256, 16), (7, 4, 130, 3)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_matches_reference(rng, dtype, r, k, h, e, with_bias):
    gy = rng.standard_normal((r, h)).astype(dtype)
    sc = rng.random((r, k)).astype(dtype)
    ei = rng.integers(0, e, (r, k)).astype(np.int32)
    b = rng.standard_normal((e, h)).astype(dtype) if with_bias else None
    idx = rng.permutation(r * k).astype(np.int32)
    for active in (0, r * k, max(r * k // 2, 1)):
        rows = active if 0 < active < r * k else r * k
        x = rng.standard_normal((rows, h)).astype(dtype)
        run_both(gy, idx, expanded_x=x, scales=sc, expert_idx=ei, bias=b, active_num=active)
    c = max(r // 2, 1)
    didx, dei = drop_layout(rng, r, k, e, c)
    xd = rng.standard_normal((e, min(c, r), h)).astype(dtype)
    run_both(gy, didx, expanded_x=xd, scales=sc, expert_idx=dei, bias=b, drop_pad_mode=1, expert_num=e,
             expert_capacity=min(c, r))
    g1 = rng.standard_normal((r * k, h)).astype(dtype)  # no scales: K = 1
    run_both(g1, idx)
    run_both(g1[:r], didx[:r], drop_pad_mode=1, expert_num=e, expert_capacity=min(c, r))  # K = 1, drop/pad


@pytest.mark.parametrize("r,k,h,e", [(40, 4, 24, 16), (33, 2, 70, 4), (16, 8, 5, 8)])
def test_adjoint_of_the_forward(rng, r, k, h, e):
    """y = finalize(x, scales) is linear in x and in scales: <y, g> == <x, grad_x> == <scales, grad_scales>
    (bias: y - bias terms is linear in scales with coefficients x + bias)"""
    idx = rng.permutation(r * k).astype(np.int32)
    x = rng.standard_normal((r * k, h)).astype(np.float32)
    sc = rng.random((r, k)).astype(np.float32)
    ei = rng.integers(0, e, (r, k)).astype(np.int32)
    b = rng.standard_normal((e, h)).astype(np.float32)
    for bias in (None, b):
        y = forward(x, None, None, bias, sc, idx, ei, drop_pad_mode=2).astype(np.float64)
        g = rng.standard_normal(y.shape).astype(np.float32)
        gx, gs = moe_finalize_routing_v2_grad(g, idx, expanded_x=x, scales=sc, expert_idx=ei, bias=bias)
        lhs = np.vdot(y, g)
        assert np.isclose(lhs, np.vdot(sc.astype(np.float64), gs), rtol=1e-5, atol=1e-4)
        if bias is None:
            assert np.isclose(lhs, np.vdot(x.astype(np.float64), gx), rtol=1e-5, atol=1e-4)
        else:  # y is affine in x: the x part is y(bias) - y(x = 0)
            y0 = forward(np.zeros_like(x), None, None, bias, sc, idx, ei, drop_pad_mode=2).astype(np.float64)
            assert np.isclose(np.vdot(y - y0, g), np.vdot(x.astype(np.float64), gx), rtol=1e-5, atol=1e-4)
    # drop/pad (mode 3 forward; a dropped slot contributes nothing there, so no bias)
    c = max(r // 4, 1)
    didx, dei = drop_layout(rng, r, k, e, c)
    xd = rng.standard_normal((e, c, h)).astype(np.float32)
    y = forward(xd, None, None, None, sc, didx, dei, drop_pad_mode=3).astype(np.float64)
    g = rng.standard_normal(y.shape).astype(np.float32)
    gx, gs = moe_finalize_routing_v2_grad(g, didx, expanded_x=xd, scales=sc, drop_pad_mode=1, expert_num=e,
                                          expert_capacity=c)
    assert gx.shape == xd.shape
    assert np.isclose(np.vdot(y, g), np.vdot(sc.astype(np.float64), gs), rtol=1e-5, atol=1e-4)
    assert np.isclose(np.vdot(y, g), np.vdot(xd.astype(np.float64), gx), rtol=1e-5, atol=1e-4)


def test_dropped_slots_keep_the_bias_term_of_the_scale_gradient():
    """as the official kernel: a -1 slot writes no row and its scale gradient is bias . grad_y (0 without bias)"""
    gy = np.array([[1.0, 2.0]], np.float32)
    kw = dict(expanded_x=np.full((1, 1, 2), 5, np.float32), scales=np.array([[0.5, 0.25]], np.float32),
              expert_idx=np.array([[0, 0]], np.int32), bias=np.array([[1.0, 1.0]], np.float32), drop_pad_mode=1,
              expert_num=1, expert_capacity=1)
    gx, gs = run_both(gy, np.array([0, -1], np.int32), **kw)
    np.testing.assert_array_equal(gx, [[[0.5, 1.0]]])
    np.testing.assert_array_equal(gs, [[(5 + 1) * 1 + (5 + 1) * 2, 1 * 1 + 1 * 2]])
    kw["bias"] = kw["expert_idx"] = None
    _, gs = run_both(gy, np.array([0, -1], np.int32), **kw)
    np.testing.assert_array_equal(gs, [[15, 0]])


def test_active_rows_past_active_num_get_nothing():
    gy = np.array([[1.0], [2.0]], np.float32)
    x = np.array([[3.0], [4.0], [5.0]], np.float32)
    gx, gs = run_both(gy, np.array([2, 3, 0, 1], np.int32), expanded_x=x, scales=np.ones((2, 2), np.float32),
                      active_num=3)
    np.testing.assert_array_equal(gx[:, 0], [2, 2, 1])
    np.testing.assert_array_equal(gs, [[5, 0], [6, 8]])


def test_official_example():
    gy = np.array([[0.3816, 0.3939], [0.8474, 0.1652]], np.float32)
    x = np.array([[0.6049, 0.3315], [0.4954, 0.3284], [0.7060, 0.4359], [0.6514, 0.9476]], np.float32)
    sc = np.array([[0.4708, 0.0656], [0.9652, 0.9512]], np.float32)
    ei = np.array([[0, 1], [0, 1]], np.int32)
    b = np.array([[0.6452, 0.1981], [0.4159, 0.9575]], np.float32)
    gx, gs = moe_finalize_routing_v2_grad(gy, np.array([1, 3, 0, 2], np.int32), expanded_x=x, scales=sc,
                                          expert_idx=ei, bias=b)
    rows = [1, 3, 0, 2]
    for p, row in enumerate(rows):
        np.testing.assert_allclose(gx[row], gy[p // 2] * sc.reshape(-1)[p], rtol=1e-6)
        np.testing.assert_allclose(gs.reshape(-1)[p], np.dot(x[row] + b[ei.reshape(-1)[p]], gy[p // 2]), rtol=1e-6)


def test_plan_and_reuse(rng):
    idx = rng.permutation(24).astype(np.int32)
    g1, g2 = (rng.standard_normal((8, 5)).astype(np.float32) for _ in range(2))
    kw = dict(expanded_x=rng.standard_normal((24, 5)).astype(np.float32), scales=rng.random((8, 3)).astype(np.float32))
    with MoeFinalizeRoutingV2Grad(g1, idx, **kw) as op:
        op.plan()
        a = [x.copy() for x in op.execute()]
        op.reset_operands(grad_y=g2)
        b = op.execute()
    for x, y in zip(a, ref(g1, idx, **kw)):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(b, ref(g2, idx, **kw)):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("idx,kw", [([0, 1, 2, 4], {}), ([0, -1, 2, 3], {}), ([0, 1, 1, 2], {}),
                                    ([0, -2, 1, 2], dict(drop_pad_mode=1)), ([0, 4, 1, 2], dict(drop_pad_mode=1)),
                                    ([0, 3, 3, -1], dict(drop_pad_mode=1))])
def test_index_errors_161002(idx, kw):
    gy = np.ones((2, 3), np.float32)
    x = np.ones((2, 2, 3) if kw else (4, 3), np.float32)
    if kw:
        kw.update(expert_num=2, expert_capacity=2)
    with pytest.raises(AclnnError) as e:
        moe_finalize_routing_v2_grad(gy, np.array(idx, np.int32), expanded_x=x, scales=np.ones((2, 2), np.float32),
                                     **kw)
    assert e.value.status == 161002 and "expanded_row_idx" in e.value.message


def test_expert_index_out_of_range_161002():
    with pytest.raises(AclnnError) as e:
        moe_finalize_routing_v2_grad(np.ones((2, 3), np.float32), np.arange(4, dtype=np.int32),
                                     expanded_x=np.ones((4, 3), np.float32), scales=np.ones((2, 2), np.float32),
                                     expert_idx=np.array([[0, 1], [2, 0]], np.int32), bias=np.ones((2, 3), np.float32))
    assert e.value.status == 161002 and "expert_idx[1, 0] = 2" in e.value.message


def _args(r=2, k=2, h=3, e=2, dtype=np.float32):
    return [np.ones((r, h), dtype), np.arange(r * k, dtype=np.int32), np.ones((r * k, h), dtype),
            np.ones((r, k), dtype), np.zeros((r, k), np.int32), np.ones((e, h), dtype), 0, 0, 0, 0,
            np.zeros((r * k, h), dtype), np.zeros((r, k), dtype)]


def test_valid_arguments_pass(ws_status):
    assert ws_status(API, *_args()) == (0, "")
    a = _args()
    a[2:6] = [None, None, None, None]  # no scales: K = 1, grad_y has R*K rows
    a[0] = np.ones((4, 3), np.float32)
    assert ws_status(API, *a)[0] == 0
    a = _args()
    a[2], a[6], a[8], a[9], a[10] = np.ones((2, 2, 3), np.float32), 1, 2, 2, np.zeros((2, 2, 3), np.float32)
    assert ws_status(API, *a)[0] == 0


@pytest.mark.parametrize("i", [0, 1, 10, 11])
def test_null_tensor_161001(ws_status, i):
    a = _args()
    a[i] = None
    assert ws_status(API, *a)[0] == 161001


@pytest.mark.parametrize("i,value", [(0, np.ones((2, 3), np.int32)), (1, np.arange(4, dtype=np.int64)),
                                     (2, np.ones((4, 3), np.float16)), (3, np.ones((2, 2), np.float16)),
                                     (4, np.zeros((2, 2), np.int64)), (5, np.ones((2, 3), np.float16)),
                                     (10, np.zeros((4, 3), np.float16)), (11, np.zeros((2, 2), np.float16))])
def test_dtype_161002(ws_status, i, value):
    a = _args()
    a[i] = value
    assert ws_status(API, *a)[0] == 161002


@pytest.mark.parametrize("changes", [
    {6: 2}, {6: -1}, {6: 1}, {6: 1, 8: 2, 9: 0}, {0: np.ones((2, 3, 1), np.float32)},
    {1: np.arange(4, dtype=np.int32)[None]}, {2: None}, {4: None}, {2: np.ones((3, 3), np.float32)},
    {2: np.ones((4, 2), np.float32)}, {3: np.ones((3, 2), np.float32)}, {3: np.ones((2, 3), np.float32)},
    {4: np.zeros((2, 3), np.int32)}, {5: np.ones((2, 2), np.float32)}, {5: np.ones(3, np.float32)},
    {10: np.zeros((3, 3), np.float32)}, {10: np.zeros((4, 2), np.float32)}, {11: np.zeros((2, 3), np.float32)},
    {11: np.zeros(4, np.float32)}, {3: None, 2: None, 0: np.ones((3, 3), np.float32)},
    {6: 1, 8: 2, 9: 2, 2: np.ones((2, 2, 3), np.float32), 5: np.ones((3, 3), np.float32),
     10: np.zeros((2, 2, 3), np.float32)},
])
def test_shape_and_attribute_rules_561103(ws_status, changes):
    a = _args()
    for i, v in changes.items():
        a[i] = v
    status, msg = ws_status(API, *a)
    assert status == 561103 and API in msg, msg
