"""aclnnMoeTokenPermuteWithRoutingMapGrad against the numpy reference, as the adjoint of the forward's numpy
reference (tokens and probs, both modes), the official example's call, and the rules with their status codes."""
from __future__ import annotations

import numpy as np
import pytest

from aclnn_moe import AclnnError
from aclnn_moe._dtypes import bfloat16
from aclnn_moe.ops.token_permute_with_routing_map import routing_map_of
from aclnn_moe.ops.token_permute_with_routing_map_grad import moe_token_permute_with_routing_map_grad as grad
from aclnn_moe.reference.token_permute_with_routing_map import moe_token_permute_with_routing_map as fwd
from aclnn_moe.reference.token_permute_with_routing_map_grad import moe_token_permute_with_routing_map_grad as ref

API = "aclnnMoeTokenPermuteWithRoutingMapGrad"


def bits(a):
    return a.view(np.uint16) if a.dtype.itemsize == 2 else a


def sparse_map(rng, t, e, k):
    """At most k experts per token (some none): the forward's -1 slots."""
    m = routing_map_of(rng, t, e, k)
    m &= rng.random((t, e)) < 0.7
    return m


def case(rng, t, e, k, h, dtype, drop, with_probs, sparse=False):
    m = sparse_map(rng, t, e, k) if sparse else routing_map_of(rng, t, e, k)
    _, _, s = fwd(np.zeros((t, 1), np.float32), m, num_out_tokens=t * k, drop_and_pad=drop)
    rows = s.shape[0]
    g = rng.standard_normal((rows, h)).astype(dtype)
    pg = rng.standard_normal(rows).astype(dtype) if with_probs else None
    return dict(permuted_tokens_output_grad=g, permuted_probs_output_grad=pg, sorted_indices=s, routing_map=m,
                experts_num=e, tokens_num=t, drop_and_pad=drop)


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
@pytest.mark.parametrize("t,e,k,h", [(1, 1, 1, 1), (3, 4, 2, 4), (19, 7, 3, 37), (128, 16, 8, 256)])
def test_matches_reference(rng, dtype, drop, with_probs, t, e, k, h):
    check(case(rng, t, e, k, h, dtype, drop, with_probs))


@pytest.mark.parametrize("dtype", (np.float32, bfloat16))
def test_sparse_map_minus_one_slots(rng, dtype):
    kw = case(rng, 40, 8, 3, 24, dtype, False, True, sparse=True)
    assert (kw["sorted_indices"] == -1).any()
    check(kw)


def test_large_topk(rng):
    check(case(rng, 3, 600, 512, 3, np.float32, False, True))


@pytest.mark.parametrize("drop", (False, True))
@pytest.mark.parametrize("sparse", (False, True))
@pytest.mark.parametrize("t,e,k,h", [(40, 16, 4, 24), (33, 6, 2, 8), (8, 3, 3, 5)])
def test_adjoint_of_the_forward(rng, drop, sparse, t, e, k, h):
    """<forward(x, p), (g, pg)> == <(x, p), grad(g, pg)>: the forward's numpy reference is linear in tokens and in
    probs, and the grad operator is its transpose."""
    m = sparse_map(rng, t, e, k) if sparse and not drop else routing_map_of(rng, t, e, k)
    x = rng.standard_normal((t, h)).astype(np.float32)
    p = rng.standard_normal((t, e)).astype(np.float32)
    px, pp, s = fwd(x, m, probs=p, num_out_tokens=t * k, drop_and_pad=drop)
    g = rng.standard_normal(px.shape).astype(np.float32)
    pg = rng.standard_normal(pp.shape).astype(np.float32)
    tg, prg = grad(g, pg, s, m, e, t, drop)
    f64 = np.float64
    assert np.isclose(np.vdot(px.astype(f64), g), np.vdot(x.astype(f64), tg), rtol=1e-5, atol=1e-4)
    assert np.isclose(np.vdot(pp.astype(f64), pg), np.vdot(p.astype(f64), prg), rtol=1e-5, atol=1e-4)


