"""Limits of the operators, written once for Python (the C side has them in native/ops/op_limits.h)."""
MAX_EXPERTS = 2048  # expert count of gating, compute_expert_tokens
MAX_TOPK = 512  # top-k of the permute family
MAX_EXPERT_ID = 16777215  # expert ids of the permute family are < 2^24 - 1
