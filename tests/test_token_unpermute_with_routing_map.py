"""aclnnMoeTokenUnpermuteWithRoutingMap against the numpy reference (dropless with -1 slots, drop_and_pad with
mixed-precision probs, the permute round trip) and every documented rule."""
from __future__ import annotations

import numpy as np
import pytest

from aclnn_moe import AclnnError, ArgumentError
from aclnn_moe._dtypes import bfloat16
from aclnn_moe.capi import lib
from aclnn_moe.ops.token_permute_with_routing_map import moe_token_permute_with_routing_map, routing_map_of
from aclnn_moe.ops.token_unpermute_with_routing_map import (MoeTokenUnpermuteWithRoutingMap,
                                                            moe_token_unpermute_with_routing_map)
from aclnn_moe.reference.token_unpermute_with_routing_map import moe_token_unpermute_with_routing_map as ref

API = "aclnnMoeTokenUnpermuteWithRoutingMap"
FLOATS = (np.float32, np.float16, bfloat16)


def assert_same(got, exp):
    for name, g, r in zip(("unpermuted_tokens", "out_index", "permute_token_id", "permute_probs"), got, exp):
        assert (g is None) == (r is None), name
        if g is None:
            continue
        assert g.dtype == r.dtype and g.shape == r.shape, f"{name}: {g.dtype}{g.shape} != {r.dtype}{r.shape}"
        np.testing.assert_array_equal(g.view(np.uint8), r.view(np.uint8), err_msg=name)


def run_both(*args, **kw):
    got = moe_token_unpermute_with_routing_map(*args, **kw)
    assert_same(got, ref(*args, **kw))
    return got


def case(rng, t, e, k, h, dtype, pdtype, drop):
    tokens = rng.standard_normal((t, h)).astype(dtype)
    m = routing_map_of(rng, t, e, k) if not drop else rng.random((t, e)) < 0.4
    probs = rng.random((t, e)).astype(pdtype) if pdtype is not None else None
    permuted, _, sorted_indices = moe_token_permute_with_routing_map(tokens, m, probs=probs, num_out_tokens=t * k,
                                                                     drop_and_pad=drop)
    return tokens, m, probs, permuted, sorted_indices


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("with_probs", [True, False])
@pytest.mark.parametrize("drop", [False, True])
@pytest.mark.parametrize("t,e,k,h", [(1, 1, 1, 1), (3, 4, 2, 4), (17, 8, 3, 33), (128, 64, 8, 128)])
def test_matches_reference(rng, dtype, with_probs, drop, t, e, k, h):
    _, m, probs, permuted, sorted_indices = case(rng, t, e, k, h, dtype, dtype if with_probs else None, drop)
    kw = dict(probs=probs, routing_map=m if with_probs else None, drop_and_pad=drop)
    run_both(permuted, sorted_indices, [t, h], **kw)


@pytest.mark.parametrize("drop", [False, True])
def test_mixed_precision_probs(rng, drop):
    _, m, probs, permuted, sorted_indices = case(rng, 40, 8, 2, 64, bfloat16, np.float32, drop)
    run_both(permuted, sorted_indices, [40, 64], probs=probs, routing_map=m, drop_and_pad=drop)


def test_round_trip_restores_weighted_tokens(rng):
    tokens, m, probs, permuted, sorted_indices = case(rng, 30, 6, 2, 16, np.float32, np.float32, False)
    out = moe_token_unpermute_with_routing_map(permuted, sorted_indices, [30, 16], probs=probs, routing_map=m)[0]
    weight = np.where(m, probs, 0).sum(1)  # each token's selected probs
    np.testing.assert_allclose(out, tokens * weight[:, None], rtol=1e-5, atol=1e-6)
    out = moe_token_unpermute_with_routing_map(permuted, sorted_indices, [30, 16])[0]  # no probs: sum of copies
    np.testing.assert_allclose(out, tokens * 2, rtol=1e-6)


