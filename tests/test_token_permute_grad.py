"""aclnnMoeTokenPermuteGrad against the numpy reference, as the adjoint of the MoeTokenPermute forward (its math
written here: stable sort by expert, num_out_tokens keeps the first rows), the official example, and the rules."""
from __future__ import annotations

import numpy as np
import pytest

from aclnn_moe import AclnnError
from aclnn_moe._dtypes import bfloat16
from aclnn_moe.ops.token_permute_grad import MoeTokenPermuteGrad, moe_token_permute_grad
from aclnn_moe.reference.token_permute_grad import moe_token_permute_grad as ref

API = "aclnnMoeTokenPermuteGrad"


def bits(a):
    return a.view(np.uint16) if a.dtype.itemsize == 2 else a


def permute(tokens, indices, num_out_tokens=0):
    """MoeTokenPermute: sorted_indices[p] = rank of pair p in the stable expert order; row d < n_out of the
    output is tokens[p // K]"""
    t, k = indices.shape
    first = np.argsort(indices.reshape(-1), kind="stable")
    s = np.empty(t * k, np.int64)
    s[first] = np.arange(t * k)
    n_out = num_out_tokens if num_out_tokens > 0 else num_out_tokens + t * k
    n_out = min(max(n_out, 0), t * k)
    out = np.zeros((n_out, tokens.shape[1]), tokens.dtype)
    keep = s < n_out
    out[s[keep]] = tokens[np.nonzero(keep)[0] // k]
    return out, s.astype(np.int32)


@pytest.mark.parametrize("dtype", (np.float32, np.float16, bfloat16))
@pytest.mark.parametrize("t,k,h", [(1, 1, 1), (3, 2, 4), (19, 3, 37), (128, 8, 256), (10, 512, 3)])
def test_matches_reference(rng, dtype, t, k, h):
    s = rng.permutation(t * k).astype(np.int32)
    for rows in {t * k, t * k // 2, 1, 0}:
        g = rng.standard_normal((rows, h)).astype(dtype)
        got, exp = moe_token_permute_grad(g, s, k), ref(g, s, k)
        assert got.dtype == exp.dtype and got.shape == (t, h)
        np.testing.assert_array_equal(bits(got), bits(exp))


@pytest.mark.parametrize("t,k,h,e,used,n_out", [(40, 4, 24, 16, 5, 0), (33, 2, 8, 64, 64, 50), (16, 8, 5, 8, 1, -7),
                                                 (50, 1, 12, 4, 2, 1)])
def test_adjoint_of_the_forward(rng, t, k, h, e, used, n_out):
    tokens = rng.standard_normal((t, h)).astype(np.float32)
    experts = rng.choice(e, used, replace=False)
    indices = experts[rng.integers(0, used, (t, k))].astype(np.int32)
    perm, s = permute(tokens, indices, n_out)
    g = rng.standard_normal(perm.shape).astype(np.float32)
    tg = moe_token_permute_grad(g, s, k)
    assert np.isclose(np.vdot(perm.astype(np.float64), g), np.vdot(tokens.astype(np.float64), tg), rtol=1e-5,
                      atol=1e-4)


def test_official_example():
    out = moe_token_permute_grad(np.array([[1, 2], [3, 4]], np.float32), np.array([0, 1], np.int32), 2)
    np.testing.assert_array_equal(out, [[4, 6]])


def test_indices_past_the_rows_are_skipped_negative_is_an_error():
    # the official example passes float bits as int32: 1.0f = 1065353216 is skipped as the kernel skips it
    g = np.array([[1, 2], [3, 4]], np.float32)
    np.testing.assert_array_equal(moe_token_permute_grad(g, np.array([0, 1065353216], np.int32), 2), [[1, 2]])
    with pytest.raises(AclnnError) as e:
        moe_token_permute_grad(g, np.array([0, -1], np.int32), 2)
    assert e.value.status == 161002 and "negative" in e.value.message


def test_plan_and_reuse(rng):
    s = rng.permutation(24).astype(np.int32)
    g1, g2 = (rng.standard_normal((24, 5)).astype(np.float32) for _ in range(2))
    with MoeTokenPermuteGrad(g1, s, 3) as op:
        op.plan()
        a = op.execute().copy()
        op.reset_operands(permuted_output_grad=g2)
        b = op.execute()
    np.testing.assert_array_equal(a, ref(g1, s, 3))
    np.testing.assert_array_equal(b, ref(g2, s, 3))


def _args(t=4, k=2, h=3, rows=8, dtype=np.float32):
    return [np.ones((rows, h), dtype), np.arange(t * k, dtype=np.int32), k, False, np.zeros((t, h), dtype)]


def test_valid_arguments_pass(ws_status):
    assert ws_status(API, *_args()) == (0, "")


@pytest.mark.parametrize("i", [0, 1, 4])
def test_null_tensor_161001(ws_status, i):
    a = _args()
    a[i] = None
    assert ws_status(API, *a)[0] == 161001


@pytest.mark.parametrize("i,value", [(0, np.ones((8, 3), np.int32)), (1, np.arange(8, dtype=np.int64)),
                                     (4, np.zeros((4, 3), np.float16))])
def test_dtype_161002(ws_status, i, value):
    a = _args()
    a[i] = value
    assert ws_status(API, *a)[0] == 161002


@pytest.mark.parametrize("i,value", [(2, 0), (2, 513), (2, 3), (3, True), (0, np.ones((9, 3), np.float32)),
                                     (0, np.ones((8, 3, 1), np.float32)), (1, np.arange(8, dtype=np.int32)[None]),
                                     (4, np.zeros((4, 2), np.float32)), (4, np.zeros((8, 3), np.float32))])
def test_shape_and_attribute_rules_561002(ws_status, i, value):
    a = _args()
    a[i] = value
    status, msg = ws_status(API, *a)
    assert status == 561002 and API in msg
