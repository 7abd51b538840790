"""Which libraries implement the C API (a real CANN install, or the embedded host runtime), and how they are opened.

Choice (made once per process, on first use, never at import):
  * ``ACLNN_MOE_BACKEND=host|cann`` when set (``cann`` is taken even without a device, so that flags and symbol
    queries work on a build machine; device calls then fail with CANN's status);
  * otherwise CANN when its libraries are found *and* it reports a device (``aclrtGetDeviceCount`` > 0): a
    toolkit installed on a machine without an NPU is not chosen, and ``aclnn-moe info`` says why;
  * otherwise the embedded host runtime.

Loading, as torch_npu and op-plugin do it (spec/host-vs-cann.md, "Real-box facts"): one copy of each CANN library
per process. A ``libascendcl.so`` already loaded (by libtorch_npu, say) is the one used; otherwise each library is
opened by name, so that it resolves through ``LD_LIBRARY_PATH`` as ``set_env.sh`` sets it, and only then by its
path in the install. CANN's release libraries carry no RPATH, so a missing ``set_env.sh`` shows up as a missing
dependency: that is reported as a ``BackendLoadError`` naming the library, the dependency and the way out.
Libraries are opened with RTLD_LAZY, as op-plugin does. Operator symbols are looked up in op-plugin's order
(spec/abi.md section 6): custom op packages, ``lib64/libopapi_*.so``, ``libopapi.so``, the split ``libaclnn_*.so``.
"""
from __future__ import annotations

import ctypes
import glob
import json
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .._paths import host_lib_dir as _built_host_lib_dir

PACKAGE_DIR = Path(__file__).resolve().parent.parent
_CANN_DEFAULT_ROOTS = (
    "/usr/local/Ascend/cann",
    "/usr/local/Ascend/ascend-toolkit/latest",
    "/usr/local/Ascend/latest",
)
_RUNTIME_LIBRARIES = ("libascendcl.so", "libnnopbase.so")
_CANN_OP_LIBRARIES = (
    "libopapi.so",
    "libaclnn_ops_infer.so",
    "libaclnn_ops_train.so",
    "libaclnn_math.so",
)
_RTLD_NOLOAD = getattr(os, "RTLD_NOLOAD", 4)
_RTLD_DI_LINKMAP = 2
_PROBE_TIMEOUT_S = 120  # a first aclrtGetDeviceCount on a cold driver can take seconds; a hung one must not hang us


class BackendNotFoundError(RuntimeError):
    """No usable implementation of the C API was found."""


class BackendLoadError(BackendNotFoundError):
    """A backend library was found but could not be opened (typically a dependency missing from the library
    search path). ``library``, ``dependency`` (or None) and ``detail`` (the loader's message) say what failed."""

    def __init__(self, library: str, detail: str, dependency: str | None, advice: str):
        self.library, self.detail, self.dependency, self.advice = library, detail, dependency, advice
        what = (f"its dependency {dependency} was not found on the library search path" if dependency
                else f"the loader said: {detail}")
        super().__init__(f"cannot load {library}: {what}. {advice}")


@dataclass
class Backend:
    name: str  # "host" or "cann"
    reason: str  # why it was chosen, for `aclnn-moe info`
    root: Path | None  # CANN install root, or the package dir for the host runtime
    include_dir: Path
    lib_dir: Path
    runtime_libraries: list[Path] = field(default_factory=list)  # libascendcl, libnnopbase
    op_libraries: list[Path] = field(default_factory=list)  # searched in order for aclnn* symbols
    notes: list[str] = field(default_factory=list)  # what `info` should say besides the reason
    device_count: int | None = None  # what the choice saw (None: not asked)
    how_loaded: dict[str, str] = field(default_factory=dict)  # path -> "already loaded" / "by name" / "by path"

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


def host_lib_dir() -> Path:
    """ACLNN_MOE_HOST_LIBDIR, else where the build put the host libraries (wheel or editable install)."""
    return Path(os.environ.get("ACLNN_MOE_HOST_LIBDIR") or _built_host_lib_dir())


