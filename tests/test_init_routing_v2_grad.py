"""aclnnMoeInitRoutingV2Grad against the numpy reference and as the adjoint of the MoeInitRoutingV2 forward (numpy
reference) in the dropless, active and drop/pad layouts, the official example, and the documented rules (561002)."""
from __future__ import annotations

import numpy as np
import pytest

from aclnn_moe import AclnnError
from aclnn_moe._dtypes import bfloat16
from aclnn_moe.ops.init_routing_v2_grad import MoeInitRoutingV2Grad, moe_init_routing_v2_grad
from aclnn_moe.reference.init_routing_v2 import moe_init_routing_v2 as forward
from aclnn_moe.reference.init_routing_v2_grad import moe_init_routing_v2_grad as ref

API = "aclnnMoeInitRoutingV2Grad"


def bits(a):
    return a.view(np.uint16) if a.dtype.itemsize == 2 else a


def same(got, exp):
    assert got.dtype == exp.dtype and got.shape == exp.shape
    np.testing.assert_array_equal(bits(got), bits(exp))


def routing(rng, n, k, e, used):
    experts = rng.choice(e, used, replace=False)
    return experts[rng.integers(0, used, (n, k))].astype(np.int32)


@pytest.mark.parametrize("dtype", (np.float32, np.float16, bfloat16))
@pytest.mark.parametrize("n,k,h", [(1, 1, 1), (2, 2, 2), (19, 3, 37), (64, 8, 256), (9, 5, 70), (3, 7, 16)])
def test_matches_reference(rng, dtype, n, k, h):
    idx = rng.permutation(n * k).astype(np.int32)
    for active in (0, n * k, max(n * k // 3, 1), 1):
        rows = active or n * k
        g = rng.standard_normal((rows, h)).astype(dtype)
        same(moe_init_routing_v2_grad(g, idx, k, active_num=active), ref(g, idx, k, active_num=active))
    for e, c in ((4, 1), (3, n), (n * k, 1)):
        x = rng.standard_normal((n, h)).astype(np.float32)
        _, drop, _, _ = forward(x, routing(rng, n, k, e, e), expert_capacity=min(c, n), expert_num=e, drop_pad_mode=1)
        g = rng.standard_normal((e, min(c, n), h)).astype(dtype)
        same(moe_init_routing_v2_grad(g, drop, k, drop_pad_mode=1), ref(g, drop, k, drop_pad_mode=1))


@pytest.mark.parametrize("n,k,h,e,used", [(40, 4, 24, 16, 5), (33, 2, 70, 64, 64), (16, 8, 5, 8, 1), (50, 1, 12, 4, 2)])
def test_adjoint_of_the_forward(rng, n, k, h, e, used):
    x = rng.standard_normal((n, h)).astype(np.float32)
    expert_idx = routing(rng, n, k, e, used)
    cases = [dict(), dict(active_num=n * k // 2), dict(active_num=1),
             dict(drop_pad_mode=1, expert_num=e, expert_capacity=max(n // 4, 1)),
             dict(drop_pad_mode=1, expert_num=e, expert_capacity=n)]
    for kw in cases:
        ex, row_idx, _, _ = forward(x, expert_idx, **kw)
        g = rng.standard_normal(ex.shape).astype(np.float32)
        gx = moe_init_routing_v2_grad(g, row_idx, k, drop_pad_mode=kw.get("drop_pad_mode", 0),
                                      active_num=kw.get("active_num", 0))
        assert gx.shape == x.shape
        assert np.isclose(np.vdot(ex.astype(np.float64), g), np.vdot(x.astype(np.float64), gx), rtol=1e-5,
                          atol=1e-4), kw


def test_official_example():
    g = np.array([[0.1, 0.1], [0.3, 0.3], [0.2, 0.2], [0.4, 0.4]], np.float32)
    out = moe_init_routing_v2_grad(g, np.array([2, 0, 1, 3], np.int32), 2)
    np.testing.assert_allclose(out, [[0.3, 0.3], [0.7, 0.7]], rtol=1e-6)


def test_rows_are_added_as_a_binary_tree():
    """K = 4 rows 1, 2^-24, 2^-24, 2^-24 (fp32): in order the tiny terms vanish one by one, the tree adds
    (1 + 2^-24) + (2^-24 + 2^-24) = 1 + 2^-23"""
    g = np.array([[1.0], [2.0 ** -24], [2.0 ** -24], [2.0 ** -24]], np.float32)
    out = moe_init_routing_v2_grad(g, np.arange(4, dtype=np.int32), 4)
    assert out[0, 0] == np.float32(1 + 2.0 ** -23)


def test_plan_and_reuse(rng):
    idx = rng.permutation(24).astype(np.int32)
    g1, g2 = (rng.standard_normal((24, 5)).astype(np.float32) for _ in range(2))
    with MoeInitRoutingV2Grad(g1, idx, 3) as op:
        op.plan()
        a = op.execute().copy()
        op.reset_operands(grad_expanded_x=g2)
        b = op.execute()
    np.testing.assert_array_equal(a, ref(g1, idx, 3))
    np.testing.assert_array_equal(b, ref(g2, idx, 3))


def test_empty():
    assert moe_init_routing_v2_grad(np.zeros((0, 3), np.float32), np.zeros(0, np.int32), 2).shape == (0, 3)


@pytest.mark.parametrize("kw,idx", [(dict(), [0, 1, 2, 4]), (dict(), [0, -1, 2, 3]), (dict(active_num=2), [0, 1, 4, 2]),
                                    (dict(drop_pad_mode=1), [0, -2, 1, 2]), (dict(drop_pad_mode=1), [0, 4, 1, 2])])
def test_index_out_of_range_161002(kw, idx):
    shape = (2, 2, 3) if kw.get("drop_pad_mode") else (kw.get("active_num") or 4, 3)
    with pytest.raises(AclnnError) as e:
        moe_init_routing_v2_grad(np.ones(shape, np.float32), np.array(idx, np.int32), 2, **kw)
    assert e.value.status == 161002 and "expanded_row_idx" in e.value.message


def _args(n=2, k=2, h=3, dtype=np.float32):
    return [np.ones((n * k, h), dtype), np.arange(n * k, dtype=np.int32), k, 0, 0, np.zeros((n, h), dtype)]


def test_valid_arguments_pass(ws_status):
    assert ws_status(API, *_args()) == (0, "")
    a = _args()
    a[0], a[3] = np.ones((2, 2, 3), np.float32), 1
    assert ws_status(API, *a)[0] == 0


@pytest.mark.parametrize("i", [0, 1, 5])
def test_null_tensor_161001(ws_status, i):
    a = _args()
    a[i] = None
    assert ws_status(API, *a)[0] == 161001


@pytest.mark.parametrize("i,value", [(0, np.ones((4, 3), np.int32)), (1, np.arange(4, dtype=np.int64)),
                                     (5, np.zeros((2, 3), np.float16))])
def test_dtype_161002(ws_status, i, value):
    a = _args()
    a[i] = value
    assert ws_status(API, *a)[0] == 161002


@pytest.mark.parametrize("changes", [
    {3: 2}, {3: -1}, {2: 0}, {2: -2}, {2: 3}, {4: -1}, {4: 3}, {0: np.ones((5, 3), np.float32)},
    {0: np.ones((4, 3, 1), np.float32)}, {0: np.ones(4, np.float32)}, {3: 1},
    {1: np.arange(4, dtype=np.int32)[None]}, {5: np.zeros((2, 2), np.float32)}, {5: np.zeros((4, 3), np.float32)},
    {5: np.zeros(6, np.float32)},
])
def test_shape_and_attribute_rules_561002(ws_status, changes):
    a = _args()
    for i, v in changes.items():
        a[i] = v
    status, msg = ws_status(API, *a)
    assert status == 561002 and API in msg, msg
