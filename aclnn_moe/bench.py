"""``aclnn-moe bench``: speed and memory of the active backend, as ratios measured side by side in one run.

For each case the operator runs as a planned Operation on DeviceArrays (phase 2 only: the kernel plus the
binding's per-call cost) and is compared, in the same run, with

* the numpy reference on the same inputs (speedup = reference time / backend time),
* a memcpy of the same byte count (bandwidth ratio = achieved GB/s / memcpy GB/s),
* the bytes it must move (GB/s counts bytes written plus distinct bytes read).

Memory: the workspace each plan asks for, relative to the bytes of its inputs and outputs.
The overhead ladder times one tiny call four ways: function form, plan with host arrays, plan with device
arrays, and the raw capi second phase. The import cost of the package is measured in fresh interpreters beside
``import numpy``.

Machines here are shared and noisy, so the variants compared with each other are timed in interleaved rounds
(one sample of each per round, the order rotating) and medians are reported: a burst of load then hits all of
them, not one.
"""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ._dtypes import bfloat16_dtype

__all__ = ["main", "case_names", "draw_plot", "format_time", "interleaved", "LEGEND"]

LEGEND = """\
columns:
  backend    median time of one planned execute() on DeviceArrays (kernel + per-call cost), this backend
  function   median time of the function form on the numpy inputs (what most callers write; plan cache on)
  fn/plan    function / backend: the cost of the function form over a plan
  numpy ref  median time of the numpy reference implementation on the same inputs
  speedup    numpy ref / backend
  GB/s       bytes the operator must move (written + distinct bytes read) / backend time
  memcpy     GB/s of a numpy copy of the same byte count, timed in the same rounds (read + write counted)
  of mcpy    GB/s / memcpy: 1.0 means the operator runs at the machine's copy bandwidth
  ws/io      workspace the plan asks for / bytes of its inputs and outputs
times are medians over interleaved rounds; us = microseconds, ms = milliseconds, s = seconds"""


# ---- formatting ------------------------------------------------------------------------------------------

def format_time(us: float | None) -> str:
    """A duration given in microseconds, in the unit that reads best: '12.5 us', '0.97 ms', '46.4 ms', '1.23 s'."""
    if us is None or not np.isfinite(us):
        return "-"
    if us < 1000:
        return f"{us:.3g} us" if us < 100 else f"{us:.0f} us"
    if us < 1e6:
        ms = us / 1e3
        return f"{ms:.3g} ms" if ms < 100 else f"{ms:.0f} ms"
    return f"{us / 1e6:.3g} s"


# ---- timing ---------------------------------------------------------------------------------------------------

def interleaved(variants: dict[str, Callable[[], Any]], rounds: int, *, every: dict[str, int] | None = None,
                batch: int = 1, warmup: int = 1) -> dict[str, list[float]]:
    """Time several variants in interleaved rounds; returns each variant's samples in microseconds.

    Each round takes one sample of every variant (of variant v only every ``every[v]`` rounds, for slow ones),
    the order rotating from round to round; a sample is the mean of `batch` back-to-back calls.
    """
    every = every or {}
    names = list(variants)
    for name in names:
        for _ in range(warmup):
            variants[name]()
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            if r % every.get(name, 1):
                continue
            fn = variants[name]
            t0 = time.perf_counter()
            for _ in range(batch):
                fn()
            samples[name].append((time.perf_counter() - t0) / batch * 1e6)
    return samples


def _median(samples: Sequence[float]) -> float:
    return float(np.median(samples)) if len(samples) else float("nan")


# ---- progress ---------------------------------------------------------------------------------------------

class _Progress:
    """Progress on stderr: a tqdm or rich bar, plain lines, or nothing."""

    def __init__(self, total: int, mode: str):
        self.total, self.done, self.t0 = total, 0, time.perf_counter()
        self._bar: Any = None
        self._rich: Any = None
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "lines"
        if mode == "bar":
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=total, file=sys.stderr, unit="case", leave=False)
            except ImportError:
                try:
                    from rich.progress import Progress

                    self._rich = Progress(transient=True)
                    self._rich.start()
                    self._task = self._rich.add_task("bench", total=total)
                except ImportError:
                    mode = "lines"
        self.mode = mode

    def step(self, label: str) -> None:
        """Announce the next item (`label`) and count the previous one as done."""
        if self._bar is not None:
            self._bar.set_description_str(label)
        elif self._rich is not None:
            self._rich.update(self._task, description=label)
        elif self.mode == "lines":
            print(f"[{self.done + 1}/{self.total}] {label}  ({time.perf_counter() - self.t0:.1f} s)",
                  file=sys.stderr, flush=True)

    def advance(self) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.update(1)
        elif self._rich is not None:
            self._rich.advance(self._task)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._rich is not None:
            self._rich.stop()