# ---------------------------------------------------------------------------------------------- the dynamic loader
class _LinkMap(ctypes.Structure):
    _fields_ = [("l_addr", ctypes.c_void_p), ("l_name", ctypes.c_char_p)]


def _libc():
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "dlinfo"):  # glibc < 2.34 keeps it in libdl
        libc = ctypes.CDLL("libdl.so.2")
    libc.dlinfo.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    return libc


def _handle_path(handle: int) -> str | None:
    """The file a dlopen handle refers to (the loader's own record, so symlinks and by-name loads are exact)."""
    lm = ctypes.POINTER(_LinkMap)()
    try:
        if _libc().dlinfo(handle, _RTLD_DI_LINKMAP, ctypes.byref(lm)) != 0 or not lm:
            return None
    except (OSError, AttributeError):
        return None
    name = lm.contents.l_name
    return os.fsdecode(name) if name else None


def loaded_library(name: str) -> Path | None:
    """Where the process already has the library ``name`` (soname or file name) from, without loading it."""
    try:
        h = ctypes.CDLL(name, mode=_RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError:
        return None
    p = _handle_path(h._handle)
    return Path(p) if p else None


def loaded_copies(basename: str) -> list[str]:
    """Distinct files named ``basename`` mapped into this process (from /proc/self/maps)."""
    found = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.rstrip("\n").split(None, 5)[-1] if line.count(" ") >= 5 else ""
                if path.endswith("/" + basename) and path not in found:
                    found.append(path)
    except OSError:
        pass
    return found


def _missing_dependency(detail: str, library: str) -> str | None:
    m = re.match(r"\s*([^:\s]+): cannot open shared object file", detail)
    if m and os.path.basename(m.group(1)) != os.path.basename(library):
        return m.group(1)
    return None


def _on_search_path(name: str) -> Path | None:
    """The file ``dlopen(name)`` would find on LD_LIBRARY_PATH (the path set_env.sh sets), if any."""
    for d in filter(None, os.environ.get("LD_LIBRARY_PATH", "").split(":")):
        p = Path(d) / name
        if p.is_file():
            return p
    return None


def set_env_scripts(root: Path | None) -> list[Path]:
    """CANN's environment scripts near an install root (the first one is what `info` advises to source)."""
    if root is None:
        return []
    cands = [root / "set_env.sh", root.parent / "set_env.sh", root / "bin" / "setenv.bash",
             root / "script" / "set_env.sh"]
    return [p for p in cands if p.is_file()]


def advice(root: Path | None) -> str:
    scripts = set_env_scripts(root)
    src = f"`source {scripts[0]}`" if scripts else "source CANN's set_env.sh (e.g. `source /usr/local/Ascend/cann/set_env.sh`)"
    return (f"CANN's libraries carry no RPATH: their dependencies resolve through LD_LIBRARY_PATH, which {src} "
            "sets (a missing driver library also needs the NPU driver installed). Or set ACLNN_MOE_BACKEND=host "
            "to use the embedded host runtime.")


def open_library(name: str, path: Path | None, root: Path | None, *, required: bool = True):
    """Open one CANN library once per process: the copy already loaded, else by name (LD_LIBRARY_PATH), else by
    ``path``. Returns (resolved path, how) or None when it exists nowhere and is not ``required``."""
    already = loaded_library(name)
    if already is not None:
        return already, "already loaded"
    mode = os.RTLD_LAZY
    try:
        h = ctypes.CDLL(name, mode=mode)
        return Path(_handle_path(h._handle) or name), "by name"
    except OSError as e:
        detail = str(e)
        if _missing_dependency(detail, name) is not None:  # found by name, but broken
            raise BackendLoadError(name, detail, _missing_dependency(detail, name), advice(root)) from None
    if path is None or not path.is_file():
        if required:
            raise BackendLoadError(name, f"{name} is neither loaded, nor on LD_LIBRARY_PATH, nor at {path}", None,
                                   advice(root))
        return None
    try:
        h = ctypes.CDLL(str(path), mode=mode)
    except OSError as e:
        raise BackendLoadError(str(path), str(e), _missing_dependency(str(e), str(path)), advice(root)) from None
    return Path(_handle_path(h._handle) or path), "by path"


# ---------------------------------------------------------------------------------------------- the host runtime
def _host_backend(reason: str) -> Backend:
    lib_dir = host_lib_dir()
    include_dir = binding_include_dir()
    libs = [lib_dir / f"lib{n}.so" for n in ("ascendcl", "nnopbase", "opapi")]
    missing = [str(p) for p in libs if not p.is_file()]
    if missing:
        raise BackendNotFoundError(
            "the embedded host runtime is not built: missing " + ", ".join(missing)
            + " (install the package with `pip install .`, or point ACLNN_MOE_HOST_LIBDIR at a CMake build's native/)"
        )
    return Backend("host", reason, PACKAGE_DIR, include_dir, lib_dir, libs[:2], libs[2:])


def check_host_can_load(b: Backend) -> None:
    """The host libraries name their runtime `libascendcl.so`; with another process-wide copy loaded (torch_npu's
    CANN), the loader would bind them to that one. Refuse clearly rather than mix two runtimes."""
    other = loaded_library("libascendcl.so")
    if other is not None and other.resolve() != (b.lib_dir / "libascendcl.so").resolve():
        raise BackendNotFoundError(
            f"the host runtime cannot run in this process: another libascendcl.so ({other}) is already loaded "
            "(by torch_npu?), and the host libraries would bind to it. Use the CANN backend (unset "
            "ACLNN_MOE_BACKEND=host) or do not load CANN in this process.")


# ---------------------------------------------------------------------------------------------- CANN
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


def _root_of(lib_dir: Path) -> Path:
    """The install root of a `.../lib64` (also `<root>/<arch>-linux/lib64`)."""
    root = lib_dir.parent if lib_dir.name == "lib64" else lib_dir
    return root.parent if root.name.endswith("-linux") else root


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


def _find_cann(reason: str) -> Backend | None:
    """The CANN install to use, without loading anything: where libascendcl.so already is in this process, else
    where LD_LIBRARY_PATH finds it, else the install roots."""
    arch = platform.machine()
    located: list[tuple[Path, Path | None, str]] = []  # (lib dir, install root if known, why)
    loaded = loaded_library("libascendcl.so")
    if loaded is not None:
        located.append((loaded.parent, None, f"{reason}: libascendcl.so already loaded in this process from {loaded}"))
    on_path = _on_search_path("libascendcl.so")
    if on_path is not None:
        located.append((on_path.parent, None, f"{reason} on LD_LIBRARY_PATH at {on_path.parent}"))
    for root in cann_roots():
        for lib_dir in (root / "lib64", root / f"{arch}-linux" / "lib64"):
            located.append((lib_dir, root, f"{reason} at {root}"))
    host_dir = host_lib_dir().resolve()
    for lib_dir, root, why in located:
        if not (lib_dir / "libascendcl.so").is_file() or lib_dir.resolve() == host_dir:
            continue  # (the embedded runtime on LD_LIBRARY_PATH is not a CANN install)
        root = root or _root_of(lib_dir)
        runtime = [lib_dir / n for n in _RUNTIME_LIBRARIES]
        b = Backend("cann", why, root, root / "include", lib_dir, runtime, _cann_op_libraries(root, lib_dir))
        env_root = os.environ.get("ASCEND_HOME_PATH")
        if env_root and Path(env_root).resolve() != root.resolve():
            b.notes.append(f"ASCEND_HOME_PATH={env_root} is not the install in use ({root}): libascendcl.so is "
                           "taken from where this process (or LD_LIBRARY_PATH) has it, one copy per process")
        return b
    return None


_PROBE = r"""
import ctypes, json, os, re, sys
name, path = sys.argv[1], sys.argv[2]
def load():
    try:
        return ctypes.CDLL(name, mode=os.RTLD_LAZY)
    except OSError as e:
        m = re.match(r"\s*([^:\s]+): cannot open shared object file", str(e))
        if not (m and os.path.basename(m.group(1)) == name):
            raise
    return ctypes.CDLL(path, mode=os.RTLD_LAZY)
try:
    h = load()
except OSError as e:
    print(json.dumps({"load_error": str(e)})); sys.exit(0)
n = ctypes.c_uint32(0)
st = h.aclrtGetDeviceCount(ctypes.byref(n))
print(json.dumps({"status": int(st), "count": int(n.value)}))
"""


def probe_devices(b: Backend) -> tuple[int | None, str]:
    """aclrtGetDeviceCount of a CANN backend, asked in a child process when libascendcl.so is not loaded here yet:
    if the answer is "no device", this process must stay free of CANN's libascendcl.so for the host runtime.
    Returns (count or None on failure, what happened)."""
    lib = b.runtime_libraries[0]
    if loaded_library("libascendcl.so") is None:
        try:
            r = subprocess.run([sys.executable, "-c", _PROBE, lib.name, str(lib)], capture_output=True, text=True,
                               timeout=_PROBE_TIMEOUT_S)
            out = json.loads(r.stdout.strip().splitlines()[-1])
        except subprocess.TimeoutExpired:
            return None, f"aclrtGetDeviceCount did not answer within {_PROBE_TIMEOUT_S} s"
        except (ValueError, IndexError, OSError):
            out = None  # no child interpreter to ask (an embedded Python): ask here instead
        if out is not None:
            if "load_error" in out:
                detail = out["load_error"]
                raise BackendLoadError(str(lib), detail, _missing_dependency(detail, lib.name), advice(b.root))
            if out["status"] != 0:
                return None, f"aclrtGetDeviceCount returned {out['status']}"
            return out["count"], ""
    path, _ = open_library(lib.name, lib, b.root)
    h = ctypes.CDLL(str(path), mode=os.RTLD_LAZY)
    n = ctypes.c_uint32(0)
    st = int(h.aclrtGetDeviceCount(ctypes.byref(n)))
    return (int(n.value), "") if st == 0 else (None, f"aclrtGetDeviceCount returned {st}")


def choose_backend() -> Backend:
    wanted = os.environ.get("ACLNN_MOE_BACKEND", "").strip().lower()
    if wanted == "host":
        return _host_backend("ACLNN_MOE_BACKEND=host")
    if wanted == "cann":
        b = _find_cann("ACLNN_MOE_BACKEND=cann: CANN libraries found")
        if b is None:
            tried = ", ".join(str(r) for r in cann_roots())
            raise BackendNotFoundError(
                f"ACLNN_MOE_BACKEND=cann but no CANN install with lib64/libascendcl.so and libnnopbase.so was "
                f"found (tried LD_LIBRARY_PATH, {tried}); source CANN's set_env.sh or set ASCEND_HOME_PATH"
            )
        return b
    if wanted:
        raise BackendNotFoundError(f"ACLNN_MOE_BACKEND={wanted!r} is not one of 'host', 'cann'")
    b = _find_cann("CANN libraries found")
    if b is not None:
        count, why = probe_devices(b)
        if count:
            b.device_count = count
            b.reason += f", {count} device{'s' if count > 1 else ''}"
            return b
        said = "reports no device (aclrtGetDeviceCount: 0)" if count == 0 else f"has no usable device ({why})"
        h = _host_backend(f"CANN found at {b.root} but it {said}; ACLNN_MOE_BACKEND=cann forces it")
        h.device_count = count
        return h
    return _host_backend("no CANN install found (LD_LIBRARY_PATH, ASCEND_HOME_PATH, ASCEND_TOOLKIT_HOME, "
                         "default paths)")
