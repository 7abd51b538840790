"""The C samples build with CMake against include/ and the active backend's libraries and run correctly (each
checks its own results and exits non-zero on a mismatch); so do their Python ports. The official CANN examples
(ops-transformer's moe/<op>/examples/test_aclnn_<op>.cpp) compile unchanged and run when their sources are
available (ACLNN_MOE_OFFICIAL_EXAMPLES=<a folder holding them, e.g. an ops-transformer checkout>)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aclnn_moe.capi import backend

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
C_SAMPLES = sorted(p.stem for p in SAMPLES.glob("*.c"))
# samples/_aclnn_sample.py is the shared scaffolding of the ports (the C samples' aclnn_sample.h), not a sample
# samples/ep_torchrun.py is launched by torchrun (tests/test_distributed.py), not a port of a C sample
PY_SAMPLES = sorted(p.stem for p in SAMPLES.glob("*.py") if not p.name.startswith("_") and p.stem != "ep_torchrun")
OFFICIAL = [
    "test_aclnn_moe_gating_top_k.cpp",
    "test_aclnn_moe_compute_expert_tokens.cpp",
    "test_aclnn_moe_finalize_routing.cpp",
    "test_aclnn_moe_finalize_routing_v2.cpp",
    "test_aclnn_moe_init_routing.cpp",
    "test_aclnn_moe_init_routing_v2.cpp",
    "test_aclnn_moe_init_routing_v3.cpp",
    "test_aclnn_moe_init_routing_quant.cpp",
    "test_aclnn_moe_init_routing_quant_v2.cpp",
    "test_aclnn_moe_token_permute_with_ep.cpp",
    "test_aclnn_moe_token_unpermute_with_ep.cpp",
    "test_aclnn_moe_token_permute.cpp",
    "test_aclnn_moe_token_unpermute.cpp",
    "test_aclnn_moe_token_permute_with_routing_map.cpp",
    "test_aclnn_moe_token_unpermute_with_routing_map.cpp",
    "test_aclnn_moe_token_permute_with_ep_grad.cpp",
    "test_aclnn_moe_token_unpermute_with_ep_grad.cpp",
    "test_aclnn_moe_token_permute_grad.cpp",
    "test_aclnn_moe_token_unpermute_grad.cpp",
    "test_aclnn_moe_init_routing_v2_grad.cpp",
    "test_aclnn_moe_finalize_routing_v2_grad.cpp",
    "test_aclnn_moe_token_permute_with_routing_map_grad.cpp",
    "test_aclnn_moe_token_unpermute_with_routing_map_grad.cpp",
    "test_aclnn_moe_gating_top_k_softmax.cpp",
    "test_aclnn_moe_gating_top_k_softmax_v2.cpp",
]


def _flags():
    b = backend()
    libs = [f"-L{b.lib_dir}", f"-Wl,-rpath,{b.lib_dir}"] + [f"-l{p.name[3:-3]}" for p in b.libraries]
    inc = b.include_dir
    return [f"-I{inc}", f"-I{inc / 'aclnn'}", f"-I{inc / 'aclnnop'}"], libs


@pytest.fixture(scope="module")
def built_samples(tmp_path_factory):
    if shutil.which("cmake") is None or shutil.which("cc") is None:
        pytest.skip("cmake and a C compiler are needed to build the samples")
    b = backend()
    build = tmp_path_factory.mktemp("samples")
    libs = ";".join(p.name[3:-3] for p in b.libraries)
    cfg = subprocess.run(["cmake", "-S", str(SAMPLES), "-B", str(build), f"-DACLNN_INCLUDE_DIR={b.include_dir}",
                          f"-DACLNN_LIB_DIR={b.lib_dir}", f"-DACLNN_LIBRARIES={libs}"],
                         capture_output=True, text=True)
    assert cfg.returncode == 0, cfg.stdout + cfg.stderr
    bld = subprocess.run(["cmake", "--build", str(build), "-j", "2"], capture_output=True, text=True)
    assert bld.returncode == 0, bld.stdout + bld.stderr
    return build


def test_every_operator_has_a_sample():
    assert len(C_SAMPLES) >= 2 and set(C_SAMPLES) == set(PY_SAMPLES), (C_SAMPLES, PY_SAMPLES)


@pytest.mark.parametrize("name", C_SAMPLES)
def test_c_sample_runs(built_samples, name):
    r = subprocess.run([str(built_samples / name)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "result" in r.stdout.lower() or "ok" in r.stdout.lower(), r.stdout[-2000:]


@pytest.mark.parametrize("name", C_SAMPLES)
@pytest.mark.parametrize("compiler", [["cc", "-std=c99"], ["c++", "-x", "c++", "-std=c++11"]], ids=["c99", "c++11"])
def test_c_sample_compiles_strictly(tmp_path, compiler, name):
    """the samples and aclnn_sample.h are plain C99 that is also valid C++, free of warnings"""
    if shutil.which(compiler[0]) is None:
        pytest.skip(f"{compiler[0]} is not installed")
    cflags, _ = _flags()
    r = subprocess.run([*compiler, "-Wall", "-Wextra", "-Wpedantic", "-Werror", *cflags, "-c",
                        str(SAMPLES / f"{name}.c"), "-o", str(tmp_path / f"{name}.o")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]


@pytest.mark.parametrize("name", PY_SAMPLES)
def test_python_port_runs(name):
    r = subprocess.run([sys.executable, str(SAMPLES / f"{name}.py")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def _official_sources():
    root = os.environ.get("ACLNN_MOE_OFFICIAL_EXAMPLES")
    if not root:
        return None
    found = {}
    for p in Path(root).rglob("test_aclnn_moe_*.cpp"):
        found.setdefault(p.name, p)
    return found


@pytest.mark.parametrize("example", OFFICIAL)
def test_official_example_compiles_unchanged_and_runs(tmp_path, example):
    sources = _official_sources()
    if sources is None:
        pytest.skip("official CANN examples are not shipped here (their license keeps them out of this repo); "
                    "set ACLNN_MOE_OFFICIAL_EXAMPLES to a folder holding ops-transformer's moe/*/examples/")
    if example not in sources:
        pytest.skip(f"{example} not found under ACLNN_MOE_OFFICIAL_EXAMPLES")
    if shutil.which("g++") is None:
        pytest.skip("g++ is needed to build the official examples")
    cflags, libs = _flags()
    exe = tmp_path / "example"
    r = subprocess.run(["g++", str(sources[example]), *cflags, *libs, "-o", str(exe)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr[-4000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert re.search(r"\[\d+\] is: ", run.stdout), run.stdout[-2000:]  # the examples print `name[i] is: v`
    assert "failed" not in run.stdout.lower(), run.stdout[-2000:]
