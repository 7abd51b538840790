"""The reproducers of issue 12 (native/fuzz/repro: classes 1-8, and what the fuzzer found beyond them) build
against the installed package and pass: every call that was unsafe returns an error status (or, where the
issue allows either, is simply safe). .ci/safety runs them again under ASan+UBSan."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aclnn_moe.capi import backend

FUZZ = Path(__file__).resolve().parent.parent / "native" / "fuzz"
REPROS = sorted(p.stem for p in (FUZZ / "repro").glob("*.c"))


@pytest.fixture(scope="module")
def repro_bin(tmp_path_factory):
    if sys.platform == "win32" or shutil.which("cc") is None:
        pytest.skip("no POSIX C compiler (cc) to build native/fuzz/repro")
    b = backend()
    if b.name != "host":
        pytest.skip(f"the reproducers target the embedded host runtime, the backend is {b.name}")
    out = tmp_path_factory.mktemp("repro")
    r = subprocess.run([sys.executable, str(FUZZ / "build.py"), "tools", "--out", str(out), "--include",
                        str(b.include_dir), "--libdir", str(b.lib_dir), "--only", "repro_"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out


def test_every_class_has_a_reproducer():
    assert {f"class{i}" for i in range(1, 9)} <= {n.split("_")[0] for n in REPROS}


@pytest.mark.parametrize("name", REPROS)
def test_reproducer_passes(repro_bin, name):
    r = subprocess.run([str(repro_bin / f"repro_{name}")], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "ACLNN_MOE_NUM_THREADS": "2"})
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " 0 of " in r.stdout and "FAIL" not in r.stdout, r.stdout[-4000:]
