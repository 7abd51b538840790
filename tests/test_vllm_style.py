"""Code written for torch_npu, the way vLLM-Ascend's expert selector and fused-MoE forward are written (our own code
in that style: ``torch_npu.npu_moe_*`` calls with torch_npu's keywords), runs unchanged after
``aclnn_moe.torch_npu_compat.install()`` and matches a dense torch MoE layer.

The model code below only imports torch and torch_npu. The one piece torch_npu would supply that the compat layer
does not cover (``npu_grouped_matmul``) is a plain-torch grouped MLP here. Everything runs in a child interpreter:
install() puts a torch_npu module in sys.modules, which must not leak into the other tests.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("torch", reason="torch is optional (the `torch` extra); these tests need it")

MODEL_CODE = '''
import torch
import torch_npu


def select_experts(hidden_states, router_logits, top_k, use_grouped_topk, renormalize, topk_group=None,
                   num_expert_group=None, scoring_func="softmax", routed_scaling_factor=1.0,
                   e_score_correction_bias=None):
    """Routing: grouped top-k (DeepSeek style) through the fused gating op, or softmax top-k."""
    if use_grouped_topk or scoring_func == "sigmoid":
        topk_weights, topk_ids, _ = torch_npu.npu_moe_gating_top_k(
            router_logits,
            k=top_k,
            bias=e_score_correction_bias,
            k_group=topk_group if topk_group is not None else 1,
            group_count=num_expert_group if num_expert_group is not None else 1,
            group_select_mode=1,  # the top-2 sum of each group ranks the groups
            renorm=0,
            norm_type=1 if scoring_func == "sigmoid" else 0,
            routed_scaling_factor=routed_scaling_factor,
            eps=float(1e-20))
        if scoring_func == "softmax" and renormalize:
            topk_weights = topk_weights / topk_weights.sum(dim=-1, keepdim=True)
        return topk_weights, topk_ids
    topk_weights, topk_ids, _row_idx = torch_npu.npu_moe_gating_top_k_softmax(router_logits, None, k=top_k)
    if renormalize:
        topk_weights = topk_weights / topk_weights.sum(dim=-1, keepdim=True)
    return topk_weights, topk_ids


def grouped_mlp(hidden_states, w1, w2, group_list):
    """SwiGLU experts over rows grouped by expert; group_list holds each expert's row count."""
    out = torch.zeros(hidden_states.shape[0], w2.shape[2], dtype=hidden_states.dtype)
    start = 0
    for e, n in enumerate(group_list.tolist()):
        if n:
            h = hidden_states[start:start + n] @ w1[e]
            gate, up = h.chunk(2, dim=-1)
            out[start:start + n] = (torch.nn.functional.silu(gate) * up) @ w2[e]
        start += n
    return out


def fused_experts_init_routing(hidden_states, w1, w2, topk_weights, topk_ids, global_num_experts):
    num_tokens = hidden_states.shape[0]
    top_k = topk_ids.shape[1]
    sorted_hidden_states, expanded_row_idx, expert_tokens, _ = torch_npu.npu_moe_init_routing_v2(
        hidden_states,
        topk_ids.to(torch.int32),
        active_num=num_tokens * top_k,
        expert_num=global_num_experts,
        expert_tokens_num_type=1,
        expert_tokens_num_flag=True,
        active_expert_range=[0, global_num_experts],
        quant_mode=-1)
    down_out = grouped_mlp(sorted_hidden_states, w1, w2, expert_tokens)
    return torch_npu.npu_moe_finalize_routing(
        down_out,
        skip1=None,
        skip2=None,
        bias=None,
        scales=topk_weights.to(down_out.dtype),
        expanded_src_to_dst_row=expanded_row_idx,
        export_for_source_row=None,
        drop_pad_mode=2)


def fused_experts_permute(hidden_states, w1, w2, topk_weights, topk_ids, global_num_experts):
    num_tokens = hidden_states.shape[0]
    top_k = topk_ids.shape[1]
    permuted, sorted_indices = torch_npu.npu_moe_token_permute(
        hidden_states, topk_ids.to(torch.int32), num_out_tokens=num_tokens * top_k)
    group_list = torch.bincount(topk_ids.reshape(-1).long(), minlength=global_num_experts)
    down_out = grouped_mlp(permuted, w1, w2, group_list)
    return torch_npu.npu_moe_token_unpermute(
        permuted_tokens=down_out, sorted_indices=sorted_indices, probs=topk_weights)
'''

HARNESS = '''
import torch
import aclnn_moe.torch_npu_compat
assert aclnn_moe.torch_npu_compat.install()
ns = {}
exec(compile(MODEL_CODE, "vllm_style_model", "exec"), ns)

T, H, E, F, K = 24, 16, 16, 8, 4
g = torch.Generator().manual_seed(0)
x = torch.randn(T, H, generator=g)
router = torch.randn(H, E, generator=g) * 0.7
bias = torch.rand(E, generator=g) * 0.05
w1 = torch.randn(E, H, 2 * F, generator=g) * 0.3
w2 = torch.randn(E, F, H, generator=g) * 0.3


