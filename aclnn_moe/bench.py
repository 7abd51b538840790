"""``aclnn-moe bench``: where the time goes, every way a caller can run an operator, side by side in one run.

One run prints

* a header: the CPU, its caches, the load average before and after, the backend, numpy / torch versions;
* the per-call overhead ladder (issue 8, issue 13) on a tiny call (MoeComputeExpertTokens of six ints) and on a
  decode-sized call (the model's gating at T=1): the function form, the torch op ``torch.ops.aclnn_moe.<op>``
  on CPU tensors, a bare torch op (``torch.ops.aten.add`` of two small tensors), the torch composite, a plan
  executed with numpy arrays and with DeviceArrays, and the raw capi second phase on a repeatable executor;
* the op table: every forward operator with a peer composite, at T tokens per rank, timed every way:

  - function: the function form on numpy arrays (what most callers write);
  - plan: a planned Operation executed on DeviceArrays (fresh outputs every call, the caller owns them);
  - raw capi: the aclnn second phase on a repeatable executor of its own (the kernel alone);
  - torch op: ``torch.ops.aclnn_moe.<op>`` on CPU tensors;
  - composite: the same step in plain torch ops as the peers write it (``aclnn_moe._bench_composites``),
    the faster of torch on all its threads and torch on one thread (on a loaded machine waking torch's
    OpenMP threads can cost milliseconds: the peer is given its better setting);
  - numpy: the numpy reference (sampled every third round; skipped, "-", for memory-bound operators above
    T=1024, where it takes seconds);
  - memcpy: a C memcpy (one thread) moving as many bytes as the operator must (half of them read, half
    written: it copies nbytes / 2), timed in the same rounds;

  calls shorter than a millisecond are timed in batches of back-to-back calls, and every sample of a variant
  faster than 50 ms a call follows one untimed call of it (timed warm, as a serving loop runs it: on a
  virtual machine the first call after a pause can take several times as long); any variant slower than a
  second per call is warmed up once and sampled every third round;

* a summary: the worst case of each ratio against the goals of issue 13, each marked met or not met.

The machine is shared and noisy, so the variants of one case are timed in interleaved rounds (one sample of each
per round, in a shuffled order) and medians are reported: a burst of load hits all of them, not one. Compare the
ratios of one run, never absolute times across runs.
"""
from __future__ import annotations

import ctypes
import gc
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from . import _bench_cases as cases_mod
from ._bench_cases import MODELS

__all__ = ["main", "case_names", "draw_plot", "format_time", "interleaved", "machine_info", "LEGEND", "MODELS",
           "COLUMNS", "RATIOS", "GOALS"]

COLUMNS = ("function", "plan", "raw capi", "torch op", "composite", "numpy", "memcpy")
# ratio name -> (numerator column, denominator column)
RATIOS = {"fn/plan": ("function", "plan"), "top/fn": ("torch op", "function"),
          "fn/comp": ("function", "composite"), "top/comp": ("torch op", "composite"),
          "plan/mcpy": ("plan", "memcpy")}

LEGEND = """\
columns (medians over interleaved rounds; us = microseconds, ms = milliseconds, s = seconds):
  function   the function form on numpy arrays (plan cache on): what most callers write
  plan       a planned Operation, execute() on DeviceArrays (fresh outputs each call)
  raw capi   the aclnn second phase on a repeatable executor of its own: the kernel alone
  torch op   torch.ops.aclnn_moe.<op> on CPU tensors
  composite  the same step in plain torch ops, written as the peers write it (vLLM grouped_topk, searchsorted,
             argsort + index_select, (rows * probs).sum / index_add_, repeat_interleave + argsort): the faster
             of torch on all its threads and on one (--json has both)
  numpy      the numpy reference ("-": not run at this size)
  memcpy     a one-thread C memcpy moving the operator's bytes (written + distinct bytes read), same rounds
  fn/plan    function / plan      top/fn    torch op / function      plan/mcpy  plan / memcpy
  fn/comp    function / composite top/comp  torch op / composite     (below 1: faster than the composite)"""


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


