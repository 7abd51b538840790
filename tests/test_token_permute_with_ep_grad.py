"""aclnnMoeTokenPermuteWithEpGrad against the numpy reference, as the adjoint of the MoeTokenPermuteWithEp forward
(numpy reference) over EP windows, the official example, and every documented rule."""
from __future__ import annotations

import numpy as np
import pytest

from aclnn_moe import AclnnError, ArgumentError
from aclnn_moe._dtypes import bfloat16
from aclnn_moe.ops.token_permute_grad import moe_token_permute_grad
from aclnn_moe.ops.token_permute_with_ep_grad import MoeTokenPermuteWithEpGrad, moe_token_permute_with_ep_grad
from aclnn_moe.reference.token_permute_with_ep import moe_token_permute_with_ep as forward
from aclnn_moe.reference.token_permute_with_ep_grad import moe_token_permute_with_ep_grad as ref

API = "aclnnMoeTokenPermuteWithEpGrad"
FLOAT_DTYPES = (np.float32, np.float16, bfloat16)


def bits(a):
    return a.view(np.uint16) if a is not None and a.dtype.itemsize == 2 else a


def run_both(grad, s, **kw):
    got = moe_token_permute_with_ep_grad(grad, s, **kw)
    exp = ref(grad, s, **kw)
    for g, e in zip(got, exp):
        assert (g is None) == (e is None)
        if g is not None:
            assert g.dtype == e.dtype and g.shape == e.shape
            np.testing.assert_array_equal(bits(g), bits(e))
    return got


def routing(rng, t, k, e, used=None):
    """expert ids for [t, k] drawn from `used` experts of e (the others stay empty)"""
    experts = rng.choice(e, size=used or e, replace=False)
    return experts[rng.integers(0, len(experts), (t, k))].astype(np.int32)


