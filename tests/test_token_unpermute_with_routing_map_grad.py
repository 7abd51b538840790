"""aclnnMoeTokenUnpermuteWithRoutingMapGrad against the numpy reference, as the adjoint of the forward's numpy
reference (permuted tokens and probs, both modes), the official example's call, a planned executor rebound to new
host arrays, and the rules with their status codes."""
from __future__ import annotations

import numpy as np
import pytest

import aclnn_moe as am
from aclnn_moe import AclnnError
from aclnn_moe._dtypes import bfloat16
from aclnn_moe.ops.token_permute_with_routing_map import routing_map_of
from aclnn_moe.ops.token_unpermute_with_routing_map_grad import moe_token_unpermute_with_routing_map_grad as grad
from aclnn_moe.reference.token_permute_with_routing_map import moe_token_permute_with_routing_map as permute
from aclnn_moe.reference.token_unpermute_with_routing_map import moe_token_unpermute_with_routing_map as unpermute
from aclnn_moe.reference.token_unpermute_with_routing_map_grad import (
    moe_token_unpermute_with_routing_map_grad as ref)

API = "aclnnMoeTokenUnpermuteWithRoutingMapGrad"


def bits(a):
    return a.view(np.uint16) if a.dtype.itemsize == 2 else a


def sparse_map(rng, t, e, k):
    """At most k experts per token (some none): the forward's -1 slots."""
    m = routing_map_of(rng, t, e, k)
    m &= rng.random((t, e)) < 0.7
    return m


def case(rng, t, e, k, h, dtype, drop, with_probs, pdtype=None, sparse=False):
    m = sparse_map(rng, t, e, k) if sparse else routing_map_of(rng, t, e, k)
    tokens = rng.standard_normal((t, h)).astype(dtype)
    probs = rng.random((t, e)).astype(pdtype or dtype) if with_probs else None
    permuted, _, s = permute(tokens, m, probs=probs, num_out_tokens=t * k, drop_and_pad=drop)
    if drop:
        _, oi, pid, _ = unpermute(permuted, s, [t, h], probs=probs, drop_and_pad=True)
    else:
        oi, pid = s, s
    return dict(unpermuted_tokens_grad=rng.standard_normal((t, h)).astype(dtype), out_index=oi, permuted_token_id=pid,
                routing_map=m if with_probs else None, permuted_tokens=permuted if with_probs else None, probs=probs,
                drop_and_pad=drop, restore_shape=[t, h])


def check(kw):
    got, exp = grad(**kw), ref(**kw)
    for g, x in zip(got, exp):
        if x is None:
            assert g is None
            continue
        assert g.dtype == x.dtype and g.shape == x.shape
        np.testing.assert_array_equal(bits(g), bits(x))
    return got


@pytest.mark.parametrize("dtype", (np.float32, np.float16, bfloat16))
@pytest.mark.parametrize("drop", (False, True))
@pytest.mark.parametrize("with_probs", (False, True))
@pytest.mark.parametrize("t,e,k,h", [(1, 1, 1, 1), (3, 4, 2, 4), (19, 7, 3, 37), (128, 16, 8, 300)])
def test_matches_reference(rng, dtype, drop, with_probs, t, e, k, h):
    check(case(rng, t, e, k, h, dtype, drop, with_probs))


@pytest.mark.parametrize("drop", (False, True))
def test_float32_probs_with_bfloat16_tokens(rng, drop):
    got = check(case(rng, 24, 6, 2, 40, bfloat16, drop, True, pdtype=np.float32))
    assert got[0].dtype == bfloat16 and got[1].dtype == np.float32


@pytest.mark.parametrize("with_probs", (False, True))
def test_sparse_map_minus_one_slots(rng, with_probs):
    kw = case(rng, 40, 8, 3, 24, np.float32, False, with_probs, sparse=True)
    assert (kw["out_index"] == -1).any()
    pg, _ = check(kw)
    unused = np.setdiff1d(np.arange(pg.shape[0]), kw["out_index"])
    assert unused.size and not pg[unused].any()  # rows no slot selects are zero