def _ratio_text(r: float | None) -> str:
    if r is None or not np.isfinite(r):
        return "-"
    return f"{r:.2f}x" if r < 100 else f"{r:.0f}x"


# ---- timing ---------------------------------------------------------------------------------------------------

def interleaved(variants: dict[str, Callable[[], Any]], rounds: int, *, every: dict[str, int] | None = None,
                batch: int | dict[str, int] = 1, warmup: int = 1,
                prime: Iterable[str] = ()) -> dict[str, list[float]]:
    """Time several variants in interleaved rounds; returns each variant's samples in microseconds.

    Each round takes one sample of every variant (of variant v only every ``every[v]`` rounds, for slow ones),
    in an order shuffled from round to round (seeded): a rotation would keep every variant behind the same
    neighbour, and one behind a cache-flushing variant (the memcpy) was timed cold in every round. A sample is
    the mean of `batch` back-to-back calls (a dict: per variant, default 1). A variant named in ``prime`` is
    called once, untimed, before each of its samples: on a virtual machine the first call after another variant
    (or after any pause) finds caches and cores cold and can take several times as long as the next (seen here:
    a 1 MB memcpy 28 us back to back, 75 us after a 1 ms pause), so without it a variant sampled one call at a
    time would be timed cold and one in batches warm.
    """
    every = every or {}
    prime = set(prime)
    names = list(variants)
    batches = batch if isinstance(batch, dict) else {n: batch for n in names}
    for name in names:
        for _ in range(warmup):
            variants[name]()
    samples: dict[str, list[float]] = {n: [] for n in names}
    shuffle = np.random.default_rng(len(names) * 1000 + rounds)
    for r in range(rounds):
        order = [names[i] for i in shuffle.permutation(len(names))]
        for name in order:
            if r % every.get(name, 1):
                continue
            fn, n = variants[name], batches.get(name, 1)
            if name in prime:
                fn()
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - t0) / n * 1e6)
    return samples


def _median(samples: Sequence[float]) -> float | None:
    return float(np.median(samples)) if len(samples) else None


