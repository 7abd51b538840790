"""aclnnMoeTokenPermuteWithRoutingMap against the numpy reference (dropless with exact, fewer and uneven experts per
token; drop_and_pad with short and long expert columns) and every documented rule."""
from __future__ import annotations

import numpy as np
import pytest

from aclnn_moe import AclnnError, ArgumentError
from aclnn_moe._dtypes import bfloat16
from aclnn_moe.capi import lib
from aclnn_moe.ops.token_permute_with_routing_map import (MoeTokenPermuteWithRoutingMap,
                                                          moe_token_permute_with_routing_map, routing_map_of)
from aclnn_moe.reference.token_permute_with_routing_map import moe_token_permute_with_routing_map as ref

API = "aclnnMoeTokenPermuteWithRoutingMap"
FLOATS = (np.float32, np.float16, bfloat16)


def assert_same(got, exp):
    for name, g, r in zip(("permuted_tokens", "permuted_probs", "sorted_indices"), got, exp):
        assert (g is None) == (r is None), name
        if g is None:
            continue
        assert g.dtype == r.dtype and g.shape == r.shape, f"{name}: {g.dtype}{g.shape} != {r.dtype}{r.shape}"
        np.testing.assert_array_equal(g.view(np.uint8), r.view(np.uint8), err_msg=name)


def run_both(tokens, routing_map, **kw):
    got = moe_token_permute_with_routing_map(tokens, routing_map, **kw)
    assert_same(got, ref(tokens, routing_map, **kw))
    return got


