"""aarch64 (Kunpeng) build: native/ cross-compiles with Debian's aarch64 toolchain through
cmake/aarch64-linux-gnu.cmake, and every C sample built against those libraries prints, under qemu-user, exactly
what the same sample prints on this machine's native build (each sample also checks its own results), and the
operators with x86 SIMD kernels give bit-identical outputs on aarch64's portable paths (tests/c/ops_digest.c).

Needs `apt-get install gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user` (.ci/run installs them); skips,
saying which is missing, elsewhere."""
from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLCHAIN = ROOT / "cmake" / "aarch64-linux-gnu.cmake"
SYSROOT = Path("/usr/aarch64-linux-gnu")
SAMPLES = sorted(p.stem for p in (ROOT / "samples").glob("*.c"))
LIBRARIES = ("libascendcl.so", "libnnopbase.so", "libopapi.so")
EM_AARCH64 = 183


def _missing_tools():
    need = {"aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu", "aarch64-linux-gnu-g++": "g++-aarch64-linux-gnu",
            "qemu-aarch64": "qemu-user", "cmake": "cmake", "cc": "a C compiler"}
    missing = [f"{tool} ({pkg})" for tool, pkg in need.items() if shutil.which(tool) is None]
    if not (SYSROOT / "lib").is_dir():
        missing.append(f"{SYSROOT} (libc6-dev-arm64-cross)")
    return missing


pytestmark = [
    pytest.mark.skipif(platform.machine() != "x86_64", reason="cross-builds from x86_64 to aarch64"),
    pytest.mark.skipif(bool(_missing_tools()), reason="needs the aarch64 cross toolchain and qemu-user: missing "
                       + ", ".join(_missing_tools()) + " (apt-get install gcc-aarch64-linux-gnu "
                       "g++-aarch64-linux-gnu qemu-user)"),
]


def _run(cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=900, **kw)
    assert r.returncode == 0, " ".join(map(str, cmd)) + "\n" + r.stdout[-4000:] + r.stderr[-4000:]
    return r


def _build(build: Path, toolchain: Path | None, lib_build: Path | None = None) -> tuple[Path, Path]:
    """native/ (unless `lib_build` is given) and samples/ built into `build`; returns (lib dir, samples dir)."""
    tc = [f"--toolchain={toolchain}"] if toolchain else []
    if lib_build is None:
        _run(["cmake", "-S", ROOT, "-B", build / "native-build", "-DCMAKE_BUILD_TYPE=Release", *tc])
        _run(["cmake", "--build", build / "native-build", "-j2"])
        lib_build = build / "native-build" / "native"
    _run(["cmake", "-S", ROOT / "samples", "-B", build / "samples", f"-DACLNN_INCLUDE_DIR={ROOT / 'include'}",
          f"-DACLNN_LIB_DIR={lib_build}", "-DCMAKE_BUILD_TYPE=Release", *tc])
    _run(["cmake", "--build", build / "samples", "-j2"])
    return lib_build, build / "samples"


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    arm = _build(tmp_path_factory.mktemp("aarch64"), TOOLCHAIN)
    from aclnn_moe.capi import backend

    # the x86 side: the installed host runtime, built from the same sources
    installed = backend().lib_dir if backend().name == "host" else None
    x86 = _build(tmp_path_factory.mktemp("x86_64"), None, installed)
    return {"aarch64": arm, "x86_64": x86}


def _compile_digest(compiler: str, lib_dir: Path, out: Path) -> Path:
    _run([compiler, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'include'}", f"-I{ROOT / 'samples'}",
          Path(__file__).parent / "c" / "ops_digest.c", f"-L{lib_dir}", f"-Wl,-rpath,{lib_dir}", "-lascendcl",
          "-lnnopbase", "-lopapi", "-o", out])
    return out


def _elf_machine(path: Path) -> int:
    head = path.read_bytes()[:20]
    assert head[:4] == b"\x7fELF", path
    return int.from_bytes(head[18:20], "little")


def test_the_three_libraries_and_the_samples_are_aarch64(builds):
    libs, samples = builds["aarch64"]
    for name in LIBRARIES:
        assert _elf_machine(libs / name) == EM_AARCH64, name
    for name in SAMPLES:
        assert _elf_machine(samples / name) == EM_AARCH64, name
    assert _elf_machine(builds["x86_64"][0] / "libopapi.so") != EM_AARCH64


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_under_qemu_matches_the_native_run(builds, name):
    env = {"ACLNN_MOE_NUM_THREADS": "2", "PATH": "/usr/bin:/bin"}
    native = subprocess.run([str(builds["x86_64"][1] / name)], capture_output=True, text=True, timeout=300,
                            env=env)
    assert native.returncode == 0, native.stdout[-3000:] + native.stderr[-3000:]
    arm = subprocess.run(["qemu-aarch64", "-L", str(SYSROOT), str(builds["aarch64"][1] / name)],
                         capture_output=True, text=True, timeout=600, env=env)
    assert arm.returncode == 0, arm.stdout[-3000:] + arm.stderr[-3000:]
    assert arm.stdout == native.stdout
    assert "MISMATCH" not in arm.stdout


def test_simd_kernels_match_the_portable_aarch64_ones_bit_for_bit(builds, tmp_path):
    """tests/c/ops_digest.c: gating top-k and the weighted row sums (finalize, unpermute) in fp32/fp16/bf16 on
    awkward sizes; x86 takes its AVX2/AVX-512 paths, aarch64 the portable ones: every output digest is equal"""
    native = _compile_digest("cc", builds["x86_64"][0], tmp_path / "digest-x86")
    arm = _compile_digest("aarch64-linux-gnu-gcc", builds["aarch64"][0], tmp_path / "digest-arm")
    env = {"ACLNN_MOE_NUM_THREADS": "2", "PATH": "/usr/bin:/bin"}
    a = subprocess.run([str(native)], capture_output=True, text=True, timeout=300, env=env)
    b = subprocess.run(["qemu-aarch64", "-L", str(SYSROOT), str(arm)], capture_output=True, text=True, timeout=600,
                       env=env)
    assert a.returncode == 0 and b.returncode == 0, a.stdout + a.stderr + b.stdout + b.stderr
    lines = a.stdout.splitlines()
    assert len(lines) == 13 and lines[-1] == "ops_digest: done", a.stdout
    assert b.stdout.splitlines() == lines
