"""The torch composites ``aclnn-moe bench`` times against the operators: each routing step written in plain torch
ops the way the peers write it on CPU (vLLM / SGLang CPU paths, vllm-ascend's torch fallbacks, Megatron's
permute / unpermute), never tuned to flatter or to handicap either side.

Every composite has the signature of the aclnn_moe function it stands for (torch tensors in place of arrays)
and returns the same results, in that order (``None`` where the operator returns none), so that
``tests/test_bench.py`` can check each against the operator on the same inputs: a composite that computed
something else (less work) could not make the operators look slow. Where the peer's own output differs only in
form (vLLM's gating returns float32 weights in no particular order, ``sorted=False``), the composite keeps the
peer's form and the test compares order-free.

Peers (see the project's spec/perf.md section 2):

* gating, DeepSeek-V3 (grouped, sigmoid, ``e_score_correction_bias``: noaux_tc): vLLM's ``grouped_topk``
  (vllm/model_executor/layers/fused_moe/router/grouped_topk_router.py, also vLLM's CPURouter);
* gating, softmax: ``torch.topk(torch.softmax(logits.float()))`` (vLLM's fused_topk native path,
  vllm-ascend's softmax selector), with vllm-ascend's k-major ``row_idx`` for ``moe_gating_top_k_softmax``;
* compute_expert_tokens: ``torch.searchsorted`` of every expert id in the sorted ids;
* init routing / permute: a stable ``torch.sort`` / ``argsort`` of the flattened ids, ``index_select`` of the
  rows, a ``scatter_`` for the inverse index, ``bincount`` for counts (vllm-ascend's native fallback,
  Megatron's ``permute``);
* unpermute / finalize: ``index_select`` of every token's K rows and ``(rows * probs).sum(1)`` (Megatron's
  ``unpermute``), ``index_add_`` for an expert-parallel window;
* re_routing: ``repeat_interleave`` of the block ids by the counts, a stable ``argsort`` by (expert, rank) and a
  gather (vllm-ascend's all2allv dispatcher).
"""
from __future__ import annotations

import torch

__all__ = ["COMPOSITES"]