def test_official_example_shape():
    # the official call: drop_and_pad, E*C rows, probs gradient 0.1, sorted indices 0..E*C-1 (token ids)
    t, e, c, h = 64, 8, 4, 16
    g = np.arange(e * c * h, dtype=np.float32).reshape(e * c, h)
    s = np.arange(e * c, dtype=np.int32)
    tg, pgr = grad(g, np.full(e * c, 0.1, np.float32), s, np.ones((t, e), np.int8), e, t, True)
    np.testing.assert_array_equal(tg[: e * c], g)
    assert not tg[e * c:].any()
    assert pgr[5, 5 // c] == np.float32(0.1) and np.count_nonzero(pgr) == e * c


def test_no_probs_output_given(ws_status, rng):
    kw = case(rng, 4, 3, 2, 5, np.float32, False, True)
    out = np.zeros((4, 5), np.float32)
    st, _ = ws_status(API, kw["permuted_tokens_output_grad"], kw["permuted_probs_output_grad"], kw["sorted_indices"],
                      kw["routing_map"], 3, 4, False, out, None, run=True)
    assert st == 0
    np.testing.assert_array_equal(out, ref(**kw)[0])


@pytest.mark.parametrize("drop", (False, True))
@pytest.mark.parametrize("with_probs", (False, True))
def test_plan_and_rebind_to_new_host_arrays(rng, drop, with_probs):
    """an explicit plan executed twice with different host arrays: aclSetInputTensorAddr reaches every given input
    by its prototype index (routing_map, index 3, is given without a probs gradient too; it had no executor slot)"""
    import aclnn_moe as am

    kw1 = case(rng, 12, 4, 2, 8, np.float32, drop, with_probs)
    kw2 = case(rng, 12, 4, 2, 8, np.float32, drop, with_probs)
    names = ["permuted_tokens_output_grad", "sorted_indices", "routing_map"] + (
        ["permuted_probs_output_grad"] if with_probs else [])
    op = am.MoeTokenPermuteWithRoutingMapGrad(**kw1).plan()
    try:
        for kw in (kw1, kw2):
            if kw is kw2:
                op.reset_operands(**{n: kw[n] for n in names})
            for a, b in zip(op.execute(), ref(**kw)):
                assert (a is None) == (b is None)
                if b is not None:
                    np.testing.assert_array_equal(a, b)
        for kw in (kw1, kw2, kw1):  # the function form: plan-cache hits rebind every input
            check(kw)
    finally:
        op.free()


_THREADS_SCRIPT = """
import hashlib, numpy as np, aclnn_moe as am
from aclnn_moe.ops.token_permute_with_routing_map import routing_map_of
from aclnn_moe.reference.token_permute_with_routing_map import moe_token_permute_with_routing_map as fwd
rng = np.random.default_rng(7)
t, e, k, h = 300, 16, 4, 96
m = routing_map_of(rng, t, e, k)
out = ()
for drop in (False, True):
    s = fwd(np.zeros((t, 1), np.float32), m, num_out_tokens=t * k, drop_and_pad=drop)[2]
    g = rng.standard_normal((s.size, h)).astype(np.float16)
    out += am.moe_token_permute_with_routing_map_grad(g, g[:, 0].copy(), s, m, e, t, drop)
print(hashlib.sha256(b"".join(np.ascontiguousarray(o).tobytes() for o in out)).hexdigest())
"""


def test_results_do_not_depend_on_the_thread_count():
    """the kernel splits output tokens across threads, every sum in a fixed order: the same bits for 1 or 5"""
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


def test_index_out_of_range_is_an_error(rng):
    kw = case(rng, 6, 4, 2, 3, np.float32, False, False)
    for bad in (12, -2):
        s = kw["sorted_indices"].copy()
        s[3] = bad
        with pytest.raises(AclnnError) as e:
            grad(**{**kw, "sorted_indices": s})
        assert e.value.status == 161002 and "sorted_indices" in e.value.message
    kw = case(rng, 6, 4, 2, 3, np.float32, True, False)
    for bad in (6, -1):
        s = kw["sorted_indices"].copy()
        s[0] = bad
        with pytest.raises(AclnnError) as e:
            grad(**{**kw, "sorted_indices": s})
        assert e.value.status == 161002


def test_routing_map_values_must_be_0_or_1(rng):
    kw = case(rng, 6, 4, 2, 3, np.float32, False, True)
    m = kw["routing_map"].astype(np.int8)
    m[0, 0] = 2
    with pytest.raises(AclnnError) as e:
        grad(**{**kw, "routing_map": m})
    assert e.value.status == 161002 and "routing_map" in e.value.message


def _args(t=4, e=3, k=2, h=5, dtype=np.float32):
    m = np.zeros((t, e), np.int8)
    m[:, :k] = 1
    return [np.ones((t * k, h), dtype), np.ones(t * k, dtype), np.arange(t * k, dtype=np.int32), m, e, t, False,
            np.zeros((t, h), dtype), np.zeros((t, e), dtype)]


def test_valid_arguments_pass(ws_status):
    assert ws_status(API, *_args()) == (0, "")


@pytest.mark.parametrize("i", [0, 2, 7])
def test_null_tensor_161001(ws_status, i):
    a = _args()
    a[i] = None
    assert ws_status(API, *a)[0] == 161001


@pytest.mark.parametrize("i,value", [(0, np.ones((8, 5), np.int32)), (1, np.ones(8, np.float16)),
                                     (2, np.arange(8, dtype=np.int64)), (3, np.zeros((4, 3), np.int32)),
                                     (4, 0), (5, -1), (3, None),
                                     (0, np.ones((8, 5, 1), np.float32)), (1, np.ones((8, 1), np.float32)),
                                     (3, np.zeros((4, 3, 1), np.int8)), (7, np.zeros((4, 5), np.float16))])
def test_op_api_rules_161002(ws_status, i, value):
    a = _args()
    a[i] = value
    status, msg = ws_status(API, *a)
    assert status == 161002 and API in msg


@pytest.mark.parametrize("i,value", [(2, np.arange(9, dtype=np.int32)), (2, np.arange(8, dtype=np.int32)[None]),
                                     (0, np.ones((9, 5), np.float32)), (7, np.zeros((4, 4), np.float32)),
                                     (8, np.zeros((4, 2), np.float32)), (1, np.ones(7, np.float32)),
                                     (3, np.zeros((4, 2), np.int8))])
def test_kernel_shape_rules_561103(ws_status, i, value):
    a = _args()
    a[i] = value
    status, msg = ws_status(API, *a)
    assert status == 561103 and API in msg


def test_drop_and_pad_shape_rules_561103(ws_status):
    a = _args()
    a[6] = True
    a[0] = np.ones((7, 5), np.float32)  # 7 rows: not a multiple of E = 3
    assert ws_status(API, *a)[0] == 561103
    a[0] = np.ones((6, 5), np.float32)  # E*C = 6 rows, 8 sorted indices
    assert ws_status(API, *a)[0] == 561103


def test_topk_limit_561103(ws_status):
    a = _args(t=1, e=600, k=513, h=2)
    assert ws_status(API, *a)[0] == 561103
