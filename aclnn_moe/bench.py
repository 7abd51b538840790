"""``aclnn-moe bench``: speed and memory of the active backend, as ratios measured side by side in one run.

For each case the operator runs as a planned Operation on DeviceArrays (phase 2 only: the kernel plus the
binding's per-call cost) and is compared, in the same run, with
  * the numpy reference on the same inputs (speedup = reference time / backend time),
  * a memcpy of the same byte count measured just before (bandwidth ratio = achieved GB/s / memcpy GB/s),
  * the bytes it must move (GB/s counts bytes written plus distinct bytes read).
Memory: the workspace each plan asks for, relative to the bytes of its inputs and outputs.
The overhead ladder times one tiny call four ways: function form, plan with host arrays, plan with device
arrays, and the raw capi second phase. Machines here are shared and noisy: medians of interleaved repeats.
"""
from __future__ import annotations

import time

import numpy as np

from ._dtypes import bfloat16


def _median_us(fn, repeat, warmup=2):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)) * 1e6


def _memcpy_gbps(nbytes):
    """Same-run calibration: GB/s of a numpy copy of `nbytes` (read + write counted)."""
    nbytes = max(int(nbytes), 1 << 16)
    src = np.ones(nbytes // 8, np.float64)
    dst = np.empty_like(src)
    us = _median_us(lambda: np.copyto(dst, src), 7)
    return 2 * src.nbytes / (us * 1e3)


def _routing(rng, t, k, e):
    """K distinct experts per token, uniform."""
    return np.argsort(rng.random((t, e)), axis=1)[:, :k].astype(np.int32)


def _cases(quick):
    import aclnn_moe as am
    from . import reference as ref

    rng = np.random.default_rng(0)
    decode, prefill = (16, 256) if quick else (16, 1024)
    big = 1024 if quick else 4096
    cases = []

    def add(name, op_cls, args, kwargs, ref_fn, nbytes):
        cases.append((name, op_cls, args, kwargs, ref_fn, nbytes))

    for t in (decode, prefill, big):
        x = rng.standard_normal((t, 256)).astype(bfloat16)
        b = (rng.standard_normal(256) * 0.1).astype(bfloat16)
        kw = dict(bias=b, k_group=4, group_count=8, group_select_mode=1, norm_type=1, routed_scaling_factor=2.5)
        add(f"gating_top_k dsv3 bf16 T={t}", am.MoeGatingTopK, (x, 8), kw,
            lambda x=x, kw=kw: ref.moe_gating_top_k(x, 8, **kw), x.nbytes + t * 8 * 6)
    x = rng.standard_normal((prefill, 128)).astype(bfloat16)
    add(f"gating_top_k qwen3 softmax T={prefill}", am.MoeGatingTopK, (x, 8), {},
        lambda x=x: ref.moe_gating_top_k(x, 8), x.nbytes + prefill * 8 * 6)

    for t in (decode, big):
        se = np.sort(_routing(rng, t, 8, 256).ravel()).astype(np.int32)
        add(f"compute_expert_tokens T*K={t * 8}", am.MoeComputeExpertTokens, (se, 256), {},
            lambda se=se: ref.moe_compute_expert_tokens(se, 256), se.nbytes + 1024)

    h = 7168
    for t in (decode, prefill):
        x = rng.standard_normal((t, h)).astype(bfloat16)
        idx = _routing(rng, t, 8, 256)
        row = np.arange(t * 8, dtype=np.int32).reshape(8, t).T.copy()
        moved = x.nbytes * 8 + x.nbytes  # K copies of every row written, the rows read once
        add(f"init_routing H={h} bf16 T={t}", am.MoeInitRouting, (x, row, idx, t), {},
            lambda x=x, row=row, idx=idx, t=t: ref.moe_init_routing(x, row, idx, t), moved)
        add(f"init_routing_v2 H={h} bf16 T={t}", am.MoeInitRoutingV2, (x, idx),
            dict(expert_num=256, expert_tokens_count_or_cumsum_flag=2),
            lambda x=x, idx=idx: ref.moe_init_routing_v2(x, idx, expert_num=256,
                                                         expert_tokens_count_or_cumsum_flag=2), moved)
        ep = np.sort(idx.ravel())
        r0, r1 = int(np.searchsorted(ep, 32)), int(np.searchsorted(ep, 64))  # EP8 rank 1
        add(f"token_permute_with_ep EP8 rank1 T={t}", am.MoeTokenPermuteWithEp, (x, idx),
            dict(range=[r0, r1]), lambda x=x, idx=idx, r=[r0, r1]: ref.moe_token_permute_with_ep(x, idx, range=r),
            (r1 - r0) * h * 2 + x.nbytes)
        rows = rng.standard_normal((t * 8, h)).astype(bfloat16)
        scales = rng.random((t, 8)).astype(bfloat16)
        perm = rng.permutation(t * 8).astype(np.int32)
        add(f"finalize_routing mode 0 H={h} bf16 T={t}", am.MoeFinalizeRouting,
            (rows, None, None, None, scales, perm, idx), dict(drop_pad_mode=0),
            lambda rows=rows, scales=scales, perm=perm, idx=idx: ref.moe_finalize_routing(
                rows, None, None, None, scales, perm, idx, 0), rows.nbytes + t * h * 2)
        add(f"token_unpermute_with_ep H={h} bf16 T={t}", am.MoeTokenUnpermuteWithEp, (rows, perm),
            dict(probs=scales), lambda rows=rows, perm=perm, scales=scales: ref.moe_token_unpermute_with_ep(
                rows, perm, probs=scales), rows.nbytes + t * h * 2)

    for a in (1024, 32768 if not quick else 8192):
        n, e = 16, 16
        cnt = rng.multinomial(a, np.ones(n * e) / (n * e)).reshape(n, e).astype(np.int32)
        tok = rng.integers(-128, 127, (a, h), dtype=np.int8)
        sc = rng.random(a).astype(np.float32)
        add(f"re_routing int8 EP16 A={a}", am.MoeReRouting, (tok, cnt), dict(per_token_scales=sc),
            lambda tok=tok, cnt=cnt, sc=sc: ref.moe_re_routing(tok, cnt, per_token_scales=sc), 2 * tok.nbytes)
    return cases


def _to_device(args, kwargs):
    import aclnn_moe as am

    conv = lambda v: am.to_device(v) if isinstance(v, np.ndarray) else v  # noqa: E731
    return [conv(a) for a in args], {k: conv(v) for k, v in kwargs.items()}


def _overhead(repeat):
    import aclnn_moe as am
    from .capi import ffi, lib

    se = np.zeros(8, np.int32)
    rows = [("function form, numpy in/out", lambda: am.moe_compute_expert_tokens(se, 8))]
    host_plan = am.MoeComputeExpertTokens(se, 8).plan()
    rows.append(("plan.execute, numpy in/out", host_plan.execute))
    dev_plan = am.MoeComputeExpertTokens(am.to_device(se), 8).plan()
    rows.append(("plan.execute, DeviceArray in/out", dev_plan.execute))
    ex, ws = dev_plan._executor, dev_plan._workspace_size
    phase2 = lib.aclnnMoeComputeExpertTokens
    rows.append(("raw capi phase 2 (repeatable executor)", lambda: phase2(ffi.NULL, ws, ex, ffi.NULL)))
    out = [(name, _median_us(fn, repeat * 20)) for name, fn in rows]
    host_plan.free()
    dev_plan.free()
    return out


def main(quick: bool = False, only: str | None = None) -> int:
    from .capi import backend

    repeat = 5 if quick else 15
    print(f"aclnn-moe bench on the {backend().name} backend ({'quick' if quick else 'full'} tier); "
          "medians of interleaved repeats")
    print("\nper-call overhead (MoeComputeExpertTokens, 8 rows: the kernel is negligible)")
    ladder = _overhead(repeat)
    raw = ladder[-1][1]
    for name, us in ladder:
        print(f"  {name:<42} {us:>9.2f} us   x{us / raw:>6.1f} of raw capi")

    print(f"\n{'case':<44} {'backend':>10} {'numpy ref':>11} {'speedup':>8} {'GB/s':>7} {'memcpy':>7} "
          f"{'ratio':>6} {'ws/io':>6}")
    worst = None
    for name, cls, args, kwargs, ref_fn, nbytes in _cases(quick):
        if only and not any(o in name for o in only.split(",")):
            continue
        dargs, dkw = _to_device(args, kwargs)
        op = cls(*dargs, **dkw).plan()
        us = _median_us(op.execute, repeat)
        io = sum(o.staging_nbytes for o in op._inputs + op._outputs if o is not None)
        ws_ratio = op._workspace_size / max(io, 1)
        op.free()
        ref_us = _median_us(ref_fn, max(3, repeat // 3), warmup=1)
        gbps = nbytes / (us * 1e3)
        mem = _memcpy_gbps(nbytes)
        speedup = ref_us / us
        worst = speedup if worst is None else min(worst, speedup)
        print(f"{name:<44} {us:>8.1f}us {ref_us:>9.1f}us {speedup:>7.1f}x {gbps:>7.2f} {mem:>7.2f} "
              f"{gbps / mem:>6.2f} {ws_ratio:>6.2f}")
    if worst is not None:
        print(f"\nslowest speedup over the numpy reference: {worst:.1f}x")
    return 0
