"""``aclnn-moe demo``: every chain passes its dense check, and the checks reject a wrong chain."""
from __future__ import annotations

import numpy as np

import aclnn_moe as am
from aclnn_moe import demo


def test_demo_passes_every_chain(capsys):
    assert demo.main(tokens=48, repeat=1, hidden=32, ffn_hidden=16) == 0
    out = capsys.readouterr().out
    checks = [line for line in out.splitlines() if line.startswith("check")]
    assert checks and all(line.rstrip().endswith("ok") for line in checks), out
    for chain in ("vllm-ascend: gating_top_k .. init_routing_v3 .. token_unpermute",
                  "qwen3: gating_top_k_softmax .. init_routing_v3 .. unpermute",
                  "qwen3 router: gating_top_k_softmax vs dense softmax top-8",
                  "w8a8: init_routing_quant_v2 .. w8a8 experts .. token_unpermute",
                  "w8a8: int8 rows vs dense quantisation"):
        assert chain in out, chain
    assert "demo passed" in out


def _layer(rng, T=40, H=24, F=12, E=16, K=4):
    x = rng.standard_normal((T, H)).astype(np.float32)
    ids = np.stack([rng.permutation(E)[:K] for _ in range(T)]).astype(np.int32)
    w = rng.random((T, K)).astype(np.float32)
    w1 = (rng.standard_normal((E, H, F)) / np.sqrt(H)).astype(np.float32)
    w2 = (rng.standard_normal((E, F, H)) / np.sqrt(F)).astype(np.float32)
    return x, ids, w, w1, w2


def _ffn(x, w1, w2):
    h = x @ w1
    return (h / (1 + np.exp(-h))) @ w2


def test_the_check_rejects_a_wrong_chain(rng):
    x, ids, w, w1, w2 = _layer(rng)
    E = w1.shape[0]

    def experts(rows, ends):
        out, start = np.empty_like(rows), 0
        for e in range(E):
            if ends[e] > start:
                out[start:ends[e]] = _ffn(rows[start:ends[e]], w1[e], w2[e])
            start = int(ends[e])
        return out

    dense = demo._dense(x, ids, w, w1, w2, _ffn)
    good = demo.vllm_ascend_chain(am, x, ids, w, experts, E)
    assert demo.rel_err(good, dense) < demo.TOL
    # the gather-form row index (row_idx_type 1) is the wrong sorted_indices for token_unpermute
    wrong = demo.vllm_ascend_chain(am, x, ids, w, experts, E, row_idx_type=1)
    assert demo.rel_err(wrong, dense) > demo.TOL
    # one element off by 1e-3 of the output's scale is seen
    bad = good.copy()
    bad[7, 3] += 1e-3 * np.abs(dense).max()
    assert demo.rel_err(bad, dense) > demo.TOL
    assert demo.rel_err(good[:-1], dense) == float("inf")


def test_the_w8a8_check_rejects_another_quantisation(rng):
    x, ids, w, w1, w2 = _layer(rng)
    w1q, w1s = demo.quantize_weights(w1)
    got, q, scale = demo.w8a8_chain(am, x, ids, w, w1q, w1s, w2)
    want, _, _ = demo.dense_w8a8(x, ids, w, w1q, w1s, w2)
    assert demo.rel_err(got, want) < demo.TOL
    # the unquantised layer differs from the int8 one by far more than the tolerance: the check sees the int8 path
    fp = demo._dense(x, ids, w, w1, w2, _ffn)
    assert demo.rel_err(got, fp) > 10 * demo.TOL
    # the chain run on other activations (x doubled) fails against this dense layer
    assert demo.rel_err(demo.w8a8_chain(am, x * 2, ids, w, w1q, w1s, w2)[0], want) > demo.TOL