def _grouped_topk(scores_in, topk, num_expert_group, topk_group, bias, routed_scaling_factor, renormalize):
    """vLLM's ``grouped_topk`` (native torch path), scores already normalised (sigmoid or softmax)."""
    scores = scores_in
    num_token = scores.size(0)
    if bias is not None:
        original_scores = scores
        scores = scores + bias.unsqueeze(0)
        group_scores = scores.view(num_token, num_expert_group, -1).topk(2, dim=-1)[0].sum(dim=-1)
    else:
        group_scores = scores.view(num_token, num_expert_group, -1).max(dim=-1).values
    group_idx = torch.topk(group_scores, k=topk_group, dim=-1, sorted=False)[1]
    group_mask = torch.zeros_like(group_scores)
    group_mask.scatter_(1, group_idx, 1)
    score_mask = (group_mask.unsqueeze(-1).expand(num_token, num_expert_group, scores.size(-1) // num_expert_group)
                  .reshape(num_token, -1))
    tmp_scores = scores.masked_fill(~score_mask.bool(), float("-inf"))
    if bias is not None:
        topk_ids = torch.topk(tmp_scores, k=topk, dim=-1, sorted=False)[1]
        topk_weights = original_scores.gather(1, topk_ids)
    else:
        topk_weights, topk_ids = torch.topk(tmp_scores, k=topk, dim=-1, sorted=False)
    if renormalize:
        topk_weights = topk_weights / topk_weights.sum(dim=-1, keepdim=True)
    if routed_scaling_factor != 1.0:
        topk_weights = topk_weights * routed_scaling_factor
    return topk_weights.to(torch.float32), topk_ids.to(torch.int32)


def moe_gating_top_k(x, k, *, bias=None, k_group=1, group_count=1, group_select_mode=0, renorm=0, norm_type=0,
                     out_flag=False, routed_scaling_factor=1.0, eps=1e-20):
    """DeepSeek-style grouped gating as vLLM writes it; softmax top-k (no renormalisation, as the operator)."""
    logits = x.float()
    if norm_type == 1:  # sigmoid: vLLM's grouped_topk with the correction bias (noaux_tc); renormalised
        scores = logits.sigmoid()
        y, idx = _grouped_topk(scores, k, group_count, k_group, None if bias is None else bias.float(),
                               routed_scaling_factor, renormalize=True)
    else:
        scores = torch.softmax(logits, dim=-1)
        if group_count > 1 and k_group < group_count:
            y, idx = _grouped_topk(scores, k, group_count, k_group, None if bias is None else bias.float(),
                                   routed_scaling_factor, renormalize=False)
        else:  # vLLM fused_topk's native path
            y, idx = torch.topk(scores, k, dim=-1)
            if routed_scaling_factor != 1.0:
                y = y * routed_scaling_factor
            idx = idx.to(torch.int32)
    return y, idx, (scores if out_flag else None)


def moe_gating_top_k_softmax(x, finished=None, k=1):
    """``topk(softmax(x.float()))`` and vllm-ascend's k-major row_idx."""
    y, idx = torch.topk(torch.softmax(x.float(), dim=-1), k, dim=-1)
    n = idx.numel() // k
    row_idx = torch.arange(n * k, dtype=torch.int32).view(k, -1).permute(1, 0).contiguous().view(idx.shape)
    if finished is not None:
        idx = idx.masked_fill(finished.unsqueeze(-1), x.shape[-1])
    return y.to(x.dtype), idx.to(torch.int32), row_idx


def moe_compute_expert_tokens(sorted_expert_for_source_row, num_expert):
    """One binary search per expert: the end row of every expert's segment."""
    experts = torch.arange(num_expert, dtype=sorted_expert_for_source_row.dtype)
    return torch.searchsorted(sorted_expert_for_source_row, experts, right=True, out_int32=True)


def _sort_pairs(expert_idx):
    """Stable sort of the flattened (token, slot) expert ids: (sorted ids, order)."""
    return torch.sort(expert_idx.reshape(-1), stable=True)


def _inverse(order):
    """``inv[order[j]] = j`` (int32), by one scatter."""
    inv = torch.empty(order.numel(), dtype=torch.int32)
    return inv.scatter_(0, order, torch.arange(order.numel(), dtype=torch.int32))


def moe_init_routing(x, row_idx, expert_idx, active_num):
    n, k = expert_idx.shape
    sorted_expert, order = _sort_pairs(expert_idx)
    src = row_idx.reshape(-1).index_select(0, order)
    expanded_row_idx = torch.empty_like(src).scatter_(0, src.long(), torch.arange(n * k, dtype=src.dtype))
    rows = max(min(n, active_num), 0) * k
    expanded_x = x.index_select(0, src[:rows] % n)
    return expanded_x, expanded_row_idx, sorted_expert


def moe_init_routing_v2(x, expert_idx, *, active_num=0, expert_capacity=0, expert_num=0, drop_pad_mode=0,
                        expert_tokens_count_or_cumsum_flag=0, expert_tokens_before_capacity_flag=False):
    if drop_pad_mode != 0:
        raise NotImplementedError("the bench composite covers the dropless mode only")
    n, k = expert_idx.shape
    _, order = _sort_pairs(expert_idx)
    rows = n * k if active_num == 0 else min(active_num, n * k)
    expanded_x = x.index_select(0, order[:rows] // k)
    counts = None
    if expert_tokens_count_or_cumsum_flag:
        counts = torch.bincount(expert_idx.reshape(-1), minlength=expert_num).to(torch.int32)
        if expert_tokens_count_or_cumsum_flag == 1:
            counts = counts.cumsum(0, dtype=torch.int32)
    return expanded_x, _inverse(order), counts, None


def moe_init_routing_v3(x, expert_idx, *, scale=None, offset=None, active_num=-1, expert_capacity=-1,
                        expert_num=-1, drop_pad_mode=0, expert_tokens_num_type=0, expert_tokens_num_flag=False,
                        quant_mode=-1, active_expert_range=(), row_idx_type=0, x_dtype=None):
    """What ``torch_npu.npu_moe_init_routing_v2`` computes for vllm-ascend's unquantised dropless call."""
    if drop_pad_mode != 0 or quant_mode != -1 or row_idx_type != 0 or scale is not None:
        raise NotImplementedError("the bench composite covers the dropless, unquantised call only")
    n, k = expert_idx.shape
    start, end = tuple(active_expert_range) or (0, expert_num)
    sorted_expert, order = _sort_pairs(expert_idx)
    kept = int(((sorted_expert >= start) & (sorted_expert < end)).sum()) if (start, end) != (0, expert_num) else n * k
    first = int(torch.searchsorted(sorted_expert, torch.tensor([start], dtype=sorted_expert.dtype))) if start else 0
    sel = order[first:first + kept]
    rows = n * k if active_num <= 0 else min(active_num, n * k)
    expanded_x = x.new_zeros((rows, x.shape[1])) if kept < rows else None
    if expanded_x is None:
        expanded_x = x.index_select(0, sel[:rows] // k)
    else:
        expanded_x[:min(kept, rows)] = x.index_select(0, sel[:rows] // k)
    inv = torch.full((n * k,), -1, dtype=torch.int32)
    inv.scatter_(0, sel, torch.arange(kept, dtype=torch.int32))
    counts = None
    if expert_tokens_num_flag:
        hist = torch.bincount(expert_idx.reshape(-1), minlength=max(expert_num, end))[start:end].to(torch.int64)
        if expert_tokens_num_type == 0:
            counts = hist.cumsum(0)
        elif expert_tokens_num_type == 1:
            counts = hist
        else:
            raise NotImplementedError("expert_tokens_num_type 2 (key_value) is not covered")
    return expanded_x, inv, counts, None


def moe_token_permute(tokens, indices, num_out_tokens=None, padded_mode=False):
    """Megatron's ``permute``; sorted_indices as the operator returns it (the inverse of the sort order)."""
    topk = indices.shape[1] if indices.dim() == 2 else 1
    order = torch.argsort(indices.reshape(-1), stable=True)
    total = order.numel()
    n = total if not num_out_tokens else (min(num_out_tokens, total) if num_out_tokens > 0
                                          else total + num_out_tokens)
    permuted = tokens.index_select(0, order[:n] // topk)
    return permuted, _inverse(order)


def moe_token_permute_with_ep(tokens, indices, *, probs=None, range=None, num_out_tokens=0, padded_mode=False):
    topk = indices.shape[1] if indices.dim() == 2 else 1
    order = torch.argsort(indices.reshape(-1), stable=True)
    total = order.numel()
    start, end = (0, num_out_tokens if num_out_tokens > 0 else total) if range is None else range
    if start == end:  # an empty window: the operator falls back to the whole permutation (MoeTokenPermute)
        start, end = 0, total
    sel = order[start:end]
    permuted = tokens.index_select(0, sel // topk)
    permuted_probs = None if probs is None else probs.reshape(-1).index_select(0, sel)
    return permuted, _inverse(order), permuted_probs


def _weighted_rows(rows, index, probs, tokens, topk):
    """Megatron's unpermute: every token's K rows gathered and ``(rows * probs).sum(1)``, in fp32."""
    gathered = rows.index_select(0, index).view(tokens, topk, rows.shape[-1])
    if probs is None:
        return gathered.float().sum(dim=1)
    return (gathered * probs.reshape(tokens, topk, 1).float()).sum(dim=1)


def moe_token_unpermute(permuted_tokens, sorted_indices, probs=None, padded_mode=False, restore_shape=None):
    topk = probs.shape[1] if probs is not None else 1
    tokens = sorted_indices.numel() // topk
    return _weighted_rows(permuted_tokens, sorted_indices, probs, tokens, topk).to(permuted_tokens.dtype)


def moe_token_unpermute_with_ep(permuted_tokens, sorted_indices, *, probs=None, num_topk=None, range=None,
                                padded_mode=False, restore_shape=None):
    """The rows of one expert-parallel window added back to their tokens with ``index_add_``."""
    topk = num_topk or (probs.shape[1] if probs is not None else 1)
    tokens = sorted_indices.numel() // topk
    start, end = (0, permuted_tokens.shape[0]) if range is None else range
    d = sorted_indices.long() - start
    pairs = ((d >= 0) & (d < end - start)).nonzero().squeeze(1)
    rows = permuted_tokens.index_select(0, d.index_select(0, pairs))
    if probs is not None:
        rows = rows * probs.reshape(-1).index_select(0, pairs).unsqueeze(1).float()
    out = torch.zeros((tokens, permuted_tokens.shape[1]), dtype=torch.float32)
    out.index_add_(0, pairs // topk, rows.float())
    return out.to(permuted_tokens.dtype)


def moe_finalize_routing(expanded_permuted_rows, skip1, skip2, bias, scales, expanded_src_to_dst_row,
                         export_for_source_row=None, drop_pad_mode=0, *, api_version=None):
    """The dropless modes: ``skip1 (+ skip2) + sum_k scales * rows[R[p(i, k)]]`` (+ the expert bias)."""
    if drop_pad_mode not in (0, 2):
        raise NotImplementedError("the bench composite covers the dropless modes (0 and 2) only")
    n, topk = scales.shape if scales is not None else (expanded_src_to_dst_row.numel(), 1)
    r = expanded_src_to_dst_row
    if drop_pad_mode == 0:  # pair (i, k) at k*N + i
        r = r.view(topk, n).t().reshape(-1)
    out = _weighted_rows(expanded_permuted_rows, r, scales, n, topk)
    if bias is not None:
        out = out + (bias.index_select(0, export_for_source_row.reshape(-1)).view(n, topk, -1).float()
                     * scales.unsqueeze(-1).float()).sum(dim=1)
    if skip1 is not None:
        out = out + skip1.float()
    if skip2 is not None:
        out = out + skip2.float()
    return out.to(expanded_permuted_rows.dtype)


def moe_re_routing(tokens, expert_token_num_per_rank, *, per_token_scales=None, expert_token_num_type=1,
                   idx_type=0):
    """vllm-ascend's reorder after the all-to-all: block ids repeated by the counts, a stable argsort by
    (local expert, source rank), a gather."""
    ranks, experts = expert_token_num_per_rank.shape
    block = torch.repeat_interleave(torch.arange(ranks * experts), expert_token_num_per_rank.reshape(-1).long())
    key = (block % experts) * ranks + block // experts
    order = torch.argsort(key, stable=True)
    out = tokens.index_select(0, order)
    scales = (per_token_scales.index_select(0, order) if per_token_scales is not None
              else torch.zeros(tokens.shape[0], dtype=torch.float32))
    counts = expert_token_num_per_rank.sum(0).to(expert_token_num_per_rank.dtype)
    return out, scales, order.to(torch.int32), counts


COMPOSITES = {name: fn for name, fn in globals().items() if name.startswith("moe_") and callable(fn)}
