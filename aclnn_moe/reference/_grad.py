"""Shared numpy pieces of the grad references: the fixed summation orders of the host kernels
(native/ops/moe_grad_common.c), written independently of them."""
import numpy as np

LANES = 64


def dot_lanes(v, g):
    """Row-wise sum of v * g (float32 [n, H]): 64 lanes, lane l summing elements j = l (mod 64) in order, then the
    lanes folded by halves (32, 16, ..., 1)."""
    v = np.asarray(v, np.float32)
    g = np.asarray(g, np.float32)
    n, h = v.shape
    if n == 0:
        return np.zeros(0, np.float32)
    pad = (-h) % LANES
    prod = np.concatenate([v * g, np.zeros((n, pad), np.float32)], axis=1).reshape(n, -1, LANES)
    if prod.shape[1] == 0:
        return np.zeros(n, np.float32)
    lanes = np.cumsum(prod, axis=1, dtype=np.float32)[:, -1]
    w = LANES // 2
    while w >= 1:
        lanes = lanes[:, :w] + lanes[:, w:2 * w]
        w //= 2
    return lanes[:, 0]


def tree_sum(terms):
    """Sum float32 terms [T, K, H] over K as a binary tree ((t0 + t1) + (t2 + t3)) + ..., K padded with zero rows
    to a power of two."""
    terms = np.asarray(terms, np.float32)
    t, k, h = terms.shape
    p = 1
    while p < k:
        p *= 2
    if p != k:
        terms = np.concatenate([terms, np.zeros((t, p - k, h), np.float32)], axis=1)
    while terms.shape[1] > 1:
        terms = terms[:, 0::2] + terms[:, 1::2]
    return terms[:, 0] if k else np.zeros((t, h), np.float32)


def sequential_sum(terms, use):
    """acc = 0; acc += terms[:, k] where use[:, k], k ascending (float32)."""
    terms = np.asarray(terms, np.float32)
    acc = np.zeros((terms.shape[0], terms.shape[2]), np.float32)
    for k in range(terms.shape[1]):
        sel = use[:, k]
        acc[sel] += terms[sel, k]
    return acc


def check_index(idx, lo, hi, allow_drop, name):
    bad = (idx < lo) | (idx >= hi)
    if allow_drop:
        bad &= idx != -1
    if np.any(bad):
        raise IndexError(f"{name} has values outside [{-1 if allow_drop else lo}, {hi})")


def check_unique(rows, name):
    sel = rows[rows >= 0]
    if sel.size != np.unique(sel).size:
        raise IndexError(f"{name} selects a row twice")
