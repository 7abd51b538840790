"""The fuzz driver of native/fuzz builds against the installed package (the active backend's headers and
libraries) and runs: every operator's template is a valid call that reaches its kernel, the operator table
covers every operator the bindings declare, the seed corpus replays, and a short mutated fuzz finishes with
exit 0 (no crash, no hang). The sanitized, longer runs are .ci/safety's (native/fuzz/README.md)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aclnn_moe.capi import backend, lib

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "native" / "fuzz"
CORPUS = FUZZ / "corpus"
ENV = {**os.environ, "ACLNN_MOE_NUM_THREADS": "2"}


@pytest.fixture(scope="module")
def fuzz_bin(tmp_path_factory):
    if sys.platform == "win32":
        pytest.skip("the fuzz programs are POSIX C (signals, alarm)")
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc) to build native/fuzz")
    b = backend()
    if b.name != "host":
        pytest.skip(f"the fuzz driver targets the embedded host runtime, the backend is {b.name}")
    out = tmp_path_factory.mktemp("fuzz")
    r = subprocess.run([sys.executable, str(FUZZ / "build.py"), "tools", "--out", str(out), "--include",
                        str(b.include_dir), "--libdir", str(b.lib_dir), "--only", "fuzz_driver"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out


def run(fuzz_bin, *args, timeout=600):
    return subprocess.run([str(fuzz_bin / "fuzz_driver"), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=ENV)


def test_table_covers_every_operator(fuzz_bin):
    """the generated table holds exactly the operators whose phase 1 the C bindings declare"""
    table = set(re.findall(r'\{"(aclnn\w+)", fz_params_', (fuzz_bin / "fuzz_ops_gen.h").read_text()))
    declared = {n[: -len("GetWorkspaceSize")] for n in dir(lib) if re.fullmatch(r"aclnn\w+GetWorkspaceSize", n)}
    assert table and table == declared, (table ^ declared)


def test_every_template_reaches_its_kernel(fuzz_bin):
    r = run(fuzz_bin, "--valid", "--require-kernels", "--stats", "-n", 900, "-s", 3)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ops = re.findall(r"^\s+(aclnn\w+)\s+cases\s+(\d+)\s+phase 1 ok\s+(\d+)\s+phase 2 ok\s+(\d+)$", r.stdout, re.M)
    assert len(ops) >= 9, r.stdout
    for name, cases, p1, p2 in ops:
        assert int(cases) > 0 and int(p1) == int(cases) and int(p2) == int(cases), (name, cases, p1, p2)


def test_same_seed_same_cases(fuzz_bin):
    """deterministic from the seed: a finding is replayed by its seed and case index"""
    a = run(fuzz_bin, "--templated", "--valid", "-n", 200, "-s", 5, "-v")
    b = run(fuzz_bin, "--templated", "--valid", "-n", 200, "-s", 5, "-v")
    assert a.returncode == 0 and b.returncode == 0, a.stderr[-2000:] + b.stderr[-2000:]
    assert a.stderr == b.stderr and "seed 5 case 199" in a.stderr
    one = run(fuzz_bin, "--templated", "--valid", "-n", 1, "-f", 123, "-s", 5, "-v")
    line = [x for x in a.stderr.splitlines() if "[seed 5 case 123]" in x]
    assert one.returncode == 0 and line and one.stderr.splitlines()[0] == line[0]


def test_seed_corpus_replays(fuzz_bin):
    files = sorted(CORPUS.iterdir())
    assert len(files) >= 20 and len([f for f in files if f.name.startswith("valid-")]) >= 9
    r = run(fuzz_bin, *files)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert f"replayed {len(files)} inputs" in r.stdout


@pytest.mark.parametrize("seed", [1, 20251202])
def test_short_fuzz_finishes(fuzz_bin, seed):
    """2000 mutated cases (descriptors, pointers, handles, attributes, workspaces, executor misuse): every call
    returns, no crash, no hang, over the operators with a template (.ci/safety fuzzes every operator, under
    the sanitizers)"""
    r = run(fuzz_bin, "--templated", "-n", 2000, "-s", seed, "-t", 60)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    m = re.search(r"(\d+) cases \((\d+) API sequences\), (\d+) C API calls, phase 1 ok (\d+), phase 2 ok (\d+)",
                  r.stdout)
    assert m, r.stdout
    cases, api, calls, p1, p2 = map(int, m.groups())
    assert cases == 2000 and api > 0 and calls > 10 * cases and 0 < p2 <= p1 < cases


def test_leak_loop_runs(fuzz_bin):
    r = run(fuzz_bin, "--templated", "--leak", 200)
    assert r.returncode == 0 and "200 full cycles" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