def megatron_permute(tokens, routing_map):
    """Megatron's permute with a routing map (the gather form the op's golden is built on)."""
    gather = np.argwhere(routing_map.T.astype(bool))[:, 1]
    return tokens[gather], gather


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("drop", [False, True])
@pytest.mark.parametrize("t,e,k,h", [(1, 1, 1, 1), (3, 4, 2, 4), (17, 8, 3, 33), (128, 64, 8, 128), (40, 5, 5, 8)])
def test_matches_reference(rng, dtype, drop, t, e, k, h):
    tokens = rng.standard_normal((t, h)).astype(dtype)
    m = routing_map_of(rng, t, e, k)
    probs = rng.random((t, e)).astype(dtype)
    # without drop_and_pad, num_out_tokens // T must cover every row's experts (see the error test below)
    for n in sorted({t * k, min(t * k + t - 1, t * e), t * e} | ({0, t, e, t * e // 2} if drop else set())):
        run_both(tokens, m, probs=probs, num_out_tokens=n, drop_and_pad=drop)
    run_both(tokens, m.astype(np.int8), num_out_tokens=t * k, drop_and_pad=drop)  # int8 map, no probs


def test_dropless_matches_megatron(rng):
    tokens = rng.standard_normal((30, 16)).astype(np.float32)
    m = routing_map_of(rng, 30, 12, 4)
    probs = rng.random((30, 12)).astype(np.float32)
    permuted, pp, sorted_indices = moe_token_permute_with_routing_map(tokens, m, probs=probs, num_out_tokens=120)
    expect, gather = megatron_permute(tokens, m)
    np.testing.assert_array_equal(permuted, expect)
    np.testing.assert_array_equal(pp, probs.T[m.T])
    np.testing.assert_array_equal(sorted_indices, np.argsort(gather, kind="stable"))
    # sorted_indices is token-major: token t's rows are sorted_indices[t*K:(t+1)*K]
    np.testing.assert_array_equal(permuted[sorted_indices].reshape(30, 4, 16), np.repeat(tokens[:, None], 4, 1))


def test_fewer_experts_than_topk_leaves_minus_one_slots(rng):
    t, e, k = 12, 6, 3
    m = routing_map_of(rng, t, e, k)
    m[[1, 5, 7]] = False
    m[5, 2] = True  # token 5 keeps one expert
    tokens = rng.standard_normal((t, 4)).astype(np.float16)
    probs = rng.random((t, e)).astype(np.float16)
    permuted, pp, sorted_indices = run_both(tokens, m, probs=probs, num_out_tokens=t * k)
    nnz = int(m.sum())
    assert (sorted_indices == -1).sum() == t * k - nnz
    np.testing.assert_array_equal(sorted_indices[1 * k:2 * k], [-1, -1, -1])
    assert sorted_indices[5 * k] >= 0 and (sorted_indices[5 * k + 1:6 * k] == -1).all()
    assert np.all(permuted[nnz:] == 0) and np.all(pp[nnz:] == 0)


def test_aligned_count_with_uneven_rows_follows_the_golden(rng):
    """T*K entries in total but rows of 1 and 3: the aligned path, the golden's stable argsort."""
    m = np.array([[1, 1, 1, 0], [0, 1, 0, 0], [1, 0, 0, 1]], bool)  # 3 + 1 + 2 = 6 = T*K with K = 2
    tokens = np.arange(3, dtype=np.float32)[:, None].repeat(2, 1)
    permuted, _, sorted_indices = run_both(tokens, m, num_out_tokens=6)
    expect, gather = megatron_permute(tokens, m)
    np.testing.assert_array_equal(permuted, expect)
    np.testing.assert_array_equal(sorted_indices, np.argsort(gather, kind="stable"))


def test_a_row_over_topk_outside_the_aligned_case_is_an_error(rng):
    m = np.zeros((4, 5), bool)
    m[0, :3] = True  # 3 experts with K = 2, 3 entries in total (not T*K = 8)
    tokens = rng.standard_normal((4, 2)).astype(np.float32)
    with pytest.raises(AclnnError) as e:
        moe_token_permute_with_routing_map(tokens, m, num_out_tokens=8)
    assert e.value.status == lib.ACLNN_ERR_PARAM_INVALID and "row 0" in e.value.message
    with pytest.raises(ValueError):
        ref(tokens, m, num_out_tokens=8)


def test_drop_and_pad_pads_with_unrouted_tokens(rng):
    t, e = 8, 3
    m = np.zeros((t, e), bool)
    m[[1, 4], 0] = True          # expert 0: 2 routed tokens, capacity 3
    m[:, 1] = True               # expert 1: every token, capacity 3 drops the rest
    tokens = rng.standard_normal((t, 4)).astype(bfloat16)
    probs = rng.random((t, e)).astype(np.float32)  # fp32 probs with bf16 tokens
    permuted, pp, sorted_indices = run_both(tokens, m, probs=probs, num_out_tokens=9, drop_and_pad=True)
    np.testing.assert_array_equal(sorted_indices, [1, 4, 0, 0, 1, 2, 0, 1, 2])
    np.testing.assert_array_equal(permuted.view(np.uint16), tokens[sorted_indices].view(np.uint16))
    np.testing.assert_array_equal(pp, probs[sorted_indices, [0, 0, 0, 1, 1, 1, 2, 2, 2]])


@pytest.mark.parametrize("drop,n,rows", [(False, None, 10), (False, 25, 20), (False, 9, 0), (True, None, 8),
                                         (True, 11, 8), (True, 3, 0), (False, 40, 40), (True, 40, 40)])
def test_num_out_tokens_alignment(rng, drop, n, rows):
    tokens = rng.standard_normal((10, 3)).astype(np.float32)
    m = routing_map_of(rng, 10, 4, (10 if n is None else n) // 10) if not drop else rng.random((10, 4)) < 0.5
    got = run_both(tokens, m, num_out_tokens=n, drop_and_pad=drop)
    assert got[0].shape == (rows, 3) and got[2].shape == (rows,)


def test_empty_routing_map_returns_without_work():
    out = moe_token_permute_with_routing_map(np.zeros((0, 4), np.float32), np.zeros((0, 3), bool), num_out_tokens=0)
    assert out[0].shape == (0, 4) and out[1] is None and out[2].shape == (0,)
    out = moe_token_permute_with_routing_map(np.zeros((5, 4), np.float32), np.zeros((5, 0), bool), num_out_tokens=0)
    assert out[0].shape == (0, 4)


def test_int8_map_values_other_than_0_and_1_are_an_error():
    m = np.array([[1, 0], [2, 1]], np.int8)
    with pytest.raises(AclnnError) as e:
        moe_token_permute_with_routing_map(np.ones((2, 3), np.float32), m, num_out_tokens=2)
    assert e.value.status == lib.ACLNN_ERR_PARAM_INVALID and "routing_map[1, 0]" in e.value.message


def test_non_contiguous_inputs(rng):
    tokens = rng.standard_normal((16, 24)).astype(np.float32)[:, ::2]
    m = np.asfortranarray(routing_map_of(rng, 16, 6, 2))
    probs = rng.random((6, 16)).astype(np.float32).T
    run_both(tokens, m, probs=probs, num_out_tokens=32)
    run_both(tokens, m, probs=probs, num_out_tokens=32, drop_and_pad=True)


def test_plan_and_reuse(rng):
    tokens = rng.standard_normal((16, 8)).astype(np.float16)
    m = routing_map_of(rng, 16, 4, 2)
    with MoeTokenPermuteWithRoutingMap(tokens, m, num_out_tokens=32) as op:
        op.plan()
        first = [None if a is None else a.copy() for a in op.execute()]
        m2 = routing_map_of(rng, 16, 4, 2)
        op.reset_operands(routing_map=m2)
        second = op.execute()
    assert_same(first, ref(tokens, m, num_out_tokens=32))
    assert_same(second, ref(tokens, m2, num_out_tokens=32))


# ---------------------------------------------------------------------------------------------- status codes
def _args(t=4, e=3, h=2, n=8, drop=False, probs=True, dtype=np.float32, pdtype=None):
    align = e if drop else t
    rows = n // align * align
    pdtype = pdtype or dtype
    m = np.zeros((t, e), bool)
    m[np.arange(t), 0] = True
    m[np.arange(t), 1] = True
    return dict(x=np.ones((t, h), dtype), m=m, p=np.ones((t, e), pdtype) if probs else None, n=n, drop=drop,
                out=np.zeros((rows, h), dtype), pout=np.zeros(rows, pdtype) if probs else None,
                s=np.zeros(rows, np.int32))


def _status(ws_status, a):
    return ws_status(API, a["x"], a["m"], a["p"], a["n"], a["drop"], a["out"], a["pout"], a["s"])


def test_valid_arguments_pass(ws_status):
    assert _status(ws_status, _args()) == (0, "")
    assert _status(ws_status, _args(probs=False))[0] == 0
    assert _status(ws_status, _args(drop=True, n=7))[0] == 0
    assert _status(ws_status, _args(dtype=bfloat16, pdtype=np.float32))[0] == 0


@pytest.mark.parametrize("field", ["x", "m", "out", "s", "pout"])
def test_null_tensor_161001(ws_status, field):
    a = _args()
    a[field] = None
    status, msg = _status(ws_status, a)
    assert status == lib.ACLNN_ERR_PARAM_NULLPTR and API in msg


@pytest.mark.parametrize("field,value", [
    ("x", np.ones((4, 2), np.int32)),
    ("m", np.zeros((4, 3), np.int32)),
    ("m", np.zeros((4, 3), np.uint8)),
    ("p", np.ones((4, 3), np.float16)),   # probs follow tokens (only fp32 with bf16 tokens may differ)
    ("out", np.zeros((8, 2), np.float16)),
    ("pout", np.zeros(8, np.float16)),
    ("s", np.zeros(8, np.int64)),
])
def test_dtype_161002(ws_status, field, value):
    a = _args()
    a[field] = value
    assert _status(ws_status, a)[0] == lib.ACLNN_ERR_PARAM_INVALID


@pytest.mark.parametrize("change", [
    dict(m=np.zeros((4, 3, 1), bool)),
    dict(p=np.ones(12, np.float32)),
    dict(p=np.ones((4, 2), np.float32)),
    dict(p=np.ones((3, 3), np.float32)),
    dict(x=np.ones((4, 2, 1), np.float32)),
    dict(n=-1),
    dict(n=13),
    dict(out=np.zeros((4, 2), np.float32)),
    dict(pout=np.zeros(4, np.float32)),
])
def test_op_api_rules_161002(ws_status, change):
    a = _args()
    a.update(change)
    status, msg = _status(ws_status, a)
    assert status == lib.ACLNN_ERR_PARAM_INVALID, msg
    assert API in msg


@pytest.mark.parametrize("change", [
    dict(x=np.ones((5, 2), np.float32)),
    dict(out=np.zeros((8, 3), np.float32)),
    dict(s=np.zeros(7, np.int32)),
    dict(pout=np.zeros((8, 1), np.float32)),
])
def test_tiling_rules_561103(ws_status, change):
    a = _args()
    a.update(change)
    status, msg = _status(ws_status, a)
    assert status == lib.ACLNN_ERR_INNER_NULLPTR, msg


def test_topk_limit_561103(ws_status):
    a = _args(t=1, e=600, n=513, probs=False)
    assert _status(ws_status, a)[0] == lib.ACLNN_ERR_INNER_NULLPTR
    a = _args(t=1, e=600, n=512, probs=False)
    assert _status(ws_status, a)[0] == 0


def test_facade_rejects_bad_arguments_early():
    with pytest.raises(ArgumentError):
        moe_token_permute_with_routing_map(np.ones((2, 2), np.int32), np.zeros((2, 2), bool))
    with pytest.raises(ArgumentError):
        moe_token_permute_with_routing_map(np.ones((2, 2), np.float32), np.zeros((2, 2), np.float32))