def test_large_topk(rng):
    check(case(rng, 3, 600, 512, 3, np.float32, False, True))


@pytest.mark.parametrize("drop", (False, True))
@pytest.mark.parametrize("sparse", (False, True))
@pytest.mark.parametrize("t,e,k,h", [(40, 16, 4, 24), (33, 6, 2, 8), (8, 3, 3, 70)])
def test_adjoint_of_the_forward(rng, drop, sparse, t, e, k, h):
    """The forward's numpy reference is bilinear in (permuted_tokens, probs): <fwd(x, p), g> equals
    <x, permuted_tokens_grad> and <p, probs_grad>, with the grad of the same (x, p)."""
    m = sparse_map(rng, t, e, k) if sparse and not drop else routing_map_of(rng, t, e, k)
    tokens = rng.standard_normal((t, h)).astype(np.float32)
    p = rng.standard_normal((t, e)).astype(np.float32)
    x, _, s = permute(tokens, m, num_out_tokens=t * k, drop_and_pad=drop)
    x = rng.standard_normal(x.shape).astype(np.float32)  # any permuted tokens of that layout
    y, oi, pid, _ = unpermute(x, s, [t, h], probs=p, routing_map=m, drop_and_pad=drop)
    g = rng.standard_normal(y.shape).astype(np.float32)
    if not drop:
        oi = pid = s
    xg, pgr = grad(g, oi, pid, m, x, p, drop, [t, h])
    f64 = np.float64
    lhs = np.vdot(y.astype(f64), g)
    assert np.isclose(lhs, np.vdot(x.astype(f64), xg), rtol=1e-5, atol=1e-4)
    assert np.isclose(lhs, np.vdot(p.astype(f64), pgr), rtol=1e-5, atol=1e-4)


def test_official_example_call():
    """the official example: T=1, H=2, E=2, K=2, all ones, no drop/pad -> permutedTokensGrad ones, probsGrad 2"""
    ones = np.ones
    pg, prg = grad(ones((1, 2), np.float32), np.array([0, 1], np.int32), np.array([0, 0], np.int32),
                   ones((1, 2), bool), ones((2, 2), np.float32), ones((1, 2), np.float32), False, None)
    np.testing.assert_array_equal(pg, ones((2, 2), np.float32))
    np.testing.assert_array_equal(prg, np.full((1, 2), 2, np.float32))


def test_mindspeed_no_probs_call(rng):
    """MindSpeed without probs and drop_and_pad: sorted_indices as both index inputs, routing_map still given"""
    t, e, k, h = 10, 5, 2, 6
    m = routing_map_of(rng, t, e, k)
    x, _, s = permute(rng.standard_normal((t, h)).astype(np.float32), m, num_out_tokens=t * k)
    g = rng.standard_normal((t, h)).astype(np.float32)
    pg, prg = grad(g, s, s, m, None, None, False, [t, h])
    assert prg is None
    np.testing.assert_array_equal(pg[s], np.repeat(g, k, axis=0))


@pytest.mark.parametrize("drop", (False, True))
def test_plan_and_rebind_to_new_host_arrays(rng, drop):
    """an explicit plan executed twice with different host arrays (aclSetInputTensorAddr on every input index)"""
    kw1 = case(rng, 12, 4, 2, 8, np.float32, drop, True)
    kw2 = case(rng, 12, 4, 2, 8, np.float32, drop, True)
    op = am.MoeTokenUnpermuteWithRoutingMapGrad(**kw1).plan()
    try:
        for kw in (kw1, kw2):
            if kw is kw2:
                op.reset_operands(**{n: kw[n] for n in ("unpermuted_tokens_grad", "out_index", "permuted_token_id",
                                                        "routing_map", "permuted_tokens", "probs")})
            got, exp = op.execute(), ref(**kw)
            for a, b in zip(got, exp):
                np.testing.assert_array_equal(a, b)
        # the function form twice: the second call is a plan-cache hit, rebinding every input
        for kw in (kw1, kw2, kw1):
            for a, b in zip(grad(**kw), ref(**kw)):
                np.testing.assert_array_equal(a, b)
    finally:
        op.free()


