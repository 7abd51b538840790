"""Backend choice and symbol lookup, each in a fresh interpreter (the choice is made once per process)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aclnn_moe.capi import backend


def _run(code, **env):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("ASCEND_", "ACLNN_MOE_BACKEND"))}
    e.update(env)
    # run from tests/: `python -c` puts its working directory first on sys.path, and the repository root would
    # shadow the installed package with the unbuilt source tree
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=e,
                          timeout=120, cwd=Path(__file__).parent)


def test_host_runtime_is_chosen_without_cann():
    r = _run("from aclnn_moe.capi import backend; b = backend(); print(b.name, '|', b.reason)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("host |") and "no CANN install found" in r.stdout


def test_forcing_cann_without_cann_says_what_was_tried(tmp_path):
    r = _run("from aclnn_moe.capi import backend; backend()", ACLNN_MOE_BACKEND="cann",
             ASCEND_HOME_PATH=str(tmp_path))
    assert r.returncode != 0
    assert "ACLNN_MOE_BACKEND=cann" in r.stderr and str(tmp_path) in r.stderr
    r = _run("from aclnn_moe.capi import backend; backend()", ACLNN_MOE_BACKEND="gpu")
    assert "not one of" in r.stderr


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler to build a stand-in CANN library")
def test_an_old_cann_reports_the_missing_symbol(tmp_path):
    """A CANN tree whose op library lacks an operator: the error names the symbol, the libraries searched and
    the version problem; present runtime functions still work."""
    host = backend()
    lib64 = tmp_path / "lib64"
    lib64.mkdir()
    for p in host.runtime_libraries:
        shutil.copy(p, lib64 / p.name)
    src = tmp_path / "old_opapi.c"
    src.write_text("int aclnn_moe_test_placeholder(void) { return 0; }\n")
    subprocess.run(["cc", "-shared", "-fPIC", str(src), "-o", str(lib64 / "libopapi.so")], check=True)
    (tmp_path / "version.info").write_text("Version=8.1.RC1\n")
    r = _run("""
        from aclnn_moe.capi import backend, lib, has_symbol, SymbolNotFoundError
        print(backend().name, lib.aclrtGetSocName() is not None, has_symbol("aclnnMoeReRouting"))
        try:
            lib.aclnnMoeReRoutingGetWorkspaceSize
        except SymbolNotFoundError as e:
            print(e)
    """, ASCEND_HOME_PATH=str(tmp_path))
    assert r.returncode == 0, r.stderr
    first, msg = r.stdout.splitlines()[:2]
    assert first == "cann True False"
    assert "aclnnMoeReRoutingGetWorkspaceSize" in msg and str(lib64 / "libopapi.so") in msg
    assert "CANN version (8.1.RC1) is too old" in msg
