"""aclnnMoeTokenUnpermuteGrad against the numpy reference, as the adjoint of the MoeTokenUnpermute forward (its
math written here: out[t] = sum_k probs[t, k] * permuted[d], rows d >= num_out_tokens skipped), the official
example, and the rules."""
from __future__ import annotations

import numpy as np
import pytest

from aclnn_moe import AclnnError
from aclnn_moe._dtypes import bfloat16
from aclnn_moe.ops.token_unpermute_grad import MoeTokenUnpermuteGrad, moe_token_unpermute_grad
from aclnn_moe.reference.token_unpermute_grad import moe_token_unpermute_grad as ref

API = "aclnnMoeTokenUnpermuteGrad"
FLOAT_DTYPES = (np.float32, np.float16, bfloat16)


def bits(a):
    return a.view(np.uint16) if a is not None and a.dtype.itemsize == 2 else a


def unpermute(permuted, s, probs):
    t, k = probs.shape
    d = s.reshape(t, k).astype(np.int64)
    use = d < permuted.shape[0]
    out = np.zeros((t, permuted.shape[1]), np.float64)
    for kk in range(k):
        sel = np.nonzero(use[:, kk])[0]
        out[sel] += probs[sel, kk, None].astype(np.float64) * permuted[d[sel, kk]]
    return out


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("probs_dtype", FLOAT_DTYPES + (None,))
@pytest.mark.parametrize("t,k,h", [(1, 1, 1), (3, 2, 4), (19, 3, 37), (128, 8, 256), (6, 1, 70)])
def test_matches_reference(rng, dtype, probs_dtype, t, k, h):
    if probs_dtype is None:
        k = 1
    s = rng.permutation(t * k).astype(np.int32)
    grad = rng.standard_normal((t, h)).astype(dtype)
    probs = rng.random((t, k)).astype(probs_dtype) if probs_dtype is not None else None
    for rows in {t * k, t * k // 2, 0}:
        permuted = rng.standard_normal((rows, h)).astype(dtype)
        got = moe_token_unpermute_grad(permuted, grad, s, probs=probs)
        exp = ref(permuted, grad, s, probs=probs)
        for g, e in zip(got, exp):
            assert (g is None) == (e is None)
            if g is not None:
                assert g.dtype == e.dtype and g.shape == e.shape
                np.testing.assert_array_equal(bits(g), bits(e))


@pytest.mark.parametrize("t,k,h,rows", [(40, 4, 24, 160), (33, 2, 70, 40), (16, 8, 5, 1), (20, 3, 64, 0)])
def test_adjoint_of_the_forward(rng, t, k, h, rows):
    s = rng.permutation(t * k).astype(np.int32)
    permuted = rng.standard_normal((rows, h)).astype(np.float32)
    probs = rng.random((t, k)).astype(np.float32)
    out = unpermute(permuted, s, probs)
    g = rng.standard_normal(out.shape).astype(np.float32)
    gx, gp = moe_token_unpermute_grad(permuted, g, s, probs=probs)
    lhs = np.vdot(out, g)
    assert np.isclose(lhs, np.vdot(permuted.astype(np.float64), gx), rtol=1e-5, atol=1e-4)
    assert np.isclose(lhs, np.vdot(probs.astype(np.float64), gp), rtol=1e-5, atol=1e-4)


def test_official_example():
    gx, gp = moe_token_unpermute_grad(np.ones((3, 2), np.float32), np.ones((1, 2), np.float32),
                                      np.array([0, 1, 2], np.int32), probs=np.ones((1, 3), np.float32))
    np.testing.assert_array_equal(gx, np.ones((3, 2)))
    np.testing.assert_array_equal(gp, [[2, 2, 2]])


def test_dropped_rows_get_nothing_and_duplicates_are_errors(rng):
    s = np.array([3, 0, 2, 1], np.int32)
    gx, gp = moe_token_unpermute_grad(np.ones((2, 1), np.float32), np.array([[1.0], [2.0]], np.float32), s,
                                      probs=np.full((2, 2), 0.5, np.float32))
    np.testing.assert_array_equal(gx[:, 0], [0.5, 1.0])  # rows 0 and 1; d = 3 and 2 were dropped
    np.testing.assert_array_equal(gp, [[0, 1], [0, 2]])
    with pytest.raises(AclnnError) as e:
        moe_token_unpermute_grad(np.ones((4, 1), np.float32), np.ones((2, 1), np.float32),
                                 np.array([1, 0, 1, 2], np.int32), probs=np.ones((2, 2), np.float32))
    assert e.value.status == 161002 and "duplicate" in e.value.message


def test_plan_and_reuse(rng):
    s = rng.permutation(24).astype(np.int32)
    permuted = rng.standard_normal((20, 5)).astype(np.float32)
    g1, g2 = (rng.standard_normal((8, 5)).astype(np.float32) for _ in range(2))
    probs = rng.random((8, 3)).astype(np.float32)
    with MoeTokenUnpermuteGrad(permuted, g1, s, probs=probs) as op:
        op.plan()
        a = [x.copy() for x in op.execute()]
        op.reset_operands(unpermuted_tokens_grad=g2)
        b = op.execute()
    for x, y in zip(a, ref(permuted, g1, s, probs=probs)):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(b, ref(permuted, g2, s, probs=probs)):
        np.testing.assert_array_equal(x, y)


def _args(t=4, k=2, h=3, rows=8, dtype=np.float32):
    return [np.ones((rows, h), dtype), np.ones((t, h), dtype), np.arange(t * k, dtype=np.int32),
            np.ones((t, k), dtype), False, None, np.zeros((rows, h), dtype), np.zeros((t, k), dtype)]


def test_valid_arguments_pass(ws_status):
    assert ws_status(API, *_args()) == (0, "")
    a = _args(rows=5)
    a[6] = np.zeros((8, 3), np.float32)  # the official infershape's [T*K, H]
    assert ws_status(API, *a)[0] == 0


@pytest.mark.parametrize("i", [0, 1, 2, 6, 7])
def test_null_tensor_161001(ws_status, i):
    a = _args()
    a[i] = None
    assert ws_status(API, *a)[0] == 161001


@pytest.mark.parametrize("i,value", [(0, np.ones((8, 3), np.int32)), (1, np.ones((4, 3), np.float16)),
                                     (2, np.arange(8, dtype=np.int64)), (3, np.ones((4, 2), np.int32)),
                                     (6, np.zeros((8, 3), np.float16)), (7, np.zeros((4, 2), np.float16))])
def test_dtype_161002(ws_status, i, value):
    a = _args()
    a[i] = value
    assert ws_status(API, *a)[0] == 161002


@pytest.mark.parametrize("i,value", [(4, True), (5, [4, 4]), (0, np.ones((9, 3), np.float32)),
                                     (0, np.ones((8, 2), np.float32)), (1, np.ones((4, 3, 1), np.float32)),
                                     (2, np.arange(6, dtype=np.int32)), (3, np.ones((3, 2), np.float32)),
                                     (3, np.ones(8, np.float32)), (6, np.zeros((7, 3), np.float32)),
                                     (7, np.zeros((4, 3), np.float32))])
def test_shape_and_attribute_rules_561002(ws_status, i, value):
    a = _args()
    a[i] = value
    status, msg = ws_status(API, *a)
    assert status == 561002 and API in msg
