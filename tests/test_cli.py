"""The console script: info, config (used to build a program), selftest and demo exit codes and output."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "aclnn_moe.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=Path(__file__).parent)


def test_info_reports_the_host_runtime_and_every_operator():
    r = _cli("info")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("backend      host")
    for op in ("MoeGatingTopK", "MoeComputeExpertTokens", "MoeReRouting", "MoeFinalizeRouting",
               "MoeTokenPermuteWithEp", "MoeTokenUnpermuteWithEp", "MoeInitRouting", "MoeInitRoutingV2"):
        assert f"  {op} " in r.stdout and "absent" not in r.stdout


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_config_flags_build_a_c_program(tmp_path):
    cflags, libs = _cli("config", "--cflags").stdout.split(), _cli("config", "--libs").stdout.split()
    src = tmp_path / "p.c"
    src.write_text('#include "acl/acl.h"\n#include "aclnnop/aclnn_moe_gating_top_k.h"\n#include <stdio.h>\n'
                   "int main(void) { if (aclInit(NULL) || aclrtSetDevice(0)) return 1;\n"
                   '  printf("%s\\n", aclrtGetSocName()); return aclFinalize(); }\n')
    subprocess.run(["cc", str(src), *cflags, *libs, "-o", str(tmp_path / "p")], check=True)
    r = subprocess.run([str(tmp_path / "p")], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "HostCPU"
    assert _cli("config").returncode == 2


def test_selftest_passes():
    r = _cli("selftest")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "selftest passed" in r.stdout and "FAIL" not in r.stdout


def test_demo_checks_the_layer_against_a_dense_computation():
    r = _cli("demo", "--tokens", "128", "--repeat", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count(" ok") >= 4 and "demo passed" in r.stdout


def test_bench_quick_runs_one_case():
    r = _cli("bench", "--quick", "--only", "compute_expert_tokens")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "raw capi" in r.stdout and "compute_expert_tokens T*K=" in r.stdout
