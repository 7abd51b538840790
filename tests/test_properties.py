"""Property-based tests of the routing operators (hypothesis): invariants that must hold for any shape, dtype
and routing, beyond the example-based comparisons with the references in test_<op>.py."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import aclnn_moe as am
from aclnn_moe import reference as ref
from aclnn_moe._dtypes import bfloat16

DTYPES = st.sampled_from([np.float32, np.float16, bfloat16])
SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def routing(draw):
    t = draw(st.integers(1, 24))
    k = draw(st.integers(1, 6))
    e = draw(st.integers(k, 40))
    h = draw(st.integers(1, 33))
    seed = draw(st.integers(0, 2**32 - 1))
    skew = draw(st.booleans())  # skewed routing: most tokens on few experts
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(e, 0.1 if skew else 10.0))
    idx = np.stack([rng.choice(e, k, replace=False, p=p) for _ in range(t)]).astype(np.int32)
    return t, k, e, h, idx, rng


@SETTINGS
@given(routing(), DTYPES)
def test_permute_then_unpermute_with_unit_probs_sums_k_copies(r, dtype):
    t, k, e, h, idx, rng = r
    x = rng.integers(-8, 8, (t, h)).astype(dtype)  # small integers: every sum is exact in every dtype
    pt, sorted_idx, _ = am.moe_token_permute_with_ep(x, idx)
    assert sorted(sorted_idx.tolist()) == list(range(t * k))  # a permutation of the flat positions
    back = am.moe_token_unpermute_with_ep(pt, sorted_idx, probs=np.ones((t, k), dtype))
    np.testing.assert_array_equal(back.astype(np.float32), k * x.astype(np.float32))


@SETTINGS
@given(routing(), st.integers(1, 5), DTYPES)
def test_ep_slices_add_up_to_the_whole(r, ranks, dtype):
    t, k, e, h, idx, rng = r
    x = rng.integers(-8, 8, (t, h)).astype(dtype)
    probs = rng.integers(0, 3, (t, k)).astype(dtype)  # zeros included: those slots are skipped
    full = am.moe_token_unpermute_with_ep(*am.moe_token_permute_with_ep(x, idx)[:2], probs=probs)
    cuts = np.linspace(0, t * k, ranks + 1).astype(int)
    parts = []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        if hi == lo:
            continue
        pt, si, _ = am.moe_token_permute_with_ep(x, idx, range=[int(lo), int(hi)])
        assert pt.shape == (hi - lo, h)
        parts.append(am.moe_token_unpermute_with_ep(pt, si, probs=probs, range=[int(lo), int(hi)]))
    np.testing.assert_array_equal(np.sum([p.astype(np.float32) for p in parts], axis=0), full.astype(np.float32))


@SETTINGS
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 12), st.integers(1, 17),
       st.sampled_from([np.int32, np.int64]), st.booleans(), st.integers(0, 2**32 - 1))
def test_re_routing_is_a_stable_permutation(n, e, per_cell, h, cdt, int8, seed):
    rng = np.random.default_rng(seed)
    cnt = rng.integers(0, per_cell + 1, (n, e)).astype(cdt)
    a = int(cnt.sum())
    tok = (rng.integers(-100, 100, (a, h)).astype(np.int8) if int8 else
           rng.standard_normal((a, h)).astype(np.float16))
    scales = rng.random(a).astype(np.float32)
    out, out_scales, gather, expert_count = am.moe_re_routing(tok, cnt, per_token_scales=scales)
    assert sorted(gather.tolist()) == list(range(a))
    np.testing.assert_array_equal(out, tok[gather])
    np.testing.assert_array_equal(out_scales, scales[gather])
    np.testing.assert_array_equal(expert_count, cnt.sum(axis=0))
    assert expert_count.dtype == cdt
    # within one (rank, expert) block the original order is kept, and experts come out in order
    src_expert = np.repeat(np.tile(np.arange(e), n), cnt.reshape(-1))
    assert (np.diff(src_expert[gather]) >= 0).all()


@SETTINGS
@given(routing(), DTYPES)
def test_init_routing_v1_and_v2_agree_up_to_the_index_layout(r, dtype):
    t, k, e, h, idx, rng = r
    x = rng.standard_normal((t, h)).astype(dtype)
    row_idx = np.arange(t * k, dtype=np.int32).reshape(k, t).T.copy()
    x1, r1, e1 = am.moe_init_routing(x, row_idx, idx, t)
    x2, r2, counts, _ = am.moe_init_routing_v2(x, idx, expert_num=e, expert_tokens_count_or_cumsum_flag=2)
    np.testing.assert_array_equal(x1, x2)  # same stable sort by expert, same gathered rows
    np.testing.assert_array_equal(e1, np.sort(idx.reshape(-1)))
    np.testing.assert_array_equal(r1.reshape(k, t).T.reshape(-1), r2)  # k-major vs row-major layout
    np.testing.assert_array_equal(counts, np.bincount(idx.reshape(-1), minlength=e))
    np.testing.assert_array_equal(am.moe_compute_expert_tokens(e1, e), np.cumsum(counts))


@SETTINGS
@given(routing(), DTYPES, st.sampled_from([0, 2]))
def test_finalize_inverts_init_routing(r, dtype, mode):
    """finalize(init_routing(x) rows, scales) == sum_k scales * x, in both index layouts."""
    t, k, e, h, idx, rng = r
    x = rng.integers(-4, 5, (t, h)).astype(dtype)
    scales = rng.integers(0, 3, (t, k)).astype(dtype)
    if mode == 0:
        rows, ridx, _ = am.moe_init_routing(x, np.arange(t * k, dtype=np.int32).reshape(k, t).T.copy(), idx, t)
    else:
        rows, ridx, _, _ = am.moe_init_routing_v2(x, idx)
    got = am.moe_finalize_routing(rows, None, None, None, scales, ridx, idx, mode)
    want = (scales.astype(np.float32).sum(axis=1, keepdims=True) * x.astype(np.float32))
    np.testing.assert_array_equal(got.astype(np.float32), want)
    np.testing.assert_array_equal(got, ref.moe_finalize_routing(rows, None, None, None, scales, ridx, idx, mode))
