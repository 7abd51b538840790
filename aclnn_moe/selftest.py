"""``aclnn-moe selftest``: every operator the backend has, against the numpy reference.

This is the integration test an Ascend box runs after installing CANN: the same checks as on the host runtime,
now through the real libraries. Prints a table and returns non-zero if anything failed.
"""
from __future__ import annotations

import json
import time
import traceback

import numpy as np


def check_spec(spec, rng: np.random.Generator) -> int:
    """Every example of the spec through the facade against the numpy reference; returns the cases run."""
    import inspect

    from .ops import FUNCTIONS
    from .ops._compare import assert_all_same

    fn, ref = FUNCTIONS[spec.function], spec.reference()
    accepted = inspect.signature(ref).parameters
    n = 0
    for n, kwargs in enumerate(spec.examples(rng), 1):
        what = f"{spec.operator} example {n - 1}"
        got = fn(**kwargs)
        exp = ref(**{k: v for k, v in kwargs.items() if k in accepted})
        if spec.compare is not None:
            spec.compare(got, exp, kwargs, what)
        else:
            assert_all_same(got, exp, spec.result_names(), what)
    return n


def results(seed: int = 0, verbose: bool = False):
    """Yields one dict per operator: name, result ("ok", "FAIL" or "absent"), time in ms, detail."""
    from . import ops
    from .capi import has_symbol

    for spec in ops.specs():
        missing = [a for a in (spec.api, spec.phase1) if not has_symbol(a)]
        if missing:
            yield {"operator": spec.operator, "result": "absent", "ms": None,
                   "detail": f"{', '.join(missing)} not exported"}
            continue
        t0 = time.perf_counter()
        try:
            n = check_spec(spec, np.random.default_rng(seed))
            result, detail = "ok", f"{n} cases"
        except Exception as e:  # noqa: BLE001  (report every failure, keep going)
            result = "FAIL"
            detail = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            if verbose:
                detail += "\n" + traceback.format_exc()
        yield {"operator": spec.operator, "result": result, "ms": 1e3 * (time.perf_counter() - t0), "detail": detail}


def run(seed: int = 0, verbose: bool = False, as_json: bool = False) -> int:
    """Runs every operator's selftest, prints a table (or, with `as_json`, one JSON object) and returns the exit
    status: 1 if any operator failed."""
    from .capi import backend

    if as_json:
        rows = list(results(seed, verbose))
        failures = sum(r["result"] == "FAIL" for r in rows)
        print(json.dumps({"backend": backend().name, "seed": seed, "passed": failures == 0, "failures": failures,
                          "operators": rows}, indent=2))
        return 1 if failures else 0
    print(f"aclnn-moe selftest on the {backend().name} backend (seed {seed})")
    print(f"{'operator':<28} {'result':<8} {'time':>8}  detail")
    failures = 0
    for r in results(seed, verbose):
        failures += r["result"] == "FAIL"
        ms = "" if r["ms"] is None else f"{r['ms']:>6.1f}ms"
        print(f"{r['operator']:<28} {r['result']:<8} {ms:>8}  {r['detail']}")
    print("selftest " + ("passed" if failures == 0 else f"FAILED ({failures} operator(s))"))
    return 1 if failures else 0
