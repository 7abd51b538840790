"""numpy reference of aclnnMoeGatingTopKSoftmax and aclnnMoeGatingTopKSoftmaxV2, written from their documentation
(ops-transformer moe_gating_top_k_softmax(_v2)/docs) and the official golden (softmax in float32, stable top-k).

    x [N, E] or [B, S, E] -> rows of E scores
    V1 / V2 renorm 0:  s = softmax(x) = exp(x - max) * (1 / sum), y, idx = top-k of s
    V2 renorm 1:       v, idx = top-k of x; y = softmax(v) over the k values
    finished[row] true -> idx[row, :] = E (y unchanged)
    V1 row_idx[r, j] = j*N + r (N = the number of rows)

float32 arithmetic throughout (exp correctly rounded, sums left to right), as in the gating_top_k reference.
Ties rank the lower index first. y is rounded to the dtype of x: nearest-even for fp16, nearest with ties away
from zero for bf16 (the kernels' CAST_ROUND).
"""
import numpy as np

from .gating_top_k import _exp32, _seq_sum

MAX_K = 1024


def round_bf16_away(v):
    """float32 -> bfloat16 rounding to nearest, ties away from zero (AscendC CAST_ROUND); NaN stays NaN."""
    import ml_dtypes

    v = np.ascontiguousarray(v, np.float32)
    u = v.view(np.uint32)
    r = ((u + np.uint32(0x8000)) >> np.uint32(16)).astype(np.uint16)
    r = np.where(np.isnan(v), (u >> np.uint32(16)).astype(np.uint16) | np.uint16(0x40), r)
    return r.view(ml_dtypes.bfloat16)


def _to_dtype(y, dtype):
    if dtype.name == "bfloat16":
        return round_bf16_away(y)
    return y.astype(dtype)


def _softmax(v):
    with np.errstate(invalid="ignore", over="ignore"):
        e = _exp32(v - v.max(axis=-1, keepdims=True))
        return (e * (np.float32(1) / _seq_sum(e))).astype(np.float32)


def _rows(x, finished, k, allow_empty_rows):
    x = np.asarray(x)
    if x.ndim not in (2, 3):
        raise ValueError(f"x must be 2-D or 3-D, got shape {x.shape}")
    if x.shape[-1] == 0 or (not allow_empty_rows and 0 in x.shape):
        raise ValueError("x must not have a zero dimension")
    E = x.shape[-1]
    if not 1 <= k <= min(E, MAX_K):
        raise ValueError(f"k must be in [1, {min(E, MAX_K)}]")
    lead = x.shape[:-1]
    xf = x.reshape(-1, E).astype(np.float32)
    fin = None
    if finished is not None:
        finished = np.asarray(finished)
        if finished.shape != lead:
            raise ValueError(f"finished must have shape {lead}")
        fin = finished.reshape(-1).astype(bool)
    return x, xf, fin, lead


def _top_k(s, k):
    idx = np.argsort(-s, axis=-1, kind="stable")[:, :k]
    return np.take_along_axis(s, idx, axis=1), idx


def moe_gating_top_k_softmax(x, finished=None, k=1):
    """Returns ``(y [..., k] x dtype, expert_idx [..., k] int32, row_idx [..., k] int32)``."""
    x, xf, fin, lead = _rows(x, finished, int(k), allow_empty_rows=False)
    n, E = xf.shape
    y, idx = _top_k(_softmax(xf), k)
    if fin is not None:
        idx[fin] = E
    row_idx = (np.arange(k, dtype=np.int64)[None, :] * n + np.arange(n)[:, None]).astype(np.int32)
    shape = lead + (k,)
    return _to_dtype(y, x.dtype).reshape(shape), idx.astype(np.int32).reshape(shape), row_idx.reshape(shape)


def moe_gating_top_k_softmax_v2(x, *, k=1, finished=None, renorm=0, output_softmax=False):
    """Returns ``(y [..., k] x dtype, expert_idx [..., k] int32, softmax_result x-shaped float32 or None)``; the
    softmax result is produced for renorm 0 with output_softmax."""
    if renorm not in (0, 1):
        raise ValueError("renorm must be 0 or 1")
    x, xf, fin, lead = _rows(x, finished, int(k), allow_empty_rows=True)
    E = xf.shape[1]
    sm = None
    if renorm == 0:
        s = _softmax(xf)
        y, idx = _top_k(s, k)
        if output_softmax:
            sm = s.reshape(x.shape)
    else:
        v, idx = _top_k(xf, k)
        y = _softmax(v) if v.shape[0] else v
    if fin is not None:
        idx[fin] = E
    shape = lead + (k,)
    return _to_dtype(y, x.dtype).reshape(shape), idx.astype(np.int32).reshape(shape), sm
