"""``aclnn-moe selftest``: every operator the backend has, against the numpy reference.

This is the integration test an Ascend box runs after installing CANN: the same checks as on the host runtime,
now through the real libraries. Prints a table and returns non-zero if anything failed.
"""
from __future__ import annotations

import time
import traceback

import numpy as np


def run(seed: int = 0, verbose: bool = False) -> int:
    from . import ops
    from .capi import backend, has_symbol

    print(f"aclnn-moe selftest on the {backend().name} backend (seed {seed})")
    print(f"{'operator':<28} {'result':<8} {'time':>8}  detail")
    failures = 0
    for m in ops.modules():
        missing = [a for a in m.APIS if not (has_symbol(a) and has_symbol(a + "GetWorkspaceSize"))]
        if missing:
            print(f"{m.OPERATOR:<28} {'absent':<8} {'':>8}  {', '.join(missing)} not exported")
            continue
        t0 = time.perf_counter()
        try:
            m.selftest(np.random.default_rng(seed))
            result, detail = "ok", ""
        except Exception as e:  # noqa: BLE001  (report every failure, keep going)
            failures += 1
            result = "FAIL"
            detail = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            if verbose:
                detail += "\n" + traceback.format_exc()
        print(f"{m.OPERATOR:<28} {result:<8} {1e3 * (time.perf_counter() - t0):>6.1f}ms  {detail}")
    print("selftest " + ("passed" if failures == 0 else f"FAILED ({failures} operator(s))"))
    return 1 if failures else 0
