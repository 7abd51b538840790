#!/usr/bin/env python3
"""Builds the safety-net programs of native/fuzz (README.md there), and sanitized copies of the three libraries.

  build.py libs  --out DIR [--sanitize asan|tsan|fuzzer|none] [--cc CC --cxx CXX]
      the three libraries of native/ built with CMake into DIR (they land in DIR/native)
  build.py tools --out DIR --include INC --libdir LIB [--sanitize ...] [--cc CC] [--only NAME,...]
      fuzz_driver, fuzz_threads, the reproducers repro_*, and with --sanitize fuzzer the libFuzzer target
      fuzz_libfuzzer, compiled against the headers INC and linked against the libraries in LIB

The operator table is generated from INC/aclnnop/*.h (gen_ops.py), so the programs cover whatever operators
the headers they are built against declare.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SAN = {
    "none": ["-O2", "-g"],
    "asan": ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"],
    "tsan": ["-O1", "-g", "-fsanitize=thread"],
    # libFuzzer (clang only): the libraries get coverage and sanitizers, the target links libFuzzer's main
    "fuzzer": ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"],
}
WARN = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"]


def run(cmd, **kw):
    print("+", " ".join(shlex.quote(str(c)) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def build_libs(a):
    flags = SAN[a.sanitize] + (["-fsanitize=fuzzer-no-link"] if a.sanitize == "fuzzer" else [])
    if a.sanitize == "fuzzer" or "clang" in (a.cc or ""):
        # clang 14's __builtin_cpu_supports does not know "f16c" (op_common.c's ISA dispatch): the clang
        # builds use the portable kernels
        flags.append("-DACLNN_MOE_NO_X86_SIMD")
    f = " ".join(flags)
    link = " ".join(x for x in flags if x.startswith("-fsanitize") or x == "-g")
    cc = a.cc or ("clang" if a.sanitize == "fuzzer" else "cc")
    cxx = a.cxx or ("clang++" if a.sanitize == "fuzzer" else "c++")
    run(["cmake", "-S", ROOT, "-B", a.out, "-DCMAKE_BUILD_TYPE=None", f"-DCMAKE_C_COMPILER={cc}",
         f"-DCMAKE_CXX_COMPILER={cxx}", f"-DCMAKE_C_FLAGS={f}", f"-DCMAKE_CXX_FLAGS={f}",
         f"-DCMAKE_SHARED_LINKER_FLAGS={link}", f"-DCMAKE_EXE_LINKER_FLAGS={link}"], stdout=subprocess.DEVNULL)
    run(["cmake", "--build", a.out, "-j", str(a.jobs)], stdout=subprocess.DEVNULL)
    print(Path(a.out) / "native")


def build_tools(a):
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    inc, lib = Path(a.include).resolve(), Path(a.libdir).resolve()
    run([sys.executable, HERE / "gen_ops.py", inc, out / "fuzz_ops_gen.h"])
    cc = a.cc or ("clang" if a.sanitize == "fuzzer" else "cc")
    base = [cc, *WARN, *SAN[a.sanitize], f"-I{out}", f"-I{HERE}", f"-I{inc}", f"-I{inc / 'aclnn'}"]
    libs = [f"-L{lib}", f"-Wl,-rpath,{lib}", "-lopapi", "-lnnopbase", "-lascendcl", "-lm", "-pthread"]
    core = [HERE / "fuzz_core.c", HERE / "fuzz_templates.c"]
    targets = {"fuzz_driver": [HERE / "fuzz_driver.c", *core], "fuzz_threads": [HERE / "fuzz_threads.c", *core]}
    for r in sorted((HERE / "repro").glob("*.c")):
        targets["repro_" + r.stem] = [r]
    if a.sanitize == "fuzzer":
        targets = {"fuzz_libfuzzer": [HERE / "fuzz_libfuzzer.c", *core]}
    only = set(a.only.split(",")) if a.only else None
    for name, srcs in targets.items():
        if only and name not in only and not any(name.startswith(o) for o in only):
            continue
        extra = ["-fsanitize=fuzzer"] if name == "fuzz_libfuzzer" else []
        run([*base, *extra, *srcs, "-o", out / name, *libs])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["libs", "tools"])
    p.add_argument("--out", required=True)
    p.add_argument("--include", default=str(ROOT / "include"))
    p.add_argument("--libdir")
    p.add_argument("--sanitize", choices=sorted(SAN), default="none")
    p.add_argument("--cc")
    p.add_argument("--cxx")
    p.add_argument("--only")
    p.add_argument("--jobs", type=int, default=int(os.environ.get("ACLNN_MOE_BUILD_JOBS", "2")))
    a = p.parse_args()
    if a.what == "libs":
        build_libs(a)
    else:
        if not a.libdir:
            p.error("tools needs --libdir")
        build_tools(a)


if __name__ == "__main__":
    main()
