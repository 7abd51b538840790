"""Fake CANN install trees for the tests, built from the host runtime's libraries (which carry CANN's names and
sonames), plus broken ones built with the C compiler: a libascendcl.so with a missing dependency, or one whose
runtime reports no device."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

STAND_INS = Path(__file__).resolve().parent


def cann_tree(root: Path, version: str = "8.5.0") -> Path:
    """A CANN layout (lib64/, version.info, set_env.sh) whose libraries are copies of the host runtime's (taken
    from the package whatever backend this process uses, so that this works on an Ascend box too)."""
    from aclnn_moe.capi._backend import host_lib_dir

    lib64 = root / "lib64"
    lib64.mkdir(parents=True)
    for name in ("libascendcl.so", "libnnopbase.so", "libopapi.so"):
        shutil.copy(host_lib_dir() / name, lib64 / name)
    (root / "version.info").write_text(f"Version={version}\n")
    (root / "set_env.sh").write_text(f"export LD_LIBRARY_PATH={lib64}:$LD_LIBRARY_PATH\n")
    return root


def _cc(*args):
    subprocess.run(["cc", *map(str, args)], check=True, capture_output=True)


def broken_tree(root: Path) -> Path:
    """A CANN tree whose libascendcl.so needs libmissing.so, which is nowhere (as when set_env.sh was not
    sourced: CANN's libraries carry no RPATH)."""
    cann_tree(root)
    lib64 = root / "lib64"
    work = root / "build"
    work.mkdir()
    (work / "missing.c").write_text("int missing_dependency_marker(void) { return 7; }\n")
    _cc("-shared", "-fPIC", work / "missing.c", "-o", work / "libmissing.so")
    (work / "acl.c").write_text(textwrap.dedent("""\
        int missing_dependency_marker(void);
        int aclInit(const char *c) { (void)c; return missing_dependency_marker() - 7; }
        """))
    _cc("-shared", "-fPIC", work / "acl.c", "-o", lib64 / "libascendcl.so", "-Wl,--no-as-needed",
        f"-L{work}", "-lmissing", "-Wl,-soname,libascendcl.so")
    shutil.rmtree(work)
    return root


def deviceless_tree(root: Path, *, status: int = 0) -> Path:
    """A CANN tree whose runtime has no device: aclrtGetDeviceCount gives 0 (status 0) or fails with ``status``;
    aclrtSetDevice fails with ACL_ERROR_RT_INVALID_DEVICEID."""
    cann_tree(root)
    src = root / "acl.c"
    src.write_text(textwrap.dedent(f"""\
        #include <stdint.h>
        #include <stddef.h>
        int aclInit(const char *c) {{ (void)c; return 0; }}
        int aclrtGetDeviceCount(uint32_t *n) {{ *n = 0; return {status}; }}
        int aclrtSetDevice(int32_t d) {{ (void)d; return 107001; }}
        int aclrtGetDevice(int32_t *d) {{ (void)d; return 107002; }}
        const char *aclGetRecentErrMsg(void) {{ return "stand-in runtime: no NPU on this machine"; }}
        int aclrtGetVersion(int32_t *a, int32_t *b, int32_t *c) {{ *a = 8; *b = 5; *c = 0; return 0; }}
        """))
    _cc("-shared", "-fPIC", src, "-o", root / "lib64" / "libascendcl.so", "-Wl,-soname,libascendcl.so")
    src.unlink()
    return root


def child_env(*, stand_in: bool = False, **env) -> dict:
    """The environment of a child process: no inherited CANN / backend variables, the stand-in torch_npu on
    PYTHONPATH when asked, then ``env``."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("ASCEND_", "ACLNN_MOE_BACKEND", "LD_LIBRARY_PATH", "PYTHONPATH"))}
    if stand_in:
        e["PYTHONPATH"] = str(STAND_INS)
    e.update({k: str(v) for k, v in env.items()})
    return e


def run(code: str, *, stand_in: bool = False, timeout: int = 300, **env) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (the backend is chosen once per process), from a directory where the
    source tree cannot shadow the installed package."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=child_env(stand_in=stand_in, **env), timeout=timeout, cwd=STAND_INS.parent)
