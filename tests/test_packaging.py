"""The installed distribution: one version, metadata, what the wheel carries (headers, libraries, samples,
py.typed, LICENSE), its py3-none tag, the lazy ml_dtypes import, editable installs, and the README's table of
environment variables covering every variable the code reads."""
from __future__ import annotations

import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import aclnn_moe
from aclnn_moe import _paths

ROOT = Path(__file__).resolve().parent.parent
DIST = md.distribution("aclnn-moe")


def _child(code, **kw):
    """Runs `code` in a fresh interpreter outside the source tree (so the installed package is imported)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).parent, **kw)


def test_one_version_everywhere():
    source = (ROOT / "aclnn_moe" / "_version.py").read_text()
    [written] = re.findall(r'^__version__ = "([^"]+)"', source, re.M)
    assert aclnn_moe.__version__ == written == DIST.version
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and not re.search(r"^version\s*=", pyproject, re.M)
    cmake = (ROOT / "CMakeLists.txt").read_text()
    assert "aclnn_moe/_version.py" in cmake and written not in cmake
    # the host runtime was built with the same number (ACLNN_MOE_VERSION, reported as the CANN version)
    from aclnn_moe.capi import backend, ffi, lib

    if backend().name == "host":
        pv = ffi.new("aclCANNPackageVersion *")
        assert lib.aclsysGetCANNVersion(lib.ACL_PKG_NAME_CANN, pv) == 0
        assert ffi.string(pv.version).decode().startswith(written)


def test_metadata_has_license_urls_classifiers_and_extras():
    meta = DIST.metadata
    assert "Apache" in (meta.get("License") or meta.get("License-Expression") or "")
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert {"Homepage", "Documentation", "Source", "Issues"} <= set(urls)
    classifiers = meta.get_all("Classifier")
    assert "Typing :: Typed" in classifiers and "License :: OSI Approved :: Apache Software License" in classifiers
    assert any(c.startswith("Programming Language :: Python :: 3.9") for c in classifiers)
    extras = set(meta.get_all("Provides-Extra"))
    assert {"torch", "npu", "docs", "bench", "test"} <= extras
    requires = DIST.requires
    torch_req = [r for r in requires if r.startswith("torch") and "extra == \"torch\"" in r]
    assert torch_req and all("==" in r for r in torch_req), "torch pinned to one release line"
    assert any(r.startswith("torch-npu") and "npu" in r for r in requires)
    assert any("LICENSE" in str(f) for f in DIST.files), "the license text ships in the dist-info"
    assert "Apache License" in (ROOT / "LICENSE").read_text()[:200]


def test_the_package_carries_headers_libraries_samples_and_py_typed():
    assert _paths.find_package_path("py.typed") is not None
    assert (_paths.host_lib_dir() / "libopapi.so").is_file()
    include = _paths.find_package_path("include")
    assert include is not None and (include / "acl" / "acl.h").is_file()
    assert any((include / "aclnnop").glob("aclnn_moe_*.h"))
    samples = _paths.samples_dir()
    assert samples is not None
    shipped = {p.name for p in samples.iterdir()}
    assert {p.name for p in (ROOT / "samples").iterdir() if p.suffix in (".c", ".h", ".py")} <= shipped


def test_wheel_tag_is_py3_none():
    """the build says py3-none (no CPython ABI): one wheel for every Python 3"""
    wheel = next((f for f in DIST.files if f.name == "WHEEL"), None)
    if wheel is None:
        pytest.skip("installed without a WHEEL file")
    tags = [line.split(": ", 1)[1] for line in wheel.read_text().splitlines() if line.startswith("Tag: ")]
    assert tags and all(t.startswith("py3-none-") for t in tags), tags


def test_import_does_not_load_ml_dtypes_until_bf16_is_used():
    r = _child("import sys, numpy as np, aclnn_moe as am\n"
               "assert 'ml_dtypes' not in sys.modules, 'imported by import aclnn_moe'\n"
               "am.moe_compute_expert_tokens(np.array([0, 0, 1, 3], np.int32), 4)\n"
               "y, _, _ = am.moe_gating_top_k(np.zeros((2, 8), np.float32), 2)\n"
               "assert 'ml_dtypes' not in sys.modules, 'imported by an fp32 call'\n"
               "from aclnn_moe._dtypes import bfloat16, bfloat16_dtype\n"
               "assert 'ml_dtypes' in sys.modules and bfloat16 is bfloat16_dtype() and bfloat16.name == 'bfloat16'\n"
               "y, _, _ = am.moe_gating_top_k(np.zeros((2, 8), np.float32).astype(bfloat16), 2)\n"
               "assert y.dtype == bfloat16\n")
    assert r.returncode == 0, r.stderr


def test_bf16_arrays_made_by_the_caller_are_recognised_without_the_attribute():
    """a caller who imported ml_dtypes themselves: the facade knows the dtype by name, no _dtypes.bfloat16 needed"""
    r = _child("import ml_dtypes, numpy as np, aclnn_moe as am\n"
               "from aclnn_moe import _dtypes\n"
               "x = np.ones((2, 8), ml_dtypes.bfloat16)\n"
               "assert _dtypes.name_of(x.dtype) == 'bfloat16' and _dtypes.is_bfloat16(x.dtype)\n"
               "y, idx, _ = am.moe_gating_top_k(x, 2)\n"
               "assert y.dtype == x.dtype, y.dtype\n")
    assert r.returncode == 0, r.stderr


def _env_vars_in_code():
    found = set()
    pattern = re.compile(r"""(?:environ(?:\.get)?\s*[\[(]\s*|getenv\s*\(\s*)["']([A-Z][A-Z0-9_]+)["']""")
    for path in [*ROOT.glob("aclnn_moe/**/*.py"), *ROOT.glob("native/**/*.c"), *ROOT.glob("native/**/*.cpp"),
                 *ROOT.glob("tests/*.py")]:
        found |= set(pattern.findall(path.read_text(errors="replace")))
    # variables read through a loop over names, e.g. `for var in ("ASCEND_HOME_PATH", ...): os.environ.get(var)`
    text = (ROOT / "aclnn_moe" / "capi" / "_backend.py").read_text()
    found |= set(re.findall(r'"(ASCEND_[A-Z_]+)"', text))
    # test-only knobs of third-party libraries, not the package's own
    return {v for v in found if v.startswith(("ACLNN_MOE_", "ASCEND_"))}


def test_readme_documents_every_environment_variable():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", table, re.M))
    used = _env_vars_in_code()
    assert {"ACLNN_MOE_BACKEND", "ACLNN_MOE_NUM_THREADS", "ACLNN_MOE_HOST_LIBDIR", "ASCEND_HOME_PATH"} <= used
    assert used <= documented, sorted(used - documented)


@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("cc") is None, reason="needs cmake and cc")
def test_editable_install_finds_its_libraries(tmp_path):
    """pip install -e . (scikit-build-core's redirect mode) in a fresh venv: the host libraries are found and the
    selftest passes"""
    src = tmp_path / "src"
    # a copy of the tracked sources (an editable build writes build/ into the tree it installs)
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if files.returncode != 0:
        pytest.skip("needs a git checkout to copy the sources from")
    for rel in filter(None, files.stdout.decode().split("\0")):
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = venv / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", str(src)],
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0 and "No module named" in r.stderr and "scikit_build_core" in r.stderr:
        pytest.skip("scikit-build-core is not installed for a --no-build-isolation build")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k not in ("ACLNN_MOE_HOST_LIBDIR", "ACLNN_MOE_BACKEND")}
    code = ("import aclnn_moe, sys; from aclnn_moe.capi import backend; b = backend(); "
            "print(aclnn_moe.__file__); print(b.lib_dir); sys.exit(aclnn_moe.cli.main(['selftest']))")
    run = subprocess.run([str(py), "-c", "import aclnn_moe.cli\n" + code], capture_output=True, text=True,
                         timeout=600, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    module_file, lib_dir = run.stdout.splitlines()[:2]
    assert Path(module_file).is_relative_to(src), module_file  # the sources are what is imported
    assert (Path(lib_dir) / "libopapi.so").is_file() and "selftest passed" in run.stdout


def test_build_wheel_script_is_documented_and_executable():
    script = ROOT / "tools" / "build_wheel.sh"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert "auditwheel repair" in text and "cmake/$arch-linux-gnu.cmake" in text
    assert "tools/build_wheel.sh aarch64" in (ROOT / "README.md").read_text()


def test_the_installed_files_are_the_package_only():
    """the wheel ships every file of aclnn_moe/ plus what CMake installs; nothing from tests/ or build/"""
    names = {str(f) for f in DIST.files}
    assert not any(n.startswith(("tests/", "build/", "native/")) for n in names)
    assert any(n.startswith("aclnn_moe/_host/lib/") for n in names) or _paths.host_lib_dir().is_dir()


def test_wheel_archive_if_built(tmp_path):
    """when dist/ holds wheels (tools/build_wheel.sh ran), each is py3-none-manylinux and complete"""
    wheels = sorted((ROOT / "dist").glob("aclnn_moe-*.whl")) if (ROOT / "dist").is_dir() else []
    if not wheels:
        pytest.skip("no wheel in dist/ (run tools/build_wheel.sh)")
    for w in wheels:
        assert re.search(r"-py3-none-manylinux_\d+_\d+_(x86_64|aarch64)\.whl$", w.name), w.name
        names = set(zipfile.ZipFile(w).namelist())
        for n in ("aclnn_moe/_host/lib/libascendcl.so", "aclnn_moe/_host/lib/libnnopbase.so",
                  "aclnn_moe/_host/lib/libopapi.so", "aclnn_moe/include/acl/acl.h", "aclnn_moe/py.typed",
                  "aclnn_moe/samples/aclnn_sample.h"):
            assert n in names, (w.name, n)