def windows(n):
    return [None, [0, n], [n // 4, n - n // 5], [n // 2, n], [0, 1], [n - 1, n], [0, 0], [n, n], [n // 3, n // 3]]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("t,k,h", [(1, 1, 1), (3, 2, 2), (19, 3, 37), (128, 8, 256), (64, 1, 96), (7, 5, 130)])
@pytest.mark.parametrize("with_probs", [True, False])
def test_matches_reference(rng, dtype, t, k, h, with_probs):
    n = t * k
    s = rng.permutation(n).astype(np.int32)
    for window in windows(n):
        rows = n if window is None else window[1] - window[0]
        for r in {rows, rows * k} if window is not None else {rows, n // 2}:
            grad = rng.standard_normal((r, h)).astype(dtype)
            pg = rng.standard_normal(r).astype(dtype) if with_probs and window is not None else None
            tg, pgr = run_both(grad, s, permuted_probs_output_grad=pg, num_topk=k, range=window)
            assert tg.shape == (t, h) and (pgr is None or pgr.shape == (t, k))


@pytest.mark.parametrize("t,k,h,e,used", [(40, 4, 24, 16, 5), (33, 2, 8, 64, 64), (16, 8, 5, 8, 1), (50, 1, 12, 4, 2)])
def test_adjoint_of_the_forward(rng, t, k, h, e, used):
    """<forward(tokens, probs), (g, gp)> == <(tokens, probs), grad(g, gp)> over windows at the edges and in the
    middle, routings with empty experts (float64 dot products of fp32 data)"""
    n = t * k
    tokens = rng.standard_normal((t, h)).astype(np.float32)
    probs = rng.random((t, k)).astype(np.float32)
    indices = routing(rng, t, k, e, used)
    bounds = sorted({0, 1, n // 3, n // 2, n - 1, n})
    for a in bounds:
        for b in bounds:
            if b <= a:  # start == end is the forward's "whole permutation" special case
                continue
            perm, s, pp = forward(tokens, indices, probs=probs, range=[a, b])
            g = rng.standard_normal(perm.shape).astype(np.float32)
            gp = rng.standard_normal(pp.shape).astype(np.float32)
            tg, pg = moe_token_permute_with_ep_grad(g, s, permuted_probs_output_grad=gp, num_topk=k, range=[a, b])
            lhs = np.vdot(perm.astype(np.float64), g) + np.vdot(pp.astype(np.float64), gp)
            rhs = np.vdot(tokens.astype(np.float64), tg) + np.vdot(probs.astype(np.float64), pg)
            assert np.isclose(lhs, rhs, rtol=1e-5, atol=1e-4), (a, b, lhs, rhs)


def test_ep_ranks_sum_to_the_full_gradient(rng):
    t, k, h, e, ranks = 30, 4, 16, 12, 3
    tokens = rng.standard_normal((t, h)).astype(np.float32)
    indices = routing(rng, t, k, e, 7)
    full, s, _ = forward(tokens, indices)
    g = rng.standard_normal(full.shape).astype(np.float32)
    whole = moe_token_permute_grad(g, s, k)
    total = np.zeros((t, h), np.float32)
    bounds = np.linspace(0, t * k, ranks + 1).astype(int)
    for a, b in zip(bounds[:-1], bounds[1:]):
        total += moe_token_permute_with_ep_grad(g[a:b], s, num_topk=k, range=[int(a), int(b)])[0]
    np.testing.assert_allclose(total, whole, rtol=1e-5, atol=1e-5)


def test_official_example():
    grad = np.array([[2, 2], [1, 1], [3, 3], [2, 2]], np.float32)
    s = np.array([2, 0, 4, 1, 5, 3], np.int32)
    pg = np.array([0.2, 0.5, 0.4, 0.4], np.float32)
    tg, pgr = moe_token_permute_with_ep_grad(grad, s, permuted_probs_output_grad=pg, num_topk=2, range=[1, 5])
    np.testing.assert_array_equal(tg, [[1, 1], [4, 4], [3, 3]])
    np.testing.assert_array_equal(pgr, np.array([[0.5, 0], [0.4, 0.2], [0, 0.4]], np.float32))
    # the doc's shape, [(end - start) * K, H]: only the first end - start rows are read
    tg2, _ = moe_token_permute_with_ep_grad(np.concatenate([grad, 100 * grad]), s, num_topk=2, range=[1, 5])
    np.testing.assert_array_equal(tg2, tg)


def test_without_range_it_is_the_permute_grad(rng):
    s = rng.permutation(24).astype(np.int32)
    g = rng.standard_normal((17, 6)).astype(np.float16)  # num_out_tokens 17: rows >= 17 were dropped
    tg, pg = moe_token_permute_with_ep_grad(g, s, permuted_probs_output_grad=np.ones(17, np.float16), num_topk=3)
    assert pg is None  # ignored, as documented
    np.testing.assert_array_equal(bits(tg), bits(moe_token_permute_grad(g, s, 3)))


def test_accumulates_in_fp32_then_rounds_once():
    g = np.array([[1.0], [2.0 ** -8], [2.0 ** -8]], np.float32).astype(bfloat16)
    tg, _ = moe_token_permute_with_ep_grad(g, np.arange(3, dtype=np.int32), num_topk=3, range=[0, 3])
    assert float(tg[0, 0]) == 1 + 2.0 ** -7


def test_repeatable_and_plannable(rng):
    s = rng.permutation(64).astype(np.int32)
    g1 = rng.standard_normal((40, 33)).astype(np.float32)
    g2 = rng.standard_normal((40, 33)).astype(np.float32)
    with MoeTokenPermuteWithEpGrad(g1, s, num_topk=4, range=[10, 50]) as op:
        op.plan()
        a = op.execute()[0].copy()
        b = op.execute()[0].copy()
        op.reset_operands(permuted_tokens_output_grad=g2)
        c = op.execute()[0]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, ref(g1, s, num_topk=4, range=[10, 50])[0])
    np.testing.assert_array_equal(c, ref(g2, s, num_topk=4, range=[10, 50])[0])


def test_non_contiguous_inputs(rng):
    s = rng.permutation(36).astype(np.int32)
    g = rng.standard_normal((20, 30)).astype(np.float16)[:, ::3]
    pg = rng.standard_normal(40).astype(np.float16)[::2]
    run_both(g, s, permuted_probs_output_grad=pg, num_topk=3, range=[8, 28])


def test_empty():
    tg, pg = moe_token_permute_with_ep_grad(np.zeros((0, 4), np.float32), np.zeros(0, np.int32), num_topk=2,
                                            range=[0, 0], permuted_probs_output_grad=np.zeros(0, np.float32))
    assert tg.shape == (0, 4) and pg.shape == (0, 2)


# ---------------------------------------------------------------------------------------------- data checks
def test_negative_index_is_an_error(rng):
    s = rng.permutation(8).astype(np.int32)
    s[5] = -3
    with pytest.raises(AclnnError) as e:
        moe_token_permute_with_ep_grad(np.ones((4, 2), np.float32), s, num_topk=2, range=[0, 4])
    assert e.value.status == 161002 and "sorted_indices[5] = -3" in e.value.message


def test_indices_past_the_window_are_skipped():
    s = np.array([0, 1, 1 << 30, 3], np.int32)  # as the kernel, a value past every window selects nothing
    tg, _ = moe_token_permute_with_ep_grad(np.ones((4, 2), np.float32), s, num_topk=2, range=[0, 4])
    np.testing.assert_array_equal(tg, [[2, 2], [1, 1]])


# ---------------------------------------------------------------------------------------------- status codes
def _args(t=4, k=2, h=3, window=(1, 5), probs=True, dtype=np.float32):
    rows = window[1] - window[0] if window else t * k
    return dict(grad=np.ones((rows, h), dtype), sorted=np.arange(t * k, dtype=np.int32),
                probs=np.ones(rows, dtype) if probs else None, topk=k, range=list(window) if window else None,
                padded=False, tok=np.zeros((t, h), dtype), pout=np.zeros((t, k), dtype))


def _status(ws_status, a, run=False):
    return ws_status(API, a["grad"], a["sorted"], a["probs"], a["topk"], a["range"], a["padded"], a["tok"],
                     a["pout"], run=run)


def test_valid_arguments_pass(ws_status):
    assert _status(ws_status, _args()) == (0, "")
    assert _status(ws_status, _args(probs=False, window=None))[0] == 0
    a = _args(window=None)
    a["probs"] = np.ones(3, np.float32)  # without a range the probs gradient is ignored: its length is not checked
    assert _status(ws_status, a)[0] == 0
    a["probs"] = np.ones(3, np.int32)  # (its dtype is, as every given tensor's)
    assert _status(ws_status, a)[0] == 161002


@pytest.mark.parametrize("field", ["grad", "sorted", "tok", "pout"])
def test_null_tensor_161001(ws_status, field):
    a = _args()
    a[field] = None
    status, msg = _status(ws_status, a)
    assert status == 161001 and API in msg


@pytest.mark.parametrize("field,value", [
    ("grad", np.ones((4, 3), np.int32)),
    ("sorted", np.arange(8, dtype=np.int64)),
    ("probs", np.ones(4, np.float16)),
    ("tok", np.zeros((4, 3), np.float16)),
    ("pout", np.zeros((4, 2), bfloat16)),
])
def test_dtype_161002(ws_status, field, value):
    a = _args()
    a[field] = value
    assert _status(ws_status, a)[0] == 161002


@pytest.mark.parametrize("change", [
    dict(topk=0), dict(topk=513), dict(topk=3), dict(padded=True), dict(range=[1, 2, 3]), dict(range=[5, 1]),
    dict(range=[-1, 3]), dict(range=[2, 9]), dict(grad=np.ones((3, 3), np.float32)),
    dict(grad=np.ones((4, 3, 1), np.float32)), dict(sorted=np.arange(8, dtype=np.int32).reshape(4, 2)),
    dict(probs=np.ones(5, np.float32)), dict(probs=np.ones((4, 1), np.float32)),
    dict(tok=np.zeros((4, 2), np.float32)), dict(tok=np.zeros((3, 3), np.float32)),
    dict(pout=np.zeros((4, 3), np.float32)), dict(pout=np.zeros(8, np.float32)),
])
def test_shape_and_attribute_rules_561002(ws_status, change):
    a = _args()
    a.update(change)
    status, msg = _status(ws_status, a)
    assert status == 561002, msg
    assert API in msg


def test_facade_rejects_bad_dtypes_early():
    with pytest.raises(ArgumentError):
        moe_token_permute_with_ep_grad(np.ones((2, 2), np.float32), np.arange(2, dtype=np.int64))
