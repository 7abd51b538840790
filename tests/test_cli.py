"""The console script: help, version, option validation, info (threads, JSON), config (used to build a program),
selftest and demo; bench's option errors (its report, JSON and helpers: test_bench.py)."""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import aclnn_moe
from aclnn_moe import cli

OPERATORS = ("MoeGatingTopK", "MoeComputeExpertTokens", "MoeReRouting", "MoeFinalizeRouting",
             "MoeTokenPermuteWithEp", "MoeTokenUnpermuteWithEp", "MoeInitRouting", "MoeInitRoutingV2")


def _cli(*args, timeout=600, env=None, module="aclnn_moe", prefix=()):
    full_env = dict(os.environ, **(env or {}))
    for k, v in (env or {}).items():
        if v is None:
            full_env.pop(k)
    return subprocess.run([*prefix, sys.executable, "-m", module, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=Path(__file__).parent, env=full_env)


# ---- help, version, python -m -----------------------------------------------------------------------------

def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def test_every_option_of_every_command_has_help():
    parser = cli.build_parser()
    for name, p in [("", parser), *_subparsers(parser).items()]:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help and action.help != argparse.SUPPRESS, (name, action.option_strings)


@pytest.mark.parametrize("command", ["", "info", "config", "selftest", "demo", "bench"])
def test_help_is_plain_text(command):
    r = _cli(*([command] if command else []), "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: aclnn-moe")
    for rst in ("``", "::", ".. ", ":func:", ":class:"):
        assert rst not in r.stdout, (rst, r.stdout)


def test_version_and_python_dash_m():
    r = _cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"aclnn-moe {aclnn_moe.__version__}"
    assert _cli("--version", module="aclnn_moe.cli").stdout == r.stdout
    exe = shutil.which("aclnn-moe", path=str(Path(sys.executable).parent))
    if exe:
        assert subprocess.run([exe, "--version"], capture_output=True, text=True).stdout == r.stdout


@pytest.mark.parametrize("args, message", [
    (["selftest", "--seed", "-1"], "--seed: must be >= 0, got -1"),
    (["selftest", "--seed", "x"], "--seed"),
    (["demo", "--tokens", "0"], "--tokens: must be >= 1, got 0"),
    (["demo", "--repeat", "0"], "--repeat: must be >= 1, got 0"),
    (["demo", "--tokens", "1.5"], "--tokens"),
    (["bench", "--repeat", "0"], "--repeat: must be >= 1"),
    (["bench", "--quick", "--only", "nonsense"], "--only: no benchmark case matches 'nonsense'"),
    (["bench", "--only", "gating_top_k,nonsense"], "'nonsense'"),
    (["bench", "--only", ","], "--only"),
    (["bench", "--progress", "sometimes"], "--progress"),
    (["nonsense"], "invalid choice"),
    ([], "required"),
])
def test_invalid_values_are_usage_errors(args, message):
    r = _cli(*args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("usage: aclnn-moe"), r.stderr


def test_plot_without_matplotlib_is_a_usage_error():
    code = ("import sys; sys.modules['matplotlib'] = None; from aclnn_moe.cli import main; "
            "sys.exit(main(['bench', '--quick', '--plot', 'x.png']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=Path(__file__).parent)
    assert r.returncode == 2 and "needs matplotlib" in r.stderr, r.stderr


# ---- info ----------------------------------------------------------------------------------------------------

def test_info_reports_the_host_runtime_and_every_operator():
    r = _cli("info")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("backend      host")
    for op in OPERATORS:
        assert f"  {op} " in r.stdout and "absent" not in r.stdout
    assert re.search(r"^threads +\d+ ", r.stdout, re.M)


def test_info_json():
    r = _cli("info", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["backend"] == "host" and data["version"] == aclnn_moe.__version__
    assert {o["name"] for o in data["operators"]} >= set(OPERATORS)
    assert all(o["state"] == "present" for o in data["operators"])
    assert all(lib["present"] for lib in data["libraries"]) and len(data["libraries"]) == 3
    assert data["threads"]["count"] >= 1


def test_info_reports_an_unusable_backend_without_a_traceback(tmp_path):
    r = _cli("info", env={"ACLNN_MOE_BACKEND": "host", "ACLNN_MOE_HOST_LIBDIR": str(tmp_path)})
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 1 and "way out" in r.stderr and "ACLNN_MOE_BACKEND=host" in r.stderr, r.stderr


@pytest.mark.parametrize("raw, expected", [
    (None, "cpus"), ("0", "cpus"), ("abc", "cpus"), ("-3", "cpus"), ("", "cpus"),
    ("3", 3), (" 2", 2), ("4x", 4), ("+1", 1), ("999", 256), ("4294967297", 1),
])
def test_host_threads_follow_the_c_runtime(raw, expected):
    """atoi() semantics of native/common/parallel.c: non-positive or no digits -> the affinity mask; capped at
    256; glibc's atoi truncates a long to int (4294967297 -> 1)."""
    env = {} if raw is None else {"ACLNN_MOE_NUM_THREADS": raw}
    n, source = cli.host_threads(env)
    assert n == (len(os.sched_getaffinity(0)) if expected == "cpus" else expected), (raw, n, source)
    if expected == "cpus":
        assert "CPUs" in source


_COUNT_POOL = """
import contextlib, io, json, os, numpy as np
from aclnn_moe import cli
def threads(): return len(os.listdir('/proc/self/task'))
out = io.StringIO()
with contextlib.redirect_stdout(out):
    assert cli.main(["info", "--json"]) == 0
before = threads()
import aclnn_moe as am
rows = np.ones((2048, 256), np.float32)   # an unpermute of 512 tokens x 4 x 256: large enough for the kernel pool
am.moe_token_unpermute(rows, np.arange(2048, dtype=np.int32), np.ones((512, 4), np.float32))
print(json.loads(out.getvalue())["threads"]["count"], threads() - before + 1)   # the workers + the caller
"""


@pytest.mark.parametrize("raw", [None, "0", "junk", "3"])
@pytest.mark.parametrize("pin", [False, True], ids=["all-cpus", "taskset-c-0"])
def test_info_threads_are_the_threads_the_runtime_starts(raw, pin):
    taskset = shutil.which("taskset")
    if pin and taskset is None:
        pytest.skip("taskset (util-linux) is not installed")
    prefix = [taskset, "-c", "0"] if pin else []
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("ACLNN_MOE_NUM_THREADS", None)
    if raw is not None:
        env["ACLNN_MOE_NUM_THREADS"] = raw
    r = subprocess.run([*prefix, sys.executable, "-c", _COUNT_POOL], capture_output=True, text=True, env=env,
                       timeout=120, cwd=Path(__file__).parent)  # not the source tree: test the installed package
    assert r.returncode == 0, r.stderr
    reported, real = map(int, r.stdout.split())
    assert reported == real, (raw, pin, r.stdout)
    if pin and raw != "3":
        assert real == 1


# ---- config, selftest, demo ------------------------------------------------------------------------------

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


def test_selftest_json():
    r = _cli("selftest", "--json", "--seed", "7")
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(r.stdout)
    assert data["passed"] is True and data["failures"] == 0 and data["seed"] == 7
    assert {o["operator"] for o in data["operators"]} >= set(OPERATORS)
    assert all(o["result"] == "ok" and o["ms"] > 0 for o in data["operators"])


def test_demo_checks_the_layer_against_a_dense_computation():
    r = _cli("demo", "--tokens", "128", "--repeat", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count(" ok") >= 4 and "demo passed" in r.stdout


def test_demo_with_one_token():
    r = _cli("demo", "--tokens", "1", "--repeat", "1")
    assert r.returncode == 0 and "demo passed" in r.stdout, r.stdout + r.stderr
