"""Expert-parallel benchmark cases for ``aclnn-moe bench``: dispatch and combine throughput per rank for EP 2 and 4
on loopback (gloo, 127.0.0.1), each beside a bare ``all_to_all_single`` of the same bytes with the same splits,
measured in the same run, so the cost of the routing around the exchange shows as a ratio (bare / phase time).

Throughput counts the bytes of the phase's main exchange that this rank sends (its own share included):
  all-to-all dispatch: T*K*H*b (the expanded rows), combine: the same rows back;
  all-gather dispatch: R*T*H*b (+ ids and weights), combine (reduce-scatter): R*T*H*b.
Run alone: ``python -m aclnn_moe.distributed.bench [--quick]``.
"""
from __future__ import annotations

import time


def _median(ts):
    ts = sorted(ts)
    return ts[len(ts) // 2]


def _bench_rank(rank, world, tokens, hidden, k, experts, repeat):
    import torch
    import torch.distributed as dist

    from ._dispatch import AllGatherDispatcher, AllToAllDispatcher

    gen = torch.Generator().manual_seed(rank)
    x = torch.randn(tokens, hidden, generator=gen)
    ids = torch.rand(tokens, experts, generator=gen).argsort(1)[:, :k].to(torch.int32)
    w = torch.rand(tokens, k, generator=gen)

    def ident(rows, counts):
        return rows

    def timed(fn):
        ts = []
        for _ in range(repeat + 1):
            dist.barrier()
            t0 = time.perf_counter()
            out = fn()
            ts.append(time.perf_counter() - t0)
        return _median(ts[1:]), out

    def bare(nrows, out_splits, in_splits):
        src = torch.empty(nrows, hidden)
        dst = torch.empty(sum(out_splits), hidden)
        return timed(lambda: dist.all_to_all_single(dst, src, out_splits, in_splits))[0]

    res = {}
    a2a = AllToAllDispatcher(experts)
    t_d, d = timed(lambda: a2a.dispatch(x, ids, w))
    t_c, _ = timed(lambda: a2a.combine(d.tokens, d.handle))
    h = d.handle
    nbytes = sum(h.send_splits) * hidden * 4
    res["all-to-all"] = dict(bytes=nbytes, dispatch=t_d, combine=t_c,
                             bare_dispatch=bare(sum(h.send_splits), h.recv_splits, h.send_splits),
                             bare_combine=bare(sum(h.recv_splits), h.send_splits, h.recv_splits))
    ag = AllGatherDispatcher(experts)
    t_d, d = timed(lambda: ag.dispatch(x, ids, w))
    t_c, _ = timed(lambda: ag.combine(ident(d.tokens, None), d.handle))
    sizes = d.handle.sizes
    res["all-gather"] = dict(bytes=world * tokens * hidden * 4, dispatch=t_d, combine=t_c,
                             bare_dispatch=bare(world * tokens, sizes, [tokens] * world),
                             bare_combine=bare(sum(sizes), [tokens] * world, sizes))
    return res


def main(quick: bool = False, worlds=(2, 4)) -> int:
    from .launch import RankError, spawn

    tokens, hidden, k, experts = (128, 256, 8, 64) if quick else (512, 1024, 8, 64)
    repeat = 3 if quick else 7
    print(f"\nexpert parallelism on loopback (gloo, 127.0.0.1): {tokens} tokens per rank, hidden {hidden} fp32, "
          f"top-{k} of {experts} experts; MB/s per rank of the phase's exchange bytes (slowest rank), beside a bare "
          "all_to_all_single of the same bytes and splits; ratio = bare time / phase time")
    print(f"{'case':<24} {'MB/rank':>8} {'phase ms':>9} {'MB/s':>8} {'bare ms':>8} {'bare MB/s':>10} {'ratio':>6}")
    for world in worlds:
        try:
            per_rank = spawn(_bench_rank, world, (tokens, hidden, k, experts, repeat), timeout=120)
        except RankError as e:
            print(f"EP {world}: FAILED: {e}")
            return 1
        for kind in ("all-to-all", "all-gather"):
            for phase in ("dispatch", "combine"):
                t = max(r[kind][phase] for r in per_rank)
                tb = max(r[kind]["bare_" + phase] for r in per_rank)
                mb = max(r[kind]["bytes"] for r in per_rank) / 1e6
                print(f"EP{world} {kind} {phase:<9} {mb:>8.2f} {t * 1e3:>9.2f} {mb / t:>8.1f} {tb * 1e3:>8.2f} "
                      f"{mb / tb:>10.1f} {tb / t:>6.2f}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(quick="--quick" in sys.argv[1:]))