_THREADS_SCRIPT = """
import hashlib, numpy as np, aclnn_moe as am
from aclnn_moe.ops.token_permute_with_routing_map import routing_map_of
from aclnn_moe.reference.token_permute_with_routing_map import moe_token_permute_with_routing_map as permute
from aclnn_moe.reference.token_unpermute_with_routing_map import moe_token_unpermute_with_routing_map as unpermute
rng = np.random.default_rng(7)
t, e, k, h = 300, 16, 4, 200
m = routing_map_of(rng, t, e, k)
out = ()
for drop in (False, True):
    x = rng.standard_normal((t, h)).astype(np.float16)
    p = rng.random((t, e)).astype(np.float16)
    px, _, s = permute(x, m, probs=p, num_out_tokens=t * k, drop_and_pad=drop)
    _, oi, pid, _ = unpermute(px, s, [t, h], probs=p, routing_map=m, drop_and_pad=drop)
    if not drop:
        oi = pid = s
    out += am.moe_token_unpermute_with_routing_map_grad(x, oi, pid, m, px, p, drop)
print(hashlib.sha256(b"".join(np.ascontiguousarray(o).tobytes() for o in out)).hexdigest())
"""


def test_results_do_not_depend_on_the_thread_count():
    """the kernel splits rows and dot products across threads, every sum in a fixed order: the same bits for 1 or 5"""
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


@pytest.mark.parametrize("drop,name,pos,bad", [(False, "out_index", 3, 12), (False, "out_index", 3, -2),
                                               (False, "out_index", 3, None), (True, "out_index", 0, -1),
                                               (True, "out_index", 0, 12), (True, "out_index", 0, None),
                                               (True, "permuted_token_id", 2, 6), (True, "permuted_token_id", 2, -1)])
def test_index_values_are_checked_161002(rng, drop, name, pos, bad):
    kw = case(rng, 6, 4, 2, 3, np.float32, drop, True)
    v = kw[name].copy()
    v[pos] = v[pos + 1] if bad is None else bad  # None: a duplicate
    with pytest.raises(AclnnError) as e:
        grad(**{**kw, name: v})
    assert e.value.status == 161002 and name in e.value.message


def test_routing_map_values_must_be_0_or_1(rng):
    kw = case(rng, 6, 4, 2, 3, np.float32, False, True)
    m = kw["routing_map"].astype(np.int8)
    m[0, 0] = 2
    with pytest.raises(AclnnError) as e:
        grad(**{**kw, "routing_map": m})
    assert e.value.status == 161002 and "routing_map" in e.value.message


def test_more_map_entries_than_slots_161002(rng):
    kw = case(rng, 6, 4, 2, 3, np.float32, False, True)
    with pytest.raises(AclnnError) as e:
        grad(**{**kw, "routing_map": np.ones((6, 4), bool)})
    assert e.value.status == 161002


def _args(t=4, e=3, k=2, h=5, dtype=np.float32, drop=False):
    m = np.zeros((t, e), np.int8)
    m[:, :k] = 1
    n = t * k
    return [np.ones((t, h), dtype), np.arange(n, dtype=np.int32), np.arange(n, dtype=np.int32) % t, m,
            np.ones((n, h), dtype), np.ones((t, e), dtype), drop, None, np.zeros((n, h), dtype),
            np.zeros((t, e), dtype)]