def dense_routing(logits, scoring, grouped, renorm, scale, bias, groups, topk_group):
    scores = torch.sigmoid(logits) if scoring == "sigmoid" else torch.softmax(logits, -1)
    rank = scores + bias if bias is not None else scores
    if grouped:
        per = rank.view(T, groups, E // groups)
        group_score = per.topk(2, dim=-1).values.sum(-1)
        keep = torch.zeros(T, groups).scatter(1, group_score.topk(topk_group, dim=-1).indices, 1.0)
        rank = rank.masked_fill(keep.repeat_interleave(E // groups, 1) == 0, float("-inf"))
    ids = rank.topk(K, dim=-1).indices
    w = scores.gather(1, ids)
    if scoring == "sigmoid" or renorm:
        w = w / (w.sum(-1, keepdim=True) + (1e-20 if scoring == "sigmoid" else 0))
    return w * scale, ids


def dense_moe(x, w, ids):
    out = torch.zeros_like(x)
    for t in range(T):
        for j in range(K):
            e = int(ids[t, j])
            gate, up = (x[t] @ w1[e]).chunk(2)
            out[t] += w[t, j] * ((torch.nn.functional.silu(gate) * up) @ w2[e])
    return out

results = {}
'''


def _run(body: str):
    code = HARNESS + textwrap.dedent(body)
    script = f"MODEL_CODE = {MODEL_CODE!r}\n" + code
    out = subprocess.run([sys.executable, "-P", "-c", script], capture_output=True, text=True, timeout=600)
    if out.returncode == 3:
        pytest.skip(out.stdout.strip())
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_grouped_topk_selector_and_fused_moe_match_dense():
    _run("""
        logits = x @ router
        cases = [dict(use_grouped_topk=True, renormalize=False, topk_group=2, num_expert_group=4,
                      scoring_func="sigmoid", routed_scaling_factor=2.5, e_score_correction_bias=bias),
                 dict(use_grouped_topk=False, renormalize=True, scoring_func="sigmoid"),
                 dict(use_grouped_topk=True, renormalize=True, topk_group=2, num_expert_group=4,
                      scoring_func="softmax", e_score_correction_bias=None)]
        for case in cases:
            w, ids = ns["select_experts"](x, logits, K, **case)
            rw, rids = dense_routing(logits, case["scoring_func"], case["use_grouped_topk"], case["renormalize"],
                                     case.get("routed_scaling_factor", 1.0), case.get("e_score_correction_bias"),
                                     case.get("num_expert_group") or 1, case.get("topk_group") or 1)
            assert torch.equal(ids.long(), rids), (case, ids, rids)
            torch.testing.assert_close(w, rw, rtol=1e-5, atol=1e-6)
            ref = dense_moe(x, rw, rids)
            for fused in ("fused_experts_init_routing", "fused_experts_permute"):
                out = ns[fused](x, w1, w2, w, ids, E)
                torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5, msg=lambda m: f"{fused} {case}: {m}")
        print("ok")
    """)


def test_softmax_selector_and_fused_moe_match_dense():
    _run("""
        import sys
        if "npu_moe_gating_top_k_softmax" not in aclnn_moe.torch_npu_compat.available():
            print("npu_moe_gating_top_k_softmax: MoeGatingTopKSoftmax is not in this build")
            sys.exit(3)
        logits = x @ router
        for renorm in (False, True):
            w, ids = ns["select_experts"](x, logits, K, use_grouped_topk=False, renormalize=renorm)
            rw, rids = dense_routing(logits, "softmax", False, renorm, 1.0, None, 1, 1)
            assert torch.equal(ids.long(), rids)
            torch.testing.assert_close(w, rw, rtol=1e-5, atol=1e-6)
            ref = dense_moe(x, rw, rids)
            for fused in ("fused_experts_init_routing", "fused_experts_permute"):
                torch.testing.assert_close(ns[fused](x, w1, w2, w, ids, E), ref, rtol=1e-5, atol=1e-5)
        print("ok")
    """)


def test_bf16_forward_and_training_gradients_through_torch_npu_names():
    _run("""
        # bf16 serving-style call: same routing, results within bf16 rounding of the fp32 dense layer
        logits = x @ router
        w, ids = ns["select_experts"](x, logits, K, use_grouped_topk=True, renormalize=False, topk_group=2,
                                      num_expert_group=4, scoring_func="sigmoid", e_score_correction_bias=bias)
        out = ns["fused_experts_init_routing"](x.bfloat16(), w1.bfloat16(), w2.bfloat16(), w.bfloat16(), ids, E)
        torch.testing.assert_close(out.float(), dense_moe(x, w, ids), rtol=3e-2, atol=3e-2)
        # training through torch_npu's names (autograd from the aclnn_moe operators underneath)
        xr, rr = x.clone().requires_grad_(True), router.clone().requires_grad_(True)
        w, ids = ns["select_experts"](xr, xr @ rr, K, use_grouped_topk=False, renormalize=False,
                                      scoring_func="sigmoid")
        loss = ns["fused_experts_init_routing"](xr, w1, w2, w, ids, E).square().sum()
        gx, gr = torch.autograd.grad(loss, (xr, rr))
        xd, rd = x.clone().requires_grad_(True), router.clone().requires_grad_(True)
        wd, idsd = dense_routing(xd @ rd, "sigmoid", False, False, 1.0, None, 1, 1)
        assert torch.equal(idsd, ids.long())
        ld = dense_moe(xd, wd, idsd).square().sum()
        gxd, grd = torch.autograd.grad(ld, (xd, rd))
        torch.testing.assert_close(gx, gxd, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(gr, grd, rtol=1e-4, atol=1e-5)
        print("ok")
    """)
