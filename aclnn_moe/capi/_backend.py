"""Which libraries implement the C API: a real CANN install, or the embedded host runtime.

Choice: ``ACLNN_MOE_BACKEND=host|cann`` when set; otherwise CANN when its libraries are found
(``ASCEND_HOME_PATH``, ``ASCEND_TOOLKIT_HOME``, the default install paths); otherwise the host runtime.
Operator symbols are looked up the way torch_npu does it (spec/abi.md section 6): custom op packages first, then
``lib64/libopapi_*.so``, ``libopapi.so`` and the split ``libaclnn_*.so`` libraries.
"""
from __future__ import annotations

import glob
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

from .._paths import host_lib_dir

PACKAGE_DIR = Path(__file__).resolve().parent.parent
_CANN_DEFAULT_ROOTS = (
    "/usr/local/Ascend/cann",
    "/usr/local/Ascend/ascend-toolkit/latest",
    "/usr/local/Ascend/latest",
)
_CANN_OP_LIBRARIES = (
    "libopapi.so",
    "libaclnn_ops_infer.so",
    "libaclnn_ops_train.so",
    "libaclnn_math.so",
)


class BackendNotFoundError(RuntimeError):
    """No usable implementation of the C API was found."""


@dataclass
class Backend:
    name: str  # "host" or "cann"
    reason: str  # why it was chosen, for `aclnn-moe info`
    root: Path | None  # CANN install root, or the package dir for the host runtime
    include_dir: Path
    lib_dir: Path
    runtime_libraries: list[Path] = field(default_factory=list)  # libascendcl, libnnopbase
    op_libraries: list[Path] = field(default_factory=list)  # searched in order for aclnn* symbols

    @property
    def libraries(self) -> list[Path]:
        return self.runtime_libraries + self.op_libraries

    def version(self) -> str | None:
        """The CANN release of a CANN backend, from the install's version files (None if not recorded)."""
        if self.name != "cann" or self.root is None:
            return None
        arch = platform.machine()
        for f in (self.root / f"{arch}-linux" / "ascend_toolkit_install.info", self.root / "version.info",
                  self.root / "ascend_toolkit_install.info", self.root / "runtime" / "version.info"):
            if f.is_file():
                for line in f.read_text(errors="replace").splitlines():
                    key, _, value = line.partition("=")
                    if key.strip() in ("version", "Version") and value.strip():
                        return value.strip()
        return None


def binding_include_dir() -> Path:
    """This package's copy of include/: the declarations of the binding, whatever the backend."""
    d = PACKAGE_DIR / "include"
    return d if d.is_dir() else PACKAGE_DIR.parent / "include"  # a source checkout keeps them at the top


def _host_backend(reason: str) -> Backend:
    lib_dir = Path(os.environ.get("ACLNN_MOE_HOST_LIBDIR") or host_lib_dir())
    include_dir = binding_include_dir()
    libs = [lib_dir / f"lib{n}.so" for n in ("ascendcl", "nnopbase", "opapi")]
    missing = [str(p) for p in libs if not p.is_file()]
    if missing:
        raise BackendNotFoundError(
            "the embedded host runtime is not built: missing " + ", ".join(missing)
            + " (install the package with `pip install .`, or point ACLNN_MOE_HOST_LIBDIR at a CMake build's native/)"
        )
    return Backend("host", reason, PACKAGE_DIR, include_dir, lib_dir, libs[:2], libs[2:])


def cann_roots() -> list[Path]:
    """Candidate CANN install roots, in the order they are tried."""
    roots = []
    for var in ("ASCEND_HOME_PATH", "ASCEND_TOOLKIT_HOME"):
        if os.environ.get(var):
            roots.append(Path(os.environ[var]))
    roots += [Path(p) for p in _CANN_DEFAULT_ROOTS]
    seen, out = set(), []
    for r in roots:
        if r not in seen:
            seen.add(r)
            out.append(r)
    return out


def _cann_op_libraries(root: Path, lib_dir: Path) -> list[Path]:
    found: list[Path] = []
    for entry in filter(None, os.environ.get("ASCEND_CUSTOM_OPP_PATH", "").split(":")):
        found.append(Path(entry) / "op_api" / "lib" / "libcust_opapi.so")
    opp = Path(os.environ.get("ASCEND_OPP_PATH") or root / "opp")
    config = opp / "vendors" / "config.ini"
    if config.is_file():
        for line in config.read_text().splitlines():
            if line.strip().startswith("load_priority="):
                for vendor in line.split("=", 1)[1].split(","):
                    found.append(opp / "vendors" / vendor.strip() / "op_api" / "lib" / "libcust_opapi.so")
    found += sorted(Path(p) for p in glob.glob(str(lib_dir / "libopapi_*.so")))
    found += [lib_dir / n for n in _CANN_OP_LIBRARIES]
    return [p for p in found if p.is_file()]


def _cann_backend(reason: str) -> Backend | None:
    arch = platform.machine()
    for root in cann_roots():
        for lib_dir in (root / "lib64", root / f"{arch}-linux" / "lib64"):
            runtime = [lib_dir / "libascendcl.so", lib_dir / "libnnopbase.so"]
            if all(p.is_file() for p in runtime):
                ops = _cann_op_libraries(root, lib_dir)
                include_dir = root / "include"
                return Backend("cann", f"{reason} at {root}", root, include_dir, lib_dir, runtime, ops)
    return None


def choose_backend() -> Backend:
    wanted = os.environ.get("ACLNN_MOE_BACKEND", "").strip().lower()
    if wanted == "host":
        return _host_backend("ACLNN_MOE_BACKEND=host")
    if wanted == "cann":
        b = _cann_backend("ACLNN_MOE_BACKEND=cann: CANN libraries found")
        if b is None:
            tried = ", ".join(str(r) for r in cann_roots())
            raise BackendNotFoundError(
                f"ACLNN_MOE_BACKEND=cann but no CANN install with lib64/libascendcl.so and libnnopbase.so was "
                f"found (tried {tried}); source CANN's set_env.sh or set ASCEND_HOME_PATH"
            )
        return b
    if wanted:
        raise BackendNotFoundError(f"ACLNN_MOE_BACKEND={wanted!r} is not one of 'host', 'cann'")
    b = _cann_backend("CANN libraries found")
    if b is not None:
        return b
    return _host_backend("no CANN install found (ASCEND_HOME_PATH, ASCEND_TOOLKIT_HOME, default paths)")