# ---- cases ----------------------------------------------------------------------------------------------

@dataclass
class _Case:
    name: str
    tokens: int  # tokens (rows) processed: the x axis of --plot
    build: Callable[[], tuple]  # -> (Operation class, args, kwargs, reference fn, bytes moved)
    family: str = field(init=False)

    def __post_init__(self):
        self.family = re.sub(r"\s+[A-Z*]+=\d+$", "", self.name)  # the case without its size


def _routing(rng, t, k, e):
    """K distinct experts per token, uniform."""
    return np.argsort(rng.random((t, e)), axis=1)[:, :k].astype(np.int32)


def _cases(quick: bool) -> list[_Case]:
    """The benchmark cases, their inputs made only when a case runs (so names are cheap to list)."""
    import aclnn_moe as am
    from . import reference as ref

    decode, prefill = (16, 256) if quick else (16, 1024)
    big = 1024 if quick else 4096
    cases: list[_Case] = []

    def add(name, tokens, build):
        seed = len(cases)
        cases.append(_Case(name, tokens, lambda: build(np.random.default_rng(seed))))

    for t in (decode, prefill, big):
        def gating(rng, t=t):
            bf16 = bfloat16_dtype()
            x = rng.standard_normal((t, 256)).astype(bf16)
            b = (rng.standard_normal(256) * 0.1).astype(bf16)
            kw = dict(bias=b, k_group=4, group_count=8, group_select_mode=1, norm_type=1, routed_scaling_factor=2.5)
            return am.MoeGatingTopK, (x, 8), kw, lambda: ref.moe_gating_top_k(x, 8, **kw), x.nbytes + t * 8 * 6
        add(f"gating_top_k dsv3 bf16 T={t}", t, gating)

    def gating_softmax(rng, t=prefill):
        x = rng.standard_normal((t, 128)).astype(bfloat16_dtype())
        return am.MoeGatingTopK, (x, 8), {}, lambda: ref.moe_gating_top_k(x, 8), x.nbytes + t * 8 * 6
    add(f"gating_top_k qwen3 softmax T={prefill}", prefill, gating_softmax)

    for t in (decode, big):
        def expert_tokens(rng, t=t):
            se = np.sort(_routing(rng, t, 8, 256).ravel()).astype(np.int32)
            return (am.MoeComputeExpertTokens, (se, 256), {}, lambda: ref.moe_compute_expert_tokens(se, 256),
                    se.nbytes + 1024)
        add(f"compute_expert_tokens T*K={t * 8}", t, expert_tokens)

    h = 7168

    def routed_rows(rng, t):
        x = rng.standard_normal((t, h)).astype(bfloat16_dtype())
        return x, _routing(rng, t, 8, 256)

    for t in (decode, prefill):
        def init_routing(rng, t=t):
            x, idx = routed_rows(rng, t)
            row = np.arange(t * 8, dtype=np.int32).reshape(8, t).T.copy()
            moved = x.nbytes * 8 + x.nbytes  # K copies of every row written, the rows read once
            return (am.MoeInitRouting, (x, row, idx, t), {}, lambda: ref.moe_init_routing(x, row, idx, t), moved)
        add(f"init_routing H={h} bf16 T={t}", t, init_routing)

        def init_routing_v2(rng, t=t):
            x, idx = routed_rows(rng, t)
            kw = dict(expert_num=256, expert_tokens_count_or_cumsum_flag=2)
            return (am.MoeInitRoutingV2, (x, idx), kw, lambda: ref.moe_init_routing_v2(x, idx, **kw),
                    x.nbytes * 8 + x.nbytes)
        add(f"init_routing_v2 H={h} bf16 T={t}", t, init_routing_v2)

        def permute(rng, t=t):
            x, idx = routed_rows(rng, t)
            ep = np.sort(idx.ravel())
            r = [int(np.searchsorted(ep, 32)), int(np.searchsorted(ep, 64))]  # EP8 rank 1
            return (am.MoeTokenPermuteWithEp, (x, idx), dict(range=r),
                    lambda: ref.moe_token_permute_with_ep(x, idx, range=r), (r[1] - r[0]) * h * 2 + x.nbytes)
        add(f"token_permute_with_ep EP8 rank1 T={t}", t, permute)

        def expert_outputs(rng, t):
            bf16 = bfloat16_dtype()
            rows = rng.standard_normal((t * 8, h)).astype(bf16)
            scales = rng.random((t, 8)).astype(bf16)
            perm = rng.permutation(t * 8).astype(np.int32)
            return rows, scales, perm, _routing(rng, t, 8, 256)

        def finalize(rng, t=t):
            rows, scales, perm, idx = expert_outputs(rng, t)
            return (am.MoeFinalizeRouting, (rows, None, None, None, scales, perm, idx), dict(drop_pad_mode=0),
                    lambda: ref.moe_finalize_routing(rows, None, None, None, scales, perm, idx, 0),
                    rows.nbytes + t * h * 2)
        add(f"finalize_routing mode 0 H={h} bf16 T={t}", t, finalize)

        def unpermute(rng, t=t):
            rows, scales, perm, _ = expert_outputs(rng, t)
            return (am.MoeTokenUnpermuteWithEp, (rows, perm), dict(probs=scales),
                    lambda: ref.moe_token_unpermute_with_ep(rows, perm, probs=scales), rows.nbytes + t * h * 2)
        add(f"token_unpermute_with_ep H={h} bf16 T={t}", t, unpermute)

    for a in (1024, 32768 if not quick else 8192):
        def re_routing(rng, a=a):
            n, e = 16, 16
            cnt = rng.multinomial(a, np.ones(n * e) / (n * e)).reshape(n, e).astype(np.int32)
            tok = rng.integers(-128, 127, (a, h), dtype=np.int8)
            sc = rng.random(a).astype(np.float32)
            return (am.MoeReRouting, (tok, cnt), dict(per_token_scales=sc),
                    lambda: ref.moe_re_routing(tok, cnt, per_token_scales=sc), 2 * tok.nbytes)
        add(f"re_routing int8 EP16 A={a}", a, re_routing)
    return cases