def test_minus_one_slots_are_skipped(rng):
    """The official golden's NON_PADDED_MINUS_ONE case: some slots hold -1 and zero probs."""
    t, e, k, h = 8, 6, 3, 5
    m = routing_map_of(rng, t, e, k)
    probs = np.where(m, rng.random((t, e)), 0).astype(np.float16)
    sorted_indices = np.arange(t * k, dtype=np.int32)
    sorted_indices[[0, 5, 9, 10]] = -1
    probs_flat = probs[m]
    probs_flat[[0, 5, 9, 10]] = 0
    probs[m] = probs_flat
    permuted = rng.standard_normal((t * k, h)).astype(np.float16)
    out = run_both(permuted, sorted_indices, [t, h], probs=probs, routing_map=m)
    assert np.isfinite(out[0].astype(np.float32)).all()


def test_padded_outputs_are_the_sorted_token_ids(rng):
    _, m, probs, permuted, sorted_indices = case(rng, 10, 3, 2, 4, np.float32, np.float32, True)
    out, out_index, token_id, pp = moe_token_unpermute_with_routing_map(permuted, sorted_indices, [10, 4],
                                                                         probs=probs, drop_and_pad=True)
    np.testing.assert_array_equal(out_index, np.argsort(sorted_indices, kind="stable"))
    np.testing.assert_array_equal(token_id, np.sort(sorted_indices))
    cap = len(sorted_indices) // 3
    np.testing.assert_array_equal(pp, probs[sorted_indices, np.arange(len(sorted_indices)) // cap])


def test_non_padded_index_outputs_are_the_slot_layout(rng):
    _, m, probs, permuted, sorted_indices = case(rng, 6, 4, 2, 3, np.float32, np.float32, False)
    _, out_index, token_id, pp = moe_token_unpermute_with_routing_map(permuted, sorted_indices, [6, 3],
                                                                      probs=probs, routing_map=m)
    np.testing.assert_array_equal(out_index, np.arange(12))
    np.testing.assert_array_equal(token_id, np.arange(12) // 2)
    np.testing.assert_array_equal(pp, probs[m])  # token-major masked select


def test_padded_token_id_out_of_range_is_an_error(rng):
    permuted = rng.standard_normal((6, 2)).astype(np.float32)
    sorted_indices = np.array([0, 1, 2, 3, 9, 1], np.int32)
    with pytest.raises(AclnnError) as e:
        moe_token_unpermute_with_routing_map(permuted, sorted_indices, [4, 2], probs=np.ones((4, 2), np.float32),
                                             drop_and_pad=True)
    assert e.value.status == lib.ACLNN_ERR_PARAM_INVALID and "sorted_indices[4]" in e.value.message


def test_map_selecting_more_than_the_slots_is_an_error(rng):
    m = np.ones((2, 3), bool)
    with pytest.raises(AclnnError) as e:
        moe_token_unpermute_with_routing_map(np.ones((4, 2), np.float32), np.arange(4, dtype=np.int32), [2, 2],
                                             probs=np.ones((2, 3), np.float32), routing_map=m)
    assert e.value.status == lib.ACLNN_ERR_PARAM_INVALID


def test_empty_inputs():
    out = moe_token_unpermute_with_routing_map(np.zeros((0, 4), np.float32), np.zeros(0, np.int32), [3, 4])
    np.testing.assert_array_equal(out[0], np.zeros((3, 4), np.float32))
    out = moe_token_unpermute_with_routing_map(np.zeros((0, 4), np.float32), np.full(6, -1, np.int32), [3, 4])
    np.testing.assert_array_equal(out[0], np.zeros((3, 4), np.float32))
    np.testing.assert_array_equal(out[1], np.zeros(6, np.int32))


def test_plan_and_reuse(rng):
    _, m, probs, permuted, sorted_indices = case(rng, 16, 4, 2, 8, np.float16, np.float16, False)
    kw = dict(probs=probs, routing_map=m)
    with MoeTokenUnpermuteWithRoutingMap(permuted, sorted_indices, [16, 8], **kw) as op:
        op.plan()
        first = [None if a is None else a.copy() for a in op.execute()]
        permuted2 = rng.standard_normal(permuted.shape).astype(np.float16)
        op.reset_operands(permuted_tokens=permuted2)
        second = op.execute()
    assert_same(first, ref(permuted, sorted_indices, [16, 8], **kw))
    assert_same(second, ref(permuted2, sorted_indices, [16, 8], **kw))


# ---------------------------------------------------------------------------------------------- status codes
def _args(t=4, e=3, k=2, h=2, probs=True, padded=False, dtype=np.float32):
    m = np.zeros((t, e), bool)
    m[:, :k] = True
    n = t * k
    return dict(x=np.ones((n, h), dtype), s=np.arange(n, dtype=np.int32) % (t if padded else n), m=m,
                p=np.ones((t, e), dtype) if probs else None, padded=padded, restore=[t, h],
                out=np.zeros((t, h), dtype), oi=np.zeros(n, np.int32), tid=np.zeros(n, np.int32),
                pp=np.zeros(n, dtype) if probs else None)


def _status(ws_status, a):
    return ws_status(API, a["x"], a["s"], a["m"], a["p"], a["padded"], a["restore"], a["out"], a["oi"], a["tid"],
                     a["pp"])


def test_valid_arguments_pass(ws_status):
    assert _status(ws_status, _args()) == (0, "")
    assert _status(ws_status, _args(probs=False))[0] == 0
    a = _args(e=2, padded=True)
    assert _status(ws_status, a)[0] == 0


@pytest.mark.parametrize("field", ["x", "s", "out", "oi", "tid", "pp"])
def test_null_tensor_161001(ws_status, field):
    a = _args()
    a[field] = None
    status, msg = _status(ws_status, a)
    assert status == lib.ACLNN_ERR_PARAM_NULLPTR and API in msg


def test_probs_and_restore_shape_both_null_161001(ws_status):
    a = _args(probs=False)
    a["restore"] = None
    assert _status(ws_status, a)[0] == lib.ACLNN_ERR_PARAM_NULLPTR
    a = _args()
    a["m"] = None  # probs need the map to find each slot's prob
    assert _status(ws_status, a)[0] == lib.ACLNN_ERR_PARAM_NULLPTR


@pytest.mark.parametrize("field,value", [
    ("x", np.ones((8, 2), np.int32)),
    ("s", np.arange(8, dtype=np.int64)),
    ("m", np.zeros((4, 3), np.int32)),
    ("p", np.ones((4, 3), np.float16)),
    ("out", np.zeros((4, 2), np.float16)),
    ("oi", np.zeros(8, np.int64)),
    ("tid", np.zeros(8, np.int64)),
    ("pp", np.zeros(8, np.float16)),
])
def test_dtype_161002(ws_status, field, value):
    a = _args()
    a[field] = value
    assert _status(ws_status, a)[0] == lib.ACLNN_ERR_PARAM_INVALID


@pytest.mark.parametrize("change", [
    dict(x=np.ones(16, np.float32)),
    dict(s=np.zeros((8, 1), np.int32)),
    dict(out=np.zeros(8, np.float32)),
    dict(m=np.zeros((4, 2), bool)),
])
def test_rank_rules_161002(ws_status, change):
    a = _args()
    a.update(change)
    assert _status(ws_status, a)[0] == lib.ACLNN_ERR_PARAM_INVALID


@pytest.mark.parametrize("change", [
    dict(out=np.zeros((5, 2), np.float32)),
    dict(out=np.zeros((4, 3), np.float32)),
    dict(oi=np.zeros(7, np.int32)),
    dict(tid=np.zeros((8, 1), np.int32)),
    dict(pp=np.zeros(9, np.float32)),
    dict(s=np.arange(7, dtype=np.int32), oi=np.zeros(7, np.int32), tid=np.zeros(7, np.int32),
         pp=np.zeros(7, np.float32)),
])
def test_tiling_and_copy_rules_561103(ws_status, change):
    a = _args()
    a.update(change)
    status, msg = _status(ws_status, a)
    assert status == lib.ACLNN_ERR_INNER_NULLPTR, msg


def test_topk_limit_561103(ws_status):
    a = _args(t=1, e=600, k=513)
    assert _status(ws_status, a)[0] == lib.ACLNN_ERR_INNER_NULLPTR
    a = _args(t=1, e=600, k=512)
    assert _status(ws_status, a)[0] == 0


def test_facade_rejects_bad_arguments_early():
    with pytest.raises(ArgumentError):
        moe_token_unpermute_with_routing_map(np.ones((2, 2), np.int32), np.zeros(2, np.int32), [2, 2])
    with pytest.raises(ArgumentError):
        moe_token_unpermute_with_routing_map(np.ones((2, 2), np.float32), np.zeros((2, 1), np.int32), [2, 2])