class _Memcpy:
    """A one-thread C memcpy (libc memmove through ctypes) of `nbytes` / 2 bytes, so that it reads and writes
    `nbytes` in all, between buffers allocated (and faulted in) once. Above `cap` bytes the same buffers (far
    larger than any cache) are copied again until the bytes are moved, so a GB-sized case costs no GB of
    buffers."""

    def __init__(self, nbytes: int, cap: int = 256 << 20):
        self.n = max(int(nbytes) // 2, 64)
        size = min(self.n, cap)
        self.src = np.ones(size, np.uint8)
        self.dst = np.ones(size, np.uint8)
        self._s, self._d = self.src.ctypes.data, self.dst.ctypes.data
        full, rest = divmod(self.n, size)
        self._chunks = [size] * full + ([rest] if rest else [])

    def __call__(self):
        for n in self._chunks:
            ctypes.memmove(self._d, self._s, n)


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


# ---- the machine --------------------------------------------------------------------------------------------

def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _caches() -> dict[str, str]:
    """Cache sizes of cpu0 ({'L1d': '32K', 'L2': '512K', 'L3': '32768K', ...}), from sysfs, else lscpu."""
    out: dict[str, str] = {}
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        entries = sorted(e for e in os.listdir(base) if e.startswith("index"))
    except OSError:
        entries = []
    for e in entries:
        level, kind, size = (_read(f"{base}/{e}/{f}") for f in ("level", "type", "size"))
        if not level or not size:
            continue
        name = f"L{level}" + {"Data": "d", "Instruction": "i"}.get(kind or "", "")
        shared = _read(f"{base}/{e}/shared_cpu_list")
        out[name] = size + (f" (cpus {shared})" if shared and level != "1" else "")
    if not out:
        try:
            text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            text = ""
        for line in text.splitlines():
            m = re.match(r"(L\d[di]?) cache:\s*(.+)", line)
            if m:
                out[m.group(1)] = m.group(2).strip()
    return out


def _cpu_model() -> str:
    text = _read("/proc/cpuinfo") or ""
    m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return m.group(1).strip() if m else (platform.processor() or platform.machine() or "unknown")


def machine_info() -> dict[str, Any]:
    """The CPU, its caches, cores, memory and the library versions (the header of the report)."""
    from .cli import host_threads
    from .capi import backend

    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    mem = re.search(r"MemTotal:\s*(\d+) kB", _read("/proc/meminfo") or "")
    info: dict[str, Any] = {
        "cpu": _cpu_model(), "cores": os.cpu_count(), "usable_cpus": usable, "caches": _caches(),
        "memory_gib": round(int(mem.group(1)) / 2**20, 1) if mem else None,
        "transparent_hugepages": _read("/sys/kernel/mm/transparent_hugepage/enabled"),
        "backend": backend().name, "host_threads": host_threads()[0], "python": platform.python_version(),
        "numpy": np.__version__, "torch": None, "torch_threads": None,
    }
    torch = _torch()
    if torch is not None:
        info["torch"], info["torch_threads"] = torch.__version__, torch.get_num_threads()
    return info


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# ---- torch (optional) ---------------------------------------------------------------------------------------

_TORCH: Any = False


def _torch():
    """torch with the aclnn_moe ops registered, or None when torch is not installed."""
    global _TORCH
    if _TORCH is False:
        if importlib.util.find_spec("torch") is None:
            _TORCH = None
        else:
            import torch

            import aclnn_moe.torch  # noqa: F401  (registers torch.ops.aclnn_moe)
            _TORCH = torch
    return _TORCH


def _to_torch(v):
    from ._operands import numpy_to_torch

    return numpy_to_torch(v) if isinstance(v, np.ndarray) else v


# ---- the ways to call one operator -----------------------------------------------------------------------------

class _Ways:
    """Every way to call one operator on one set of inputs (numpy `args` / `kwargs` of the function form)."""

    def __init__(self, function: str, args: tuple, kwargs: dict, *, host_plan: bool = False):
        import aclnn_moe as am
        from .capi import ffi, lib

        self.function = function
        self.fn = getattr(am, function)
        cls = getattr(am, am.ops.SPECS[function].cls)
        conv = lambda v: am.to_device(v) if isinstance(v, np.ndarray) else v  # noqa: E731
        self._plans = []
        dev_args, dev_kwargs = [conv(a) for a in args], {k: conv(v) for k, v in kwargs.items()}
        self.plan = cls(*dev_args, **dev_kwargs).plan()
        # the raw second phase runs on a plan of its own, never executed through the facade: its descriptors stay
        # bound to the outputs it was described with (an executed plan binds each call's fresh outputs, which are
        # gone once the caller drops them)
        self.raw_plan = cls(*dev_args, **dev_kwargs).plan()
        self._plans += [self.plan, self.raw_plan]
        self.host_plan = cls(*args, **kwargs).plan() if host_plan else None
        if self.host_plan is not None:
            self._plans.append(self.host_plan)
        ex, ws = getattr(self.raw_plan, "_executor", None), int(getattr(self.raw_plan, "_workspace_size", 0))
        self.workspace_bytes = ws
        self._ws = None
        self.raw = None
        if ex is not None:  # (a backend refusing repeatable executors has no raw second phase to time)
            ptr = ffi.NULL
            if ws:
                p = ffi.new("void **")
                if lib.aclrtMalloc(p, ws, lib.ACL_MEM_MALLOC_HUGE_FIRST) == 0:
                    ptr = self._ws = p[0]
            if ws == 0 or self._ws is not None:
                phase2 = getattr(lib, self.raw_plan.api)
                self.raw = lambda: phase2(ptr, ws, ex, ffi.NULL)
                status = self.raw()
                if status:  # (a failing second phase returns at once: its time would mean nothing)
                    raise RuntimeError(f"bench: {self.raw_plan.api} returned {status} on its own plan")
        self.torch_op = self.composite = self.composite_1t = None
        torch = _torch()
        if torch is not None:
            from ._bench_composites import COMPOSITES

            targs = [_to_torch(a) for a in args]
            tkw = {k: _to_torch(v) for k, v in kwargs.items()}
            top = getattr(torch.ops.aclnn_moe, function)
            comp = COMPOSITES[function]
            self.torch_op = lambda: top(*targs, **tkw)
            self.composite = lambda: comp(*targs, **tkw)
            self.composite_1t = None
            threads = self.torch_threads = torch.get_num_threads()
            if threads > 1:
                def composite_1t():
                    torch.set_num_threads(1)
                    try:
                        return comp(*targs, **tkw)
                    finally:
                        torch.set_num_threads(threads)
                self.composite_1t = composite_1t
            self.torch_args = (targs, tkw)

    def free(self) -> None:
        from .capi import lib

        for p in self._plans:
            p.free()
        self._plans = []
        if self._ws is not None:
            lib.aclrtFree(self._ws)
            self._ws = None


# ---- the overhead ladder --------------------------------------------------------------------------------------

def _ladder_call(label: str, function: str, args: tuple, kwargs: dict, rounds: int) -> dict[str, Any]:
    ways = _Ways(function, args, kwargs, host_plan=True)
    try:
        v: dict[str, Callable] = {"function form, numpy in/out": lambda: ways.fn(*args, **kwargs)}
        torch = _torch()
        if torch is not None:
            a, b = torch.ones(8), torch.ones(8)
            add = torch.ops.aten.add
            v["torch op, CPU tensors"] = ways.torch_op
            v["bare torch op (aten.add of 2 small tensors)"] = lambda: add(a, b)
            v["torch composite"] = ways.composite
            if ways.composite_1t is not None:
                v["torch composite, 1 torch thread"] = ways.composite_1t
        v["plan.execute, numpy in/out"] = ways.host_plan.execute
        v["plan.execute, DeviceArray in/out"] = ways.plan.execute
        if ways.raw is not None:
            v["raw capi phase 2 (repeatable executor)"] = ways.raw
        s = interleaved(v, rounds, batch=20, warmup=20)
    finally:
        ways.free()
    med = {k: _median(x) for k, x in s.items()}
    raw = med.get("raw capi phase 2 (repeatable executor)")
    fn = med["function form, numpy in/out"]
    rows = [{"path": k, "us": us, "x_raw": us / raw if raw else None, "x_function": us / fn} for k, us in med.items()]
    return {"call": label, "rows": rows}


def _ladder(model, repeat: int) -> list[dict[str, Any]]:
    se = np.array([0, 0, 1, 2, 2, 2], np.int32)
    out = [_ladder_call("tiny call: compute_expert_tokens of 6 ints, 3 experts", "moe_compute_expert_tokens",
                        (se, 3), {}, repeat * 4)]
    b = cases_mod.build("gating_top_k", model, 1, model.hidden, seed=12345)
    out.append(_ladder_call(f"decode call: gating_top_k {model.title} T=1 (E={model.experts}, K={model.top_k})",
                            b.function, b.args, b.kwargs, repeat * 4))
    return out


# ---- the op table --------------------------------------------------------------------------------------------------

@dataclass
class _Case:
    name: str
    op: str
    tokens: int
    seed: int


REFERENCE_MAX_TOKENS = 1024  # memory-bound operators: the numpy reference takes seconds above this


def _cases(quick: bool, model: str = "dsv3") -> list[_Case]:
    out = []
    for op in cases_mod.OPS:
        for t in cases_mod.tokens_of_tier(quick):
            out.append(_Case(f"{op} T={t}", op, t, seed=len(out)))
    return out


def matches(part: str, name: str) -> bool:
    """Whether an ``--only`` part selects a case: a substring of its name not followed by a digit ("T=1"
    selects T=1, not T=16)."""
    return re.search(re.escape(part) + r"(?!\d)", name) is not None


def case_names(quick: bool = False, model: str = "dsv3") -> list[str]:
    """Names of the op-table cases of a tier (what ``--only`` matches against), without making their inputs."""
    return [c.name for c in _cases(quick, model)]


def _result_check(function: str, ours, theirs) -> str | None:
    """None when the composite's results equal the operator's (floats to bf16 rounding), else what differs."""
    from ._operands import numpy_to_torch  # noqa: F401  (torch is there: theirs came from it)

    ours = ours if isinstance(ours, tuple) else (ours,)
    theirs = theirs if isinstance(theirs, tuple) else (theirs,)
    if len(ours) != len(theirs):
        return f"{len(theirs)} results, the operator returns {len(ours)}"
    for i, (o, t) in enumerate(zip(ours, theirs)):
        if o is None or t is None:
            if (o is None) != (t is None):
                return f"result {i}: one side is None"
            continue
        t = t.float().numpy() if str(t.dtype) == "torch.bfloat16" else t.numpy()
        o = np.asarray(o)
        if o.shape != t.shape:
            return f"result {i}: shape {t.shape}, the operator's {o.shape}"
        if o.dtype.kind in "iub" and t.dtype.kind in "iub":
            if not np.array_equal(o, t):
                return f"result {i}: {int((o != t).sum())} elements differ"
        elif not np.allclose(o.astype(np.float32), t.astype(np.float32), rtol=2e-2, atol=2e-2):
            return f"result {i}: max difference {float(np.abs(o.astype(np.float32) - t).max()):.3g}"
    return None


PRIME_MAX_S = 0.05  # variants faster than this a call get one untimed call before each sample
SLOW_S = 1.0  # a variant slower than this a call is warmed up once and sampled every third round
_COMPOSITE_1T = "composite, 1 torch thread"
CHECK_MAX_TOKENS = 256  # the run also checks each composite against the operator up to this size


def _run_case(case: _Case, model, hidden: int, rounds: int | None, default_rounds: int, budget_s: float,
              batch_s: float = 1e-3, batch_max: int = 20) -> dict[str, Any]:
    from . import reference

    b = cases_mod.build(case.op, model, case.tokens, hidden, case.seed)
    ways = _Ways(b.function, b.args, b.kwargs)
    memcpy = _Memcpy(b.nbytes)
    ref = getattr(reference, b.function)
    run_ref = not b.memory_bound or case.tokens <= REFERENCE_MAX_TOKENS
    check = None
    try:
        v: dict[str, Callable] = {"function": lambda: ways.fn(*b.args, **b.kwargs), "plan": ways.plan.execute}
        if ways.raw is not None:
            v["raw capi"] = ways.raw
        if ways.torch_op is not None:
            v["torch op"] = ways.torch_op
            v["composite"] = ways.composite
            if ways.composite_1t is not None:
                v[_COMPOSITE_1T] = ways.composite_1t
        if run_ref:
            v["numpy"] = lambda: ref(*b.args, **b.kwargs)
        v["memcpy"] = memcpy
        # warm-up: each called once (the function form's first call plans and fills the plan cache) and, when
        # that took less than SLOW_S, once more; the last call's time sizes the batches and the rounds
        est = {}
        for name, f in v.items():
            t0 = time.perf_counter()
            res = f()
            est[name] = time.perf_counter() - t0
            if name == "function" and ways.composite is not None and case.tokens <= CHECK_MAX_TOKENS \
                    and not b.function.startswith("moe_gating"):  # (gating: random logits have ties)
                check = _result_check(b.function, res, ways.composite()) or "equal"
            del res
            if est[name] < SLOW_S:  # the faster of two more calls (the first one plans; the next may be cold)
                again = []
                for _ in range(2):
                    t0 = time.perf_counter()
                    f()
                    again.append(time.perf_counter() - t0)
                est[name] = min(again)
        # short calls are timed in back-to-back batches (as a serving loop makes them: the thread pools stay
        # warm), of up to batch_max calls lasting about batch_s
        batch = {n: int(min(batch_max, max(1, batch_s / max(t, 1e-7)))) for n, t in est.items()}
        # the numpy reference, and any variant slower than SLOW_S a call, are sampled every third round
        slow = {n for n, t in est.items() if n == "numpy" or t >= SLOW_S}
        if rounds is None:
            per_round = sum(t * batch[n] / (3 if n in slow else 1) for n, t in est.items())
            rounds = int(max(3, min(default_rounds, budget_s / max(per_round, 1e-9))))
        every = {n: 3 for n in slow if n != "numpy" or rounds >= 9}
        # every variant whose call is short next to a pause is timed warm (see ``interleaved``), as a serving loop
        # calling it back to back runs it
        s = interleaved(v, rounds, every=every, batch=batch, warmup=0,
                        prime=[n for n, t in est.items() if t < PRIME_MAX_S])
    finally:
        ways.free()
    times = {c: _median(s[c]) if c in s else None for c in COLUMNS}
    composite_threads = None
    if times["composite"] is not None:  # the peer at its best: torch on all its threads, or on one
        composite_threads = ways.torch_threads
        one = _median(s.get(_COMPOSITE_1T, []))
        if one is not None and one < times["composite"]:
            times["composite"], composite_threads = one, 1
    ratios = {r: (times[a] / times[d] if times[a] and times[d] else None) for r, (a, d) in RATIOS.items()}
    return {"name": case.name, "op": case.op, "function": b.function, "tokens": case.tokens, "hidden": hidden,
            "bytes": int(b.nbytes), "memory_bound": b.memory_bound, "times_us": times, "ratios": ratios,
            "samples": {c: len(x) for c, x in s.items()}, "batch": batch, "rounds": rounds,
            "plan_gbps": b.nbytes / (times["plan"] * 1e3) if times["plan"] else None,
            "memcpy_gbps": b.nbytes / (times["memcpy"] * 1e3) if times["memcpy"] else None,
            "workspace_bytes": ways.workspace_bytes, "composite_check": check,
            "composite_threads": composite_threads, "composite_all_threads_us": _median(s.get("composite", [])),
            "composite_one_thread_us": _median(s.get(_COMPOSITE_1T, [])), **b.extra}


# ---- the summary -----------------------------------------------------------------------------------------------------

# (key, text, ratio or "tiny", limit, which cases: predicate on a case row)
GOALS = (
    ("function_vs_plan_large", "function form <= 1.5x plan at T >= 256", "fn/plan", 1.5,
     lambda c: c["tokens"] >= 256),
    ("function_vs_plan_small", "function form <= 3x plan at T <= 16", "fn/plan", 3.0, lambda c: c["tokens"] <= 16),
    ("tiny_call", "tiny call (function form) <= 10 us", "tiny", 10.0, None),
    ("function_vs_composite", "function form faster than the torch composite (every op and T)", "fn/comp", 1.0,
     lambda c: True),
    ("torch_op_vs_composite", "torch op faster than the torch composite (every op and T)", "top/comp", 1.0,
     lambda c: True),
    ("plan_vs_memcpy", "plan <= 1.3x memcpy, memory-bound ops at T >= 4096", "plan/mcpy", 1.3,
     lambda c: c["memory_bound"] and c["tokens"] >= 4096),
)


def _summary(result: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key, text, ratio, limit, pick in GOALS:
        worst, where = None, None
        if ratio == "tiny":
            for row in result["ladder"][0]["rows"] if result.get("ladder") else []:
                if row["path"].startswith("function form"):
                    worst, where = row["us"], result["ladder"][0]["call"]
        else:
            for c in result["cases"]:
                r = c["ratios"][ratio]
                if r is not None and pick(c) and (worst is None or r > worst):
                    worst, where = r, c["name"]
        met = None if worst is None else (worst < limit if limit == 1.0 else worst <= limit)
        out.append({"goal": key, "text": text, "ratio": ratio, "limit": limit, "worst": worst, "case": where,
                    "met": met})
    # informative (issue 8): what the torch op adds to the function form
    worst, where = None, None
    for c in result["cases"]:
        r = c["ratios"]["top/fn"]
        if r is not None and (worst is None or r > worst):
            worst, where = r, c["name"]
    out.append({"goal": "torch_op_vs_function", "text": "torch op / function form (informative, issue 8)",
                "ratio": "top/fn", "limit": None, "worst": worst, "case": where, "met": None})
    return out


# ---- report -----------------------------------------------------------------------------------------------------

def draw_plot(cases: Iterable[dict[str, Any]], path: str, title: str = "") -> None:
    """Draw time per token against tokens for each operator (plan, and the function form dashed), beside the
    time a memcpy of the same bytes takes in the same rounds, to `path` (png, svg, pdf: by its suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_op: dict[str, list[dict[str, Any]]] = {}
    for c in cases:
        by_op.setdefault(c["op"], []).append(c)
    fig, ax = plt.subplots(figsize=(10, 6))
    for i, (op, rows) in enumerate(sorted(by_op.items())):
        rows = sorted(rows, key=lambda c: c["tokens"])
        color = f"C{i % 10}"
        tokens = [c["tokens"] for c in rows]
        per = lambda col: [(c["times_us"][col] or np.nan) / c["tokens"] for c in rows]  # noqa: E731
        ax.plot(tokens, per("plan"), "o-", color=color, label=op)
        ax.plot(tokens, per("function"), "--", color=color, alpha=0.6)
        ax.plot(tokens, per("memcpy"), ":", color=color)
    ax.plot([], [], "k--", label="function form")
    ax.plot([], [], "k:", label="memcpy of the same bytes (same rounds)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("tokens per rank")
    ax.set_ylabel("time per token (us)")
    ax.set_title(title or "aclnn-moe bench: time per token")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _print_report(result: dict[str, Any]) -> None:
    m = result["machine"]
    model = MODELS[result["model"]]
    print(f"aclnn-moe bench {result['version']} on the {m['backend']} backend ({result['tier']} tier, model "
          f"{result['model']}: {model.title}, H={result['hidden']}, E={model.experts}, K={model.top_k}, bf16); "
          "medians of interleaved rounds")
    caches = ", ".join(f"{k} {v}" for k, v in m["caches"].items()) or "unknown"
    print(f"cpu: {m['cpu']}; {m['cores']} cores ({m['usable_cpus']} usable), host runtime threads "
          f"{m['host_threads']}; caches: {caches}; memory {m['memory_gib']} GiB")
    print(f"python {m['python']}, numpy {m['numpy']}, torch {m['torch'] or 'not installed'}"
          + (f" ({m['torch_threads']} threads)" if m["torch"] else "")
          + f"; load average (1, 5, 15 min) before {result['load_before']}, after {result['load_after']}")
    imp = result.get("import")
    if imp:
        print(f"import cost, fresh interpreters: import numpy {format_time(imp['numpy_ms'] * 1e3)}, "
              f"import aclnn_moe {format_time(imp['aclnn_moe_ms'] * 1e3)} ({imp['ratio']:.1f}x numpy; "
              f"ml_dtypes {'imported' if imp['aclnn_moe_imports_ml_dtypes'] else 'not imported'})")
    for call in result["ladder"]:
        print(f"\nper-call overhead, {call['call']}")
        for row in call["rows"]:
            xr = "" if row["x_raw"] is None else f"x{row['x_raw']:>7.1f} of raw capi"
            print(f"  {row['path']:<44} {format_time(row['us']):>9}   {xr}")
    if result["cases"]:
        heads = ["function", "plan", "raw capi", "torch op", "composite", "numpy", "memcpy"]
        width = max(len(c["name"]) for c in result["cases"]) + 1
        print(f"\n{'case':<{width}}" + "".join(f"{h:>10}" for h in heads) + "".join(f"{r:>10}" for r in RATIOS))
        for c in result["cases"]:
            print(f"{c['name']:<{width}}" + "".join(f"{format_time(c['times_us'][h]):>10}" for h in heads)
                  + "".join(f"{_ratio_text(c['ratios'][r]):>10}" for r in RATIOS))
        checks = [c for c in result["cases"] if c["composite_check"] is not None]
        bad = [c for c in checks if c["composite_check"] != "equal"]
        print(f"\ncomposites checked against the operators' results in this run (T <= {CHECK_MAX_TOKENS}, gating "
              f"in the tests): {len(checks) - len(bad)} of {len(checks)} equal"
              + "".join(f"\n  MISMATCH {c['name']}: {c['composite_check']}" for c in bad))
        print(f"numpy reference: memory-bound ops above T={REFERENCE_MAX_TOKENS} not run ('-'); sampled every "
              "third round when there are 9 or more")
    print("\nsummary against the goals of issue 13 (worst case of each ratio):")
    for g in result["summary"]:
        worst = g["worst"]
        if worst is None:
            val, verdict = "-", "n/a (no case)"
        else:
            val = format_time(worst) if g["ratio"] == "tiny" else _ratio_text(worst)
            verdict = "" if g["met"] is None else ("met" if g["met"] else "NOT MET")
        print(f"  {g['text']:<66} worst {val:>8}  {verdict:<8} ({g['case'] or '-'})")
    print("\n" + LEGEND)


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


def main(quick: bool = False, only: Sequence[str] | str | None = None, as_json: bool = False,
         plot: str | None = None, repeat: int | None = None, progress: str = "auto", model: str = "dsv3") -> int:
    """Run the benchmark and print its report (or one JSON object); return the exit status.

    quick: CI-sized shapes (T <= 1024, H <= 512) and fewer rounds; only: parts of case names to keep (a list,
    or a comma-separated string); plot: also draw the cases to this file (needs matplotlib); repeat: rounds per
    case (default: 7 quick / 15 full, fewer where a round takes long, at least 3); progress: "auto", "bar",
    "lines" or "none" (on stderr); model: a key of ``MODELS`` (dsv3, qwen3, mixtral).
    """
    import aclnn_moe as am
    from ._version import __version__

    if model not in MODELS:
        raise ValueError(f"model: one of {', '.join(MODELS)}, got {model!r}")
    m = MODELS[model]
    if isinstance(only, str):
        only = [o.strip() for o in only.split(",") if o.strip()]
    cases = [c for c in _cases(quick, model) if not only or any(matches(o, c.name) for o in only)]
    hidden = cases_mod.hidden_of_tier(m, quick)
    default_rounds = repeat or (7 if quick else 15)
    budget_s = 1.5 if quick else 8.0
    bar = _Progress(len(cases) + (1 if only else 2), "none" if progress == "none" else progress)
    result: dict[str, Any] = {"version": __version__, "tier": "quick" if quick else "full", "model": model,
                              "hidden": hidden, "repeat": repeat, "load_before": _loadavg(), "cases": []}
    result["machine"] = machine_info()
    result["backend"] = result["machine"]["backend"]
    t0 = time.perf_counter()
    try:
        if not only:  # (a whole-run measure, like the EP bench: not with --only)
            bar.step("import cost")
            result["import"] = _import_cost(1 if quick else 5)
            bar.advance()
        bar.step("per-call overhead")
        result["ladder"] = _ladder(m, repeat or (5 if quick else 15))
        bar.advance()
        for c in cases:
            bar.step(c.name)
            result["cases"].append(_run_case(c, m, hidden, repeat, default_rounds, budget_s,
                                             *((3e-4, 5) if quick else (1e-3, 20))))
            am.plan_cache.clear()  # (the function form's plans of this case hold its intermediates)
            gc.collect()  # free this case's arrays (GBs at T=16384) before the next is built
            bar.advance()
    finally:
        bar.close()
    result["load_after"] = _loadavg()
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["summary"] = _summary(result)
    if plot is not None:
        draw_plot(result["cases"], plot, f"aclnn-moe bench, {result['backend']} backend, {result['tier']} tier, "
                                         f"{m.title}")
        result["plot"] = plot
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        _print_report(result)
        print(f"\n(the run took {result['seconds']} s)")
        if plot is not None:
            print(f"\nplot written to {plot}")
        if not only and _torch() is not None:  # EP 2 and 4 on loopback (gloo)
            from .distributed.bench import main as ep_bench

            ep_bench(quick=quick)
    return 0