def case_names(quick: bool = False) -> list[str]:
    """Names of the benchmark cases of a tier (what ``--only`` matches against), without making their inputs."""
    return [c.name for c in _cases(quick)]


def _to_device(args, kwargs):
    import aclnn_moe as am

    conv = lambda v: am.to_device(v) if isinstance(v, np.ndarray) else v  # noqa: E731
    return [conv(a) for a in args], {k: conv(v) for k, v in kwargs.items()}


def _run_case(case: _Case, repeat: int) -> dict[str, Any]:
    import aclnn_moe as am

    cls, args, kwargs, ref_fn, nbytes = case.build()
    dargs, dkw = _to_device(args, kwargs)
    op = cls(*dargs, **dkw).plan()
    fn = getattr(am, cls.spec.function)
    try:
        io = sum(o.staging_nbytes for o in op._inputs + op._outputs if o is not None)
        workspace = int(op._workspace_size)
        copy_bytes = max(int(nbytes), 1 << 16)
        src = np.ones(copy_bytes // 8, np.float64)
        dst = np.empty_like(src)
        ref_every = 3 if repeat >= 9 else 1  # the reference is slow: one sample every third round
        s = interleaved({"backend": op.execute, "function": lambda: fn(*args, **kwargs), "reference": ref_fn,
                         "memcpy": lambda: np.copyto(dst, src)}, repeat, every={"reference": ref_every})
    finally:
        op.free()
    us, ref_us, mem_us = _median(s["backend"]), _median(s["reference"]), _median(s["memcpy"])
    fn_us = _median(s["function"])
    gbps = nbytes / (us * 1e3)
    mem_gbps = 2 * src.nbytes / (mem_us * 1e3)
    return {"name": case.name, "family": case.family, "tokens": case.tokens, "bytes": int(nbytes),
            "backend_us": us, "function_us": fn_us, "function_x_plan": fn_us / us, "reference_us": ref_us, "speedup": ref_us / us, "gbps": gbps,
            "memcpy_gbps": mem_gbps, "memcpy_ratio": gbps / mem_gbps, "workspace_bytes": workspace,
            "io_bytes": int(io), "ws_io": workspace / max(io, 1),
            "samples": {k: len(v) for k, v in s.items()}}


def _overhead(repeat: int) -> list[dict[str, Any]]:
    import aclnn_moe as am
    from .capi import ffi, lib

    se = np.zeros(8, np.int32)
    host_plan = am.MoeComputeExpertTokens(se, 8).plan()
    dev_plan = am.MoeComputeExpertTokens(am.to_device(se), 8).plan()
    try:
        ex, ws = dev_plan._executor, dev_plan._workspace_size
        phase2 = lib.aclnnMoeComputeExpertTokens
        variants = {
            "function form, numpy in/out": lambda: am.moe_compute_expert_tokens(se, 8),
            "plan.execute, numpy in/out": host_plan.execute,
            "plan.execute, DeviceArray in/out": dev_plan.execute,
            "raw capi phase 2 (repeatable executor)": lambda: phase2(ffi.NULL, ws, ex, ffi.NULL),
        }
        s = interleaved(variants, repeat * 4, batch=20, warmup=20)
    finally:
        host_plan.free()
        dev_plan.free()
    raw = _median(s["raw capi phase 2 (repeatable executor)"])
    return [{"path": k, "us": _median(v), "x_raw": _median(v) / raw} for k, v in s.items()]


_IMPORT_PROBE = ("import sys, time; t0 = time.perf_counter(); import {m}; "
                 "print(time.perf_counter() - t0, 'ml_dtypes' in sys.modules)")


def _import_cost(rounds: int) -> dict[str, Any]:
    """Milliseconds to import numpy and aclnn_moe, each timed inside a fresh interpreter, in interleaved rounds."""
    modules = ["numpy", "aclnn_moe"]
    times: dict[str, list[float]] = {m: [] for m in modules}
    loads_ml_dtypes = False
    for r in range(rounds):
        for m in modules[r % 2:] + modules[:r % 2]:
            out = subprocess.run([sys.executable, "-c", _IMPORT_PROBE.format(m=m)], capture_output=True, text=True,
                                 timeout=120, check=True).stdout.split()
            times[m].append(float(out[0]) * 1e3)
            loads_ml_dtypes |= m == "aclnn_moe" and out[1] == "True"
    numpy_ms, pkg_ms = _median(times["numpy"]), _median(times["aclnn_moe"])
    return {"numpy_ms": numpy_ms, "aclnn_moe_ms": pkg_ms, "ratio": pkg_ms / numpy_ms,
            "aclnn_moe_imports_ml_dtypes": loads_ml_dtypes, "rounds": rounds}


# ---- report ---------------------------------------------------------------------------------------------

def draw_plot(cases: Iterable[dict[str, Any]], path: str, title: str = "") -> None:
    """Draw time per token against tokens for each operator, beside the time a memcpy of the same bytes takes
    (the bandwidth limit), to `path` (png, svg, pdf: by its suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_family: dict[str, list[dict[str, Any]]] = {}
    for c in cases:
        by_family.setdefault(c["family"], []).append(c)
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for i, (family, rows) in enumerate(sorted(by_family.items())):
        rows = sorted(rows, key=lambda c: c["tokens"])
        color = f"C{i % 10}"
        tokens = [c["tokens"] for c in rows]
        ax.plot(tokens, [c["backend_us"] / c["tokens"] for c in rows], "o-", color=color, label=family)
        # the memcpy limit: moving this case's bytes at the copy bandwidth measured in the same rounds
        ax.plot(tokens, [c["bytes"] / (c["memcpy_gbps"] * 1e3) / c["tokens"] for c in rows], ":", color=color)
    ax.plot([], [], "k:", label="memcpy limit (same bytes, same rounds)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("tokens (rows for re_routing)")
    ax.set_ylabel("time per token (us)")
    ax.set_title(title or "aclnn-moe bench: time per token")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _print_report(result: dict[str, Any]) -> None:
    imp = result["import"]
    print(f"aclnn-moe bench on the {result['backend']} backend ({result['tier']} tier, {result['repeat']} rounds); "
          "medians of interleaved repeats")
    print(f"\nimport cost, fresh interpreters: import numpy {format_time(imp['numpy_ms'] * 1e3)}, "
          f"import aclnn_moe {format_time(imp['aclnn_moe_ms'] * 1e3)} ({imp['ratio']:.1f}x numpy; "
          f"ml_dtypes {'imported' if imp['aclnn_moe_imports_ml_dtypes'] else 'not imported'})")
    print("\nper-call overhead (MoeComputeExpertTokens, 8 rows: the kernel is negligible)")
    for row in result["overhead"]:
        print(f"  {row['path']:<42} {format_time(row['us']):>10}   x{row['x_raw']:>6.1f} of raw capi")
    if result["cases"]:
        print(f"\n{'case':<44} {'backend':>10} {'function':>10} {'fn/plan':>7} {'numpy ref':>10} {'speedup':>8} {'GB/s':>7} {'memcpy':>7} "
              f"{'of mcpy':>7} {'ws/io':>6}")
        for c in result["cases"]:
            print(f"{c['name']:<44} {format_time(c['backend_us']):>10} {format_time(c['function_us']):>10} "
                  f"{c['function_x_plan']:>6.2f}x {format_time(c['reference_us']):>10} "
                  f"{c['speedup']:>7.1f}x {c['gbps']:>7.2f} {c['memcpy_gbps']:>7.2f} {c['memcpy_ratio']:>7.2f} "
                  f"{c['ws_io']:>6.2f}")
        print(f"\nslowest speedup over the numpy reference: {result['slowest_speedup']:.1f}x; worst function form "
              f"/ plan: {result['worst_function_x_plan']:.2f}x; worst plan / memcpy time (cases of >= 16 MB): "
              + ("-" if result["worst_plan_x_memcpy"] is None else f"{result['worst_plan_x_memcpy']:.2f}x"))
        print("\n" + LEGEND)


def main(quick: bool = False, only: Sequence[str] | str | None = None, as_json: bool = False,
         plot: str | None = None, repeat: int | None = None, progress: str = "auto") -> int:
    """Run the benchmark and print its report (or one JSON object); return the exit status.

    quick: CI-sized shapes, 5 rounds; only: parts of case names to keep (a list, or a comma-separated string);
    plot: also draw the cases to this file (needs matplotlib); repeat: rounds per case; progress: "auto",
    "bar", "lines" or "none" (on stderr).
    """
    from .capi import backend

    if isinstance(only, str):
        only = [o.strip() for o in only.split(",") if o.strip()]
    repeat = repeat or (5 if quick else 15)
    cases = [c for c in _cases(quick) if not only or any(o in c.name for o in only)]
    bar = _Progress(len(cases) + 2, "none" if progress == "none" else progress)
    result: dict[str, Any] = {"version": None, "backend": backend().name, "tier": "quick" if quick else "full",
                              "repeat": repeat, "cases": []}
    try:
        from ._version import __version__

        result["version"] = __version__
        bar.step("import cost")
        result["import"] = _import_cost(2 if quick else 5)
        bar.advance()
        bar.step("per-call overhead")
        result["overhead"] = _overhead(repeat)
        bar.advance()
        for c in cases:
            bar.step(c.name)
            result["cases"].append(_run_case(c, repeat))
            bar.advance()
    finally:
        bar.close()
    speedups = [c["speedup"] for c in result["cases"]]
    result["slowest_speedup"] = min(speedups) if speedups else None
    result["worst_function_x_plan"] = max((c["function_x_plan"] for c in result["cases"]), default=None)
    # plan / memcpy only where memory is the limit: cases moving >= 16 MB (small ones measure per-call cost)
    result["worst_plan_x_memcpy"] = max((1 / c["memcpy_ratio"] for c in result["cases"] if c["bytes"] >= 16 << 20),
                                        default=None)
    if plot is not None:
        draw_plot(result["cases"], plot, f"aclnn-moe bench, {result['backend']} backend, {result['tier']} tier")
        result["plot"] = plot
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        _print_report(result)
        if plot is not None:
            print(f"\nplot written to {plot}")
        if not only and importlib.util.find_spec("torch") is not None:  # EP 2 and 4 on loopback (gloo)
            from .distributed.bench import main as ep_bench

            ep_bench(quick=quick)
    return 0
