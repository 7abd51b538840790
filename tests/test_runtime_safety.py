"""The host runtime's C regression programs (tests/c/runtime_*.c; issue 12): compiled against the installed
package's headers and libraries (`aclnn-moe config --cflags/--libs`) and run; each prints OK and exits 0 when
every case returned its documented status without a crash, a hang or a wrong result.

ACLNN_MOE_HOST_LIBDIR (e.g. an ASan+UBSan build) makes the programs load those libraries instead. The 8-thread
driver also runs under ThreadSanitizer when ACLNN_MOE_TSAN_LIBDIR names libraries built with -fsanitize=thread:
    cmake -S . -B /tmp/build-tsan -DCMAKE_C_FLAGS=-fsanitize=thread -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread
    cmake --build /tmp/build-tsan -j2 && ACLNN_MOE_TSAN_LIBDIR=/tmp/build-tsan/native python -P -m pytest \\
        tests/test_runtime_safety.py
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "c"
CC = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")

pytestmark = pytest.mark.skipif(CC is None, reason="needs a C compiler")


def _config(flag: str) -> list[str]:
    # run outside the source tree, so that the installed package answers
    out = subprocess.run([sys.executable, "-m", "aclnn_moe.cli", "config", flag], check=True, capture_output=True,
                         text=True, cwd=HERE.anchor).stdout
    return shlex.split(out)


def _build(name: str, tmp_path: Path, extra=(), libs=None) -> Path:
    exe = tmp_path / name
    cmd = [CC, "-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", *extra, *_config("--cflags"),
           str(HERE / f"{name}.c"), *(libs if libs is not None else _config("--libs")), "-lpthread", "-o", str(exe)]
    subprocess.run(cmd, check=True)
    return exe


def _run(exe: Path, *args: str, timeout: float = 300):
    env = dict(os.environ)
    libdir = os.environ.get("ACLNN_MOE_HOST_LIBDIR")
    if libdir:  # the libraries under test replace the installed ones (their RUNPATH yields to LD_LIBRARY_PATH)
        env["LD_LIBRARY_PATH"] = libdir + os.pathsep + env.get("LD_LIBRARY_PATH", "")
    p = subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=timeout)
    assert p.returncode == 0 and p.stdout.strip().endswith("OK"), (p.returncode, p.stdout, p.stderr[-4000:])


def test_hostile_handles_descriptors_workspaces_aliasing_alignment(tmp_path):
    _run(_build("runtime_handles", tmp_path))


def test_threads_streams_destroyed_under_use_and_finalize_under_load(tmp_path):
    _run(_build("runtime_threads", tmp_path))


def test_fork_while_threads_run_operators(tmp_path):
    _run(_build("runtime_fork", tmp_path), "20")


@pytest.mark.skipif(not os.environ.get("ACLNN_MOE_TSAN_LIBDIR"), reason="set ACLNN_MOE_TSAN_LIBDIR to a TSan build")
def test_threads_under_thread_sanitizer(tmp_path):
    libdir = os.environ["ACLNN_MOE_TSAN_LIBDIR"]
    exe = _build("runtime_threads", tmp_path, ["-fsanitize=thread"],
                 [f"-L{libdir}", f"-Wl,-rpath,{libdir}", "-lascendcl", "-lnnopbase", "-lopapi"])
    env = {**os.environ, "TSAN_OPTIONS": "halt_on_error=1 exitcode=66", "LD_LIBRARY_PATH": libdir}
    p = subprocess.run([str(exe)], capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0 and "ThreadSanitizer" not in p.stderr, p.stderr[-6000:]
