"""Spawn N local ranks on loopback (what ``aclnn-moe demo --ep N``, the tests and the benchmark use).

Each rank is a ``spawn``-context process joined into a gloo group at ``tcp://127.0.0.1:<free port>`` with a
group timeout, so every collective gives up after ``timeout`` seconds. The host runtime's threads are divided
among the ranks (``ACLNN_MOE_NUM_THREADS = max(1, cpus // N)``, vLLM's rule; torch's intra-op threads alike).
The parent collects one result per rank; when a rank raises, dies or the deadline passes, every rank still
running is killed and ``RankError`` names the rank and the cause. No process outlives ``spawn``.
"""
from __future__ import annotations

import datetime
import os
import queue as _queue
import socket
import time
import traceback


class RankError(RuntimeError):
    """A rank failed, died or timed out; the other ranks were stopped."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover
        return os.cpu_count() or 1


def threads_per_rank(nprocs: int) -> int:
    return max(1, usable_cpus() // max(nprocs, 1))


def init_group(rank: int, world: int, port: int, timeout: float, backend: str = "gloo"):
    import torch.distributed as dist

    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=timeout))


def _worker(rank, world, port, timeout, fn, args, results):
    import torch
    import torch.distributed as dist

    torch.set_num_threads(int(os.environ.get("ACLNN_MOE_NUM_THREADS", "1")))
    try:
        init_group(rank, world, port, timeout)
        out = fn(rank, world, *args)
        results.put(("ok", rank, out))
    except BaseException as e:  # noqa: BLE001  (reported to the parent, which stops the others)
        results.put(("error", rank, f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
        results.close()
        results.join_thread()  # flush the message before leaving
        os._exit(1)  # do not wait in the group's teardown for peers that are blocked
    try:
        dist.destroy_process_group()
    except Exception:  # noqa: BLE001
        pass


def spawn(fn, nprocs: int, args=(), *, timeout: float = 60.0, threads: int | None = None) -> list:
    """Run ``fn(rank, world, *args)`` on ``nprocs`` local ranks; returns the per-rank results in rank order.

    ``fn`` must be importable (module level); ``timeout`` bounds every collective (the group timeout) and the
    whole run (2x, plus start-up). Raises RankError on the first failure, after killing every rank."""
    import torch.multiprocessing as mp

    if nprocs < 1:
        raise ValueError(f"nprocs must be >= 1, got {nprocs}")
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    port = free_port()
    threads = threads or threads_per_rank(nprocs)
    saved = os.environ.get("ACLNN_MOE_NUM_THREADS")
    os.environ["ACLNN_MOE_NUM_THREADS"] = str(threads)  # inherited by the spawned ranks
    procs = []
    try:
        for r in range(nprocs):
            p = ctx.Process(target=_worker, args=(r, nprocs, port, timeout, fn, tuple(args), results), daemon=True)
            p.start()
            procs.append(p)
    finally:
        if saved is None:
            os.environ.pop("ACLNN_MOE_NUM_THREADS", None)
        else:
            os.environ["ACLNN_MOE_NUM_THREADS"] = saved
    deadline = time.monotonic() + 2 * timeout + 30
    out: dict = {}
    errors: dict = {}  # rank -> message, in arrival order
    error = None
    try:
        while len(out) < nprocs and not errors:
            try:
                kind, rank, value = results.get(timeout=0.2)
            except _queue.Empty:
                if time.monotonic() > deadline:
                    error = f"timed out after {2 * timeout + 30:.0f} s waiting for ranks " \
                            f"{sorted(set(range(nprocs)) - set(out))}"
                    break
                if any(r not in out and p.exitcode not in (None, 0) for r, p in enumerate(procs)):
                    errors[-1] = ""  # a rank died: collect what the others say, below
                continue
            if kind == "ok":
                out[rank] = value
            else:
                errors[rank] = value
        if errors:
            # a dead or failing rank makes its peers fail too (connection reset): gather for a moment, then name
            # the ranks that died without a word first, they are the cause
            grace = time.monotonic() + 1.5
            while time.monotonic() < grace:
                try:
                    kind, rank, value = results.get(timeout=0.1)
                    if kind != "ok":
                        errors[rank] = value
                except _queue.Empty:
                    pass
            errors.pop(-1, None)
            dead = [f"rank {r} died with exit code {p.exitcode}" for r, p in enumerate(procs)
                    if r not in out and r not in errors and p.exitcode not in (None, 0)]
            error = "; ".join(dead + [f"rank {r} failed: {m}" for r, m in errors.items()])
    finally:
        if error is not None:
            for p in procs:
                if p.is_alive():
                    p.kill()
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():  # pragma: no cover
                p.kill()
                p.join()
        results.close()
    if error is not None:
        raise RankError(error)
    return [out[r] for r in range(nprocs)]
