"""``aclnn-moe selftest``: every operator the backend has, against the numpy reference.

This is the integration test an Ascend box runs after installing CANN: the same checks as on the host runtime,
now through the real libraries. Prints a table and returns non-zero if anything failed.
"""
from __future__ import annotations

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
    for i, kwargs in enumerate(spec.examples(rng)):
        what = f"{spec.operator} example {i}"
        got = fn(**kwargs)
        exp = ref(**{k: v for k, v in kwargs.items() if k in accepted})
        if spec.compare is not None:
            spec.compare(got, exp, kwargs, what)
        else:
            assert_all_same(got, exp, spec.result_names(), what)
    return i + 1


def run(seed: int = 0, verbose: bool = False) -> int:
    from . import ops
    from .capi import backend, has_symbol

    print(f"aclnn-moe selftest on the {backend().name} backend (seed {seed})")
    print(f"{'operator':<28} {'result':<8} {'time':>8}  detail")
    failures = 0
    for spec in ops.specs():
        missing = [a for a in (spec.api, spec.phase1) if not has_symbol(a)]
        if missing:
            print(f"{spec.operator:<28} {'absent':<8} {'':>8}  {', '.join(missing)} not exported")
            continue
        t0 = time.perf_counter()
        try:
            n = check_spec(spec, np.random.default_rng(seed))
            result, detail = "ok", f"{n} cases"
        except Exception as e:  # noqa: BLE001  (report every failure, keep going)
            failures += 1
            result = "FAIL"
            detail = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            if verbose:
                detail += "\n" + traceback.format_exc()
        print(f"{spec.operator:<28} {result:<8} {1e3 * (time.perf_counter() - t0):>6.1f}ms  {detail}")
    print("selftest " + ("passed" if failures == 0 else f"FAILED ({failures} operator(s))"))
    return 1 if failures else 0
