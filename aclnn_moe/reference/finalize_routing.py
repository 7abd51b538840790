"""numpy reference of aclnnMoeFinalizeRoutingV2 (and V1 == dropPadMode 0 with skip1/bias/scales given), written
from spec/semantics.md section 3.

    out[i] = skip1[i] + skip2[i] + sum_k scales[i, k] * (X[R[p(i, k)]] + bias[expert[i, k]])

p(i, k) = k*N + i in drop_pad_mode 0/1 (k-major), i*K + k in 2/3 (row-major). In modes 1/3 X is [E, C, H] seen
as [E*C, H] rows and R = -1 marks a dropped slot that contributes nothing (the NPU kernel's behaviour; the
official goldens would add scale*bias instead, see spec/semantics.md 9.1).

Numerics: fp32 in fp32; fp16 natively in fp16 with rounding after every op (acc = skip1 + skip2; t = x + bias;
t = t * scale; acc = acc + t), as the NPU kernel does; bf16 in fp32 with one RNE rounding at the end (scales may
be fp32 then).
"""
import numpy as np


def moe_finalize_routing(expanded_permuted_rows, skip1, skip2, bias, scales, expanded_src_to_dst_row,
                         export_for_source_row, drop_pad_mode=0):
    X = np.asarray(expanded_permuted_rows)
    dt = X.dtype
    if drop_pad_mode not in (0, 1, 2, 3):
        raise ValueError("drop_pad_mode must be in [0, 3]")
    drop = drop_pad_mode in (1, 3)
    if X.ndim != (3 if drop else 2):
        raise ValueError("expanded_permuted_rows must be 3-D in modes 1/3 and 2-D in modes 0/2")
    H = X.shape[-1]
    Xf = X.reshape(-1, H)
    rows = Xf.shape[0]
    R = np.asarray(expanded_src_to_dst_row).reshape(-1).astype(np.int64)
    K = np.asarray(scales).shape[1] if scales is not None else 1
    N = R.size // K
    if skip2 is not None and skip1 is None:
        raise ValueError("skip2 requires skip1")
    if bias is not None and export_for_source_row is None:
        raise ValueError("bias requires export_for_source_row")

    lo = -1 if drop else 0
    if R.size and (R.min() < lo or R.max() >= rows):
        raise IndexError("expanded_src_to_dst_row out of range")

    work = np.float16 if dt == np.float16 else np.float32
    if skip1 is not None:
        acc = np.asarray(skip1).astype(work)
        if skip2 is not None:
            acc = acc + np.asarray(skip2).astype(work)
    else:
        acc = np.zeros((N, H), work)
    acc = np.array(acc, dtype=work, copy=True)

    if bias is not None:
        B = np.asarray(bias)
        eidx = np.asarray(export_for_source_row).astype(np.int64).reshape(N, K)
        if eidx.size and (eidx.min() < 0 or eidx.max() >= B.shape[0]):
            raise IndexError("export_for_source_row out of range")
    if scales is not None:
        S = np.asarray(scales)
    i = np.arange(N)
    for k in range(K):
        pos = k * N + i if drop_pad_mode in (0, 1) else i * K + k
        r = R[pos]
        valid = r >= 0
        t = Xf[np.where(valid, r, 0)].astype(work)
        if bias is not None:
            t = t + B[eidx[:, k]].astype(work)
        if scales is not None:
            t = t * S[:, k].astype(work)[:, None]
        acc[valid] = acc[valid] + t[valid]
    return acc.astype(dt)