def test_valid_arguments_pass(ws_status):
    assert ws_status(API, *_args()) == (0, "")
    a = _args()
    a[3:6] = [None, None, None]
    a[9] = None
    assert ws_status(API, *a) == (0, "")  # without probs
    assert ws_status(API, *_args(dtype=bfloat16)[:5], np.ones((4, 3), np.float32), False, [4, 5],
                     np.zeros((8, 5), bfloat16), np.zeros((4, 3), np.float32)) == (0, "")


@pytest.mark.parametrize("i", [0, 1, 2, 8, 9])
def test_null_tensor_161001(ws_status, i):
    a = _args()
    a[i] = None
    assert ws_status(API, *a)[0] == 161001


@pytest.mark.parametrize("i,value", [(0, np.ones((4, 5), np.int32)), (1, np.arange(8, dtype=np.int64)),
                                     (2, np.arange(8, dtype=np.float32)), (3, np.zeros((4, 3), np.int32)),
                                     (4, np.ones((8, 5), np.float16)), (5, np.ones((4, 3), np.float16)),
                                     (8, np.zeros((8, 5), np.float16)), (9, np.zeros((4, 3), np.float16))])
def test_dtype_rules_161002(ws_status, i, value):
    a = _args()
    a[i] = value
    status, msg = ws_status(API, *a)
    assert status == 161002 and API in msg


def test_fp16_tokens_with_fp32_probs_561002(ws_status):
    a = _args(dtype=np.float16)
    a[5], a[9] = np.ones((4, 3), np.float32), np.zeros((4, 3), np.float32)
    assert ws_status(API, *a)[0] == 561002


@pytest.mark.parametrize("i,value", [(0, np.ones((4, 5, 1), np.float32)), (1, np.arange(8, dtype=np.int32)[None]),
                                     (2, np.arange(7, dtype=np.int32)), (1, np.arange(7, dtype=np.int32)),
                                     (3, None), (4, None), (3, np.zeros((4, 2), np.int8)),
                                     (3, np.zeros((4, 3, 1), np.int8)), (4, np.ones((7, 5), np.float32)),
                                     (5, np.ones((3, 3), np.float32)), (5, np.ones((4, 1), np.float32)),
                                     (8, np.zeros((8, 4), np.float32)), (9, np.zeros((4, 2), np.float32))])
def test_shape_rules_561002(ws_status, i, value):
    a = _args()
    a[i] = value
    status, msg = ws_status(API, *a)
    assert status == 561002 and API in msg


def test_drop_and_pad_shape_rules_561002(ws_status):
    a = _args(t=4, e=4, k=2, drop=True)  # L = 8 = E * C, C = 2 <= T = 4
    assert ws_status(API, *a)[0] == 0
    a = _args(drop=True)
    assert ws_status(API, *a)[0] == 561002  # L = 8 is not a multiple of E = 3
    a = _args(t=2, e=1, k=1, drop=True)
    a[1] = a[2] = np.arange(4, dtype=np.int32) % 2  # C = L / E = 4 > T = 2
    a[4], a[8] = np.ones((4, 5), np.float32), np.zeros((4, 5), np.float32)
    assert ws_status(API, *a)[0] == 561002


def test_topk_limits_561002(ws_status):
    assert ws_status(API, *_args(t=1, e=600, k=513, h=2))[0] == 561002
    a = _args(t=2, e=3, k=3)
    a[1] = a[2] = np.arange(8, dtype=np.int32)  # K = 4 > E = 3
    a[4], a[8] = np.ones((8, 5), np.float32), np.zeros((8, 5), np.float32)
    assert ws_status(API, *a)[0] == 561002


def test_empty(rng):
    kw = dict(unpermuted_tokens_grad=np.zeros((0, 4), np.float32), out_index=np.zeros(0, np.int32),
              permuted_token_id=np.zeros(0, np.int32))
    pg, prg = grad(**kw)
    assert pg.shape == (0, 4) and prg is None
