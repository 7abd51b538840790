"""Training code written for torch_npu the way MindSpeed's mask-map permutation is written (our own code in that
style: ``torch.autograd.Function``s whose forward and backward call ``torch_npu.npu_moe_token_permute_with_routing_map``,
``torch_npu._npu_moe_token_unpermute_with_routing_map`` and their ``_grad`` functions with torch_npu's positional
and keyword conventions) runs unchanged after ``aclnn_moe.torch_npu_compat.install()``; its gradients match plain
torch autograd of the same dispatch / combine.

Runs in a child interpreter: install() puts a torch_npu module in sys.modules, which must not leak into the others.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("torch", reason="torch is optional (the `torch` extra); these tests need it")

TRAINING_CODE = '''
import torch
import torch_npu


class PermuteByMask(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tokens, routing_map, probs=None, num_out_tokens=None, drop_and_pad=False):
        out, out_probs, sorted_indices = torch_npu.npu_moe_token_permute_with_routing_map(
            tokens, routing_map, probs=probs, num_out_tokens=num_out_tokens, drop_and_pad=drop_and_pad)
        ctx.save_for_backward(sorted_indices, routing_map)
        ctx.shape = (tokens.shape[0], routing_map.shape[1], drop_and_pad)
        return out, out_probs, sorted_indices

    @staticmethod
    def backward(ctx, grad_out, grad_probs, _):
        sorted_indices, routing_map = ctx.saved_tensors
        tokens_num, experts_num, drop_and_pad = ctx.shape
        grad_tokens, grad_p = torch_npu.npu_moe_token_permute_with_routing_map_grad(
            grad_out, grad_probs, sorted_indices, routing_map, experts_num, tokens_num, drop_and_pad)
        return grad_tokens, None, grad_p if ctx.needs_input_grad[2] else None, None, None


class UnpermuteByMask(torch.autograd.Function):
    @staticmethod
    def forward(ctx, permuted, sorted_indices, restore_shape, probs=None, routing_map=None, drop_and_pad=False):
        out, out_index, token_id, _ = torch_npu._npu_moe_token_unpermute_with_routing_map(
            permuted, sorted_indices, restore_shape, probs=probs, routing_map=routing_map,
            drop_and_pad=drop_and_pad)
        ctx.save_for_backward(permuted, sorted_indices, probs, routing_map, out_index, token_id)
        ctx.restore_shape, ctx.drop_and_pad = restore_shape, drop_and_pad
        return out

    @staticmethod
    def backward(ctx, grad):
        permuted, sorted_indices, probs, routing_map, out_index, token_id = ctx.saved_tensors
        with_probs = probs is not None
        if ctx.drop_and_pad:
            index, ids = out_index, token_id
        else:
            index, ids = sorted_indices, sorted_indices
        grad_permuted, grad_probs = torch_npu.npu_moe_token_unpermute_with_routing_map_grad(
            grad, index, permuted_token_id=ids, routing_map=routing_map,
            permuted_tokens=permuted if with_probs else None, probs=probs if with_probs else None,
            drop_and_pad=ctx.drop_and_pad, restore_shape=ctx.restore_shape)
        return grad_permuted, None, None, grad_probs if ctx.needs_input_grad[3] else None, None, None


def moe_layer(hidden, probs, routing_map, w):
    """dispatch by mask, one linear per expert (the rows of expert e are contiguous), combine weighted by probs"""
    t, e = routing_map.shape
    permuted, _, sorted_indices = PermuteByMask.apply(hidden, routing_map, None, int(routing_map.sum()))
    counts = routing_map.sum(0).tolist()
    outs, start = [], 0
    for j, n in enumerate(counts):
        outs.append(permuted[start:start + n] @ w[j])
        start += n
    expert_out = torch.cat(outs)
    return UnpermuteByMask.apply(expert_out, sorted_indices, hidden.shape, probs, routing_map)
'''

CHECK = '''
import aclnn_moe.torch_npu_compat as compat
assert compat.install()
exec(compile(TRAINING_CODE, "<mindspeed-style>", "exec"))
import torch

torch.manual_seed(0)
T, E, K, H = 24, 6, 2, 16
logits = torch.randn(T, E)
logits[:, 5] = -float("inf")  # an expert no token picks
top = logits.topk(K, dim=1).indices
routing_map = torch.zeros(T, E, dtype=torch.bool).scatter_(1, top, True)
hidden = torch.randn(T, H, requires_grad=True)
probs = torch.softmax(logits, 1).detach().requires_grad_(True)
w = torch.randn(E, H, H, requires_grad=True)

def dense(hidden, probs, routing_map, w):
    per_expert = torch.einsum("th,ehk->tek", hidden, w)
    return (per_expert * (probs * routing_map).unsqueeze(-1)).sum(1)

for step in range(3):  # SGD steps: the two models stay equal
    out = moe_layer(hidden, probs, routing_map, w)
    ref_inputs = [hidden.detach().clone().requires_grad_(True), probs.detach().clone().requires_grad_(True),
                  w.detach().clone().requires_grad_(True)]
    ref = dense(ref_inputs[0], ref_inputs[1], routing_map, ref_inputs[2])
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, [hidden, probs, w], g)
    ref_grads = torch.autograd.grad(ref, ref_inputs, g)
    for name, a, b in zip(("hidden", "probs", "w"), grads, ref_grads):
        if name == "probs":  # only the routed entries carry a gradient through the combine
            b = b * routing_map
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4, msg=name)
    with torch.no_grad():
        w -= 0.01 * grads[2]
print("OK")
'''


def test_mindspeed_style_mask_map_training_runs_unchanged_after_install():
    code = f"TRAINING_CODE = {TRAINING_CODE!r}\n" + textwrap.dedent(CHECK)
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().endswith("OK")
