"""aclnnMoeTokenUnpermuteWithEpGrad against the numpy reference, as the adjoint of the MoeTokenUnpermuteWithEp
forward (numpy reference) in the tokens and in the probs, the official example, and every documented rule."""
from __future__ import annotations

import numpy as np
import pytest

from aclnn_moe import AclnnError, ArgumentError
from aclnn_moe._dtypes import bfloat16
from aclnn_moe.ops.token_unpermute_with_ep_grad import MoeTokenUnpermuteWithEpGrad, moe_token_unpermute_with_ep_grad
from aclnn_moe.reference.token_permute_with_ep import moe_token_permute_with_ep as permute_forward
from aclnn_moe.reference.token_unpermute_with_ep import moe_token_unpermute_with_ep as forward
from aclnn_moe.reference.token_unpermute_with_ep_grad import moe_token_unpermute_with_ep_grad as ref
from aclnn_moe.reference.token_unpermute_with_ep_grad import unpermute_with_ep_grad

API = "aclnnMoeTokenUnpermuteWithEpGrad"
FLOAT_DTYPES = (np.float32, np.float16, bfloat16)


def bits(a):
    return a.view(np.uint16) if a is not None and a.dtype.itemsize == 2 else a


def run_both(grad, s, **kw):
    got = moe_token_unpermute_with_ep_grad(grad, s, **kw)
    exp = ref(grad, s, **kw)
    for g, e in zip(got, exp):
        assert (g is None) == (e is None)
        if g is not None:
            assert g.dtype == e.dtype and g.shape == e.shape
            np.testing.assert_array_equal(bits(g), bits(e))
    return got


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("probs_dtype", FLOAT_DTYPES + (None,))
@pytest.mark.parametrize("t,k,h", [(1, 1, 1), (3, 2, 2), (19, 3, 37), (128, 8, 256), (64, 1, 96), (5, 4, 200)])
def test_matches_reference(rng, dtype, probs_dtype, t, k, h):
    n = t * k
    s = rng.permutation(n).astype(np.int32)
    grad = rng.standard_normal((t, h)).astype(dtype)
    probs = rng.random((t, k)).astype(probs_dtype) if probs_dtype is not None else None
    for window in (None, [0, n], [n // 4, n - n // 5], [n // 2, n], [0, 1], [n - 1, n], [3, 3], [-n // 2, -1]):
        for rows in (None, n):
            if probs is None and rows is None:
                permuted = None
            else:
                lo, hi = (0, n) if window is None else window
                lo, hi = (lo + n if lo < 0 else lo), (hi + n if hi < 0 else hi)
                permuted = rng.standard_normal((rows or max(hi - lo, 0), h)).astype(dtype)
            run_both(grad, s, permuted_tokens=permuted, probs=probs, range=window, topk_num=k)


@pytest.mark.parametrize("t,k,h,e,used", [(40, 4, 24, 16, 5), (33, 2, 70, 64, 64), (16, 8, 5, 8, 1)])
def test_adjoint_of_the_forward(rng, t, k, h, e, used):
    """out = unpermute(permuted, probs) is linear in each: <out, g> == <permuted, grad_permuted> ==
    <probs, grad_probs>, for EP windows at the edges, zero probs and empty experts"""
    n = t * k
    tokens = rng.standard_normal((t, h)).astype(np.float32)
    experts = rng.choice(e, used, replace=False)
    indices = experts[rng.integers(0, used, (t, k))].astype(np.int32)
    probs = rng.random((t, k)).astype(np.float32)
    probs[rng.random((t, k)) < 0.2] = 0
    bounds = sorted({0, 1, n // 3, n // 2, n - 1, n})
    for a in bounds:
        for b in bounds:
            if b <= a:
                continue
            _, s, _ = permute_forward(tokens, indices, range=[a, b])
            permuted = rng.standard_normal((b - a, h)).astype(np.float32)
            out = forward(permuted, s, probs=probs, range=[a, b])
            g = rng.standard_normal(out.shape).astype(np.float32)
            gx, gp = moe_token_unpermute_with_ep_grad(g, s, permuted_tokens=permuted, probs=probs, range=[a, b])
            lhs = np.vdot(out.astype(np.float64), g)
            assert np.isclose(lhs, np.vdot(permuted.astype(np.float64), gx), rtol=1e-5, atol=1e-4), (a, b)
            assert np.isclose(lhs, np.vdot(probs.astype(np.float64), gp), rtol=1e-5, atol=1e-4), (a, b)
            # without probs: the gradient of sum_k permuted[d - start]
            out1 = forward(permuted, s, num_topk=k, range=[a, b])
            g1 = rng.standard_normal(out1.shape).astype(np.float32)
            gx1, none = moe_token_unpermute_with_ep_grad(g1, s, range=[a, b], topk_num=k)
            assert none is None and gx1.shape == permuted.shape
            assert np.isclose(np.vdot(out1.astype(np.float64), g1), np.vdot(permuted.astype(np.float64), gx1),
                              rtol=1e-5, atol=1e-4)


def test_official_example():
    """The ops-transformer example in fp32: K comes from probs (topkNum 1 is ignored)."""
    permuted = np.ones((3, 2), np.float32)
    grad = np.ones((1, 2), np.float32)
    probs = np.ones((1, 3), np.float32)
    gx, gp = moe_token_unpermute_with_ep_grad(grad, np.array([0, 1, 2], np.int32), permuted_tokens=permuted,
                                              probs=probs, topk_num=1)
    np.testing.assert_array_equal(gx, np.ones((3, 2)))
    np.testing.assert_array_equal(gp, [[2, 2, 2]])


def test_window_rows_are_offset_by_start_in_both_branches(rng):
    """the doc writes the output row without "- start" in one branch; the kernel subtracts it in both"""
    s = np.array([4, 0, 2, 5, 1, 3], np.int32)
    grad = np.array([[1.0], [10.0], [100.0]], np.float32)
    gx, _ = moe_token_unpermute_with_ep_grad(grad, s, range=[2, 5], topk_num=2)
    np.testing.assert_array_equal(gx[:, 0], [10, 100, 1])  # rows d - 2 for d = 2, 3, 4
    gx, gp = moe_token_unpermute_with_ep_grad(grad, s, permuted_tokens=np.ones((3, 1), np.float32),
                                              probs=np.full((3, 2), 0.5, np.float32), range=[2, 5])
    np.testing.assert_array_equal(gx[:, 0], [5, 50, 0.5])
    np.testing.assert_array_equal(gp, [[1, 0], [10, 0], [0, 100]])


def test_unselected_rows_are_zero_and_infershape_rows_accepted(ws_status, rng):
    t, k, h = 4, 2, 3
    s = rng.permutation(8).astype(np.int32)
    grad = rng.standard_normal((t, h)).astype(np.float32)
    out = np.full((t * k, h), 7, np.float32)  # the official infershape: [T*K, H]
    pout = np.zeros((t, k), np.float32)
    status, msg = ws_status(API, grad, s, None, None, False, None, [2, 6], k, out, pout, run=True)
    assert status == 0, msg
    exp, _ = unpermute_with_ep_grad(grad, s, range=[2, 6], topk_num=k, out_rows=t * k)
    np.testing.assert_array_equal(out, exp)
    assert np.all(out[4:] == 0)


def test_repeatable_and_plannable(rng):
    s = rng.permutation(64).astype(np.int32)
    g1 = rng.standard_normal((16, 33)).astype(np.float32)
    g2 = rng.standard_normal((16, 33)).astype(np.float32)
    permuted = rng.standard_normal((40, 33)).astype(np.float32)
    probs = rng.random((16, 4)).astype(np.float32)
    kw = dict(permuted_tokens=permuted, probs=probs, range=[10, 50])
    with MoeTokenUnpermuteWithEpGrad(g1, s, **kw) as op:
        op.plan()
        a = [x.copy() for x in op.execute()]
        b = [x.copy() for x in op.execute()]
        op.reset_operands(unpermuted_tokens_grad=g2)
        c = op.execute()
    for x, y, z in zip(a, b, ref(g1, s, **kw)):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x, z)
    for x, z in zip(c, ref(g2, s, **kw)):
        np.testing.assert_array_equal(x, z)


def test_non_contiguous_inputs(rng):
    s = rng.permutation(36).astype(np.int32)
    grad = rng.standard_normal((12, 30)).astype(bfloat16)[:, ::3]
    permuted = rng.standard_normal((20, 20)).astype(bfloat16)[:, ::2]
    probs = rng.random((3, 12)).astype(np.float16).T
    run_both(grad, s, permuted_tokens=permuted, probs=probs, range=[8, 28])


def test_empty():
    gx, gp = moe_token_unpermute_with_ep_grad(np.zeros((0, 4), np.float32), np.zeros(0, np.int32),
                                              permuted_tokens=np.zeros((0, 4), np.float32),
                                              probs=np.zeros((0, 2), np.float32))
    assert gx.shape == (0, 4) and gp.shape == (0, 2)


# ---------------------------------------------------------------------------------------------- data checks
def test_negative_and_duplicate_indices_are_errors(rng):
    s = rng.permutation(8).astype(np.int32)
    bad = s.copy()
    bad[5] = -3
    with pytest.raises(AclnnError) as e:
        moe_token_unpermute_with_ep_grad(np.ones((4, 2), np.float32), bad, topk_num=2)
    assert e.value.status == 161002 and "sorted_indices[5] = -3" in e.value.message
    dup = s.copy()
    dup[1] = dup[6]
    with pytest.raises(AclnnError) as e:
        moe_token_unpermute_with_ep_grad(np.ones((4, 2), np.float32), dup, topk_num=2)
    assert e.value.status == 161002 and "duplicate" in e.value.message
    v = int(dup[1])
    window = [0, v] if v > 0 else [1, 8]  # the duplicated value is outside: it selects nothing, no error
    out, _ = moe_token_unpermute_with_ep_grad(np.ones((4, 2), np.float32), dup, topk_num=2, range=window)
    assert out.shape == (window[1] - window[0], 2)


# ---------------------------------------------------------------------------------------------- status codes
def _args(t=4, k=2, h=3, window=(1, 5), probs=True, dtype=np.float32):
    rows = window[1] - window[0] if window else t * k
    return dict(grad=np.ones((t, h), dtype), sorted=np.arange(t * k, dtype=np.int32),
                permuted=np.ones((rows, h), dtype), probs=np.ones((t, k), dtype) if probs else None,
                padded=False, restore=None, range=list(window) if window else None, topk=k,
                out=np.zeros((rows, h), dtype), pout=np.zeros((t, k), dtype))


def _status(ws_status, a, run=False):
    return ws_status(API, a["grad"], a["sorted"], a["permuted"], a["probs"], a["padded"], a["restore"], a["range"],
                     a["topk"], a["out"], a["pout"], run=run)


def test_valid_arguments_pass(ws_status):
    assert _status(ws_status, _args()) == (0, "")
    a = _args(probs=False, window=None)
    a["permuted"] = None
    assert _status(ws_status, a)[0] == 0
    a = _args()
    a["probs"], a["pout"] = np.ones((4, 2), np.float16), np.zeros((4, 2), np.float16)  # probs in any float dtype
    assert _status(ws_status, a)[0] == 0
    a = _args()
    a["restore"], a["topk"] = [4, 3], 1  # topkNum is ignored when probs are given
    assert _status(ws_status, a)[0] == 0


@pytest.mark.parametrize("field", ["grad", "sorted", "out", "pout", "permuted"])
def test_null_tensor_161001(ws_status, field):
    a = _args()
    a[field] = None
    status, msg = _status(ws_status, a)
    assert status == 161001 and API in msg


@pytest.mark.parametrize("field,value", [
    ("grad", np.ones((4, 3), np.int32)), ("sorted", np.arange(8, dtype=np.int64)),
    ("permuted", np.ones((4, 3), np.float16)), ("probs", np.ones((4, 2), np.int32)),
    ("out", np.zeros((4, 3), np.float16)), ("pout", np.zeros((4, 2), np.float16)),
])
def test_dtype_161002(ws_status, field, value):
    a = _args()
    a[field] = value
    assert _status(ws_status, a)[0] == 161002


@pytest.mark.parametrize("change", [
    dict(padded=True), dict(range=[1, 2, 3]), dict(range=[5, 1]), dict(grad=np.ones((4, 3, 1), np.float32)),
    dict(sorted=np.arange(8, dtype=np.int32).reshape(4, 2)), dict(sorted=np.arange(6, dtype=np.int32)),
    dict(probs=np.ones(8, np.float32)), dict(probs=np.ones((3, 2), np.float32)),
    dict(probs=np.ones((1, 513), np.float32), grad=np.ones((1, 3), np.float32), sorted=np.arange(513, dtype=np.int32)),
    dict(permuted=np.ones((3, 3), np.float32)), dict(permuted=np.ones((4, 2), np.float32)),
    dict(restore=[4, 4]), dict(out=np.zeros((5, 3), np.float32)), dict(out=np.zeros((4, 2), np.float32)),
    dict(pout=np.zeros((4, 3), np.float32)),
])
def test_shape_and_attribute_rules_561002(ws_status, change):
    a = _args()
    a.update(change)
    status, msg = _status(ws_status, a)
    assert status == 561002, msg
    assert API in msg


def test_topk_rules_without_probs_561002(ws_status):
    for topk, ok in ((0, False), (513, False), (3, False), (2, True)):
        a = _args(probs=False, window=None)
        a["topk"] = topk
        assert (_status(ws_status, a)[0] == 0) == ok, topk


def test_facade_rejects_bad_dtypes_early():
    with pytest.raises(ArgumentError):
        moe_token_unpermute_with_ep_grad(np.ones((2, 2), np.float32), np.arange(2, dtype=np.int64))


_THREADS_SCRIPT = """
import hashlib, numpy as np, aclnn_moe as am
rng = np.random.default_rng(7)
t, k, h = 300, 8, 200
s = rng.permutation(t * k).astype(np.int32)
g = rng.standard_normal((t, h)).astype(np.float32)
x = rng.standard_normal((t * k, h)).astype(np.float32)
p = rng.random((t, k)).astype(np.float32)
out = am.moe_token_unpermute_with_ep_grad(g, s, permuted_tokens=x, probs=p)
out += (am.moe_init_routing_v2_grad(x, s, k),)
out += (am.moe_token_permute_with_ep_grad(x[:900], s, num_topk=k, range=[100, 1000])[0],)
print(hashlib.sha256(b"".join(np.ascontiguousarray(o).tobytes() for o in out)).hexdigest())
"""


def test_results_do_not_depend_on_the_thread_count():
    """both grad kernels split output rows across threads, every sum in a fixed order: the same bits for 1 or 5
    threads"""
    import os
    import subprocess
    import sys

    digests = set()
    for n in ("1", "5"):
        env = dict(os.environ, ACLNN_MOE_NUM_THREADS=n)
        r = subprocess.run([sys.executable, "-P", "-c", _THREADS_SCRIPT], env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        digests.add(r.stdout.strip())
    assert len(digests) == 1
