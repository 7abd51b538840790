"""``aclnn_moe.capi``: the C API of ``include/``, 1:1, through cffi in ABI mode.

``ffi`` and ``lib`` behave as the C functions do: status codes are returned, out-parameters go through
``ffi.new``, and every name (functions, enum values, ``#define`` constants) is the C name. A C aclnn sample
therefore ports line by line::

    from aclnn_moe.capi import ffi, lib
    assert lib.aclInit(ffi.NULL) == lib.ACL_SUCCESS
    stream = ffi.new("aclrtStream *")
    lib.aclrtSetDevice(0); lib.aclrtCreateStream(stream)
    ws, ex = ffi.new("uint64_t *"), ffi.new("aclOpExecutor **")
    status = lib.aclnnMoeComputeExpertTokensGetWorkspaceSize(sorted_t, 3, out_t, ws, ex)

The functions come from the active backend (see ``backend()``): a real CANN install or the embedded host runtime.
A function the installed CANN does not export raises ``SymbolNotFoundError`` (an ``AttributeError``, so
``hasattr(lib, name)`` is the capability query).
"""
from __future__ import annotations

import threading

import cffi

from ._backend import (Backend, BackendLoadError, BackendNotFoundError, binding_include_dir, check_host_can_load,
                       choose_backend, loaded_copies, open_library)
from ._headers import build_cdef, declared_functions

__all__ = ["ffi", "lib", "backend", "Backend", "BackendNotFoundError", "BackendLoadError", "SymbolNotFoundError",
           "cdef_source", "declared_functions", "has_symbol", "has_operator", "binding_include_dir", "backend_report"]


class SymbolNotFoundError(AttributeError):
    """A declared C function is not exported by any library of the active backend."""


_lock = threading.RLock()
_backend: Backend | None = None
# The declarations come from this package's headers whatever the backend (CANN's own are C++-only), so they
# are parsed at import: ffi.new("aclrtStream *") works before any library is opened, as in a C program.
_cdef: str = build_cdef(binding_include_dir())
ffi = cffi.FFI()
ffi.cdef(_cdef)
# Integer constants (#define and enum values) need no library: they are read through the process itself, so
# `lib.ACL_FORMAT_ND` at import time opens nothing.
_constants = ffi.dlopen(None)
_OPERATOR_PHASE1 = "GetWorkspaceSize"


def backend() -> Backend:
    """The active backend (chosen once per process, on first use; see ``_backend.choose_backend``)."""
    global _backend
    if _backend is None:
        with _lock:
            if _backend is None:
                _backend = choose_backend()
    return _backend


def cdef_source() -> str:
    """The cdef text the binding was declared with (generated from include/)."""
    return _cdef


def _operator_pair(name: str) -> str | None:
    """The other phase of an aclnn operator function (phase 1 <-> phase 2), None for any other function."""
    if not name.startswith("aclnn"):
        return None
    other = name[:-len(_OPERATOR_PHASE1)] if name.endswith(_OPERATOR_PHASE1) else name + _OPERATOR_PHASE1
    declared = _declared()
    return other if other in declared and name in declared else None


_declared_cache: frozenset | None = None


def _declared() -> frozenset:
    global _declared_cache
    if _declared_cache is None:
        _declared_cache = frozenset(declared_functions(_cdef))
    return _declared_cache


class _Library:
    """All libraries of the backend behind one namespace, like one big C library."""

    def __init__(self):
        self._handles = None

    def _open(self):
        with _lock:
            if self._handles is None:
                b = backend()
                if b.name == "host":
                    check_host_can_load(b)
                    self._handles = [(p, ffi.dlopen(str(p), ffi.RTLD_NOW)) for p in b.libraries]
                else:
                    self._handles = _open_cann(b)
        return self._handles

    def _find(self, name):
        for _, h in self._handles or self._open():
            try:
                return getattr(h, name)
            except AttributeError:
                continue
        return None

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            value = getattr(_constants, name)
        except AttributeError:
            value = None
        if isinstance(value, int):
            self.__dict__[name] = value
            return value
        value = self._find(name)
        pair = _operator_pair(name) if value is not None else None
        if value is not None and (pair is None or self._find(pair) is not None):
            self.__dict__[name] = value  # later lookups skip __getattr__
            return value
        b = backend()
        searched = ", ".join(str(p) for p, _ in self._handles)
        if name not in _declared():
            raise AttributeError(f"{name!r} is not declared in aclnn_moe's headers (include/)")
        if value is not None:  # op-plugin's rule: an operator exists only with both of its phases
            raise SymbolNotFoundError(f"operator function {name} is exported but its other phase {pair} is not "
                                      f"(searched: {searched}): the operator is treated as absent")
        hint = ""
        if b.name == "cann":
            hint = (f" The installed CANN version ({b.version() or 'version not recorded'}) is too old for this "
                    "function, or its operator package is not installed.")
        raise SymbolNotFoundError(f"symbol {name} not found in the {b.name} backend; searched: {searched}.{hint}")

    def __dir__(self):
        return declared_functions(cdef_source())


_STANDARD_OP_LIBRARIES = ("libopapi.so", "libaclnn_ops_infer.so", "libaclnn_ops_train.so", "libaclnn_math.so")


def _open_cann(b: Backend):
    """Open a CANN backend's libraries once per process (see _backend.open_library) and record what was used."""
    opened: list[tuple] = []
    resolved_runtime, resolved_ops = [], []
    for p in b.runtime_libraries:
        got = open_library(p.name, p, b.root)
        resolved_runtime.append(got[0])
        b.how_loaded[str(got[0])] = got[1]
    for p in b.op_libraries:
        if p.name in _STANDARD_OP_LIBRARIES:  # found by name first, as op-plugin's dlopen("libopapi.so")
            got = open_library(p.name, p, b.root, required=False)
        else:  # custom packages and lib64/libopapi_*.so are opened by path, as op-plugin does
            got = open_library(str(p), p, b.root, required=False)
        if got is not None and got[0] not in resolved_ops:
            resolved_ops.append(got[0])
            b.how_loaded[str(got[0])] = got[1]
    b.runtime_libraries, b.op_libraries = resolved_runtime, resolved_ops
    for p in resolved_runtime + resolved_ops:
        # the same file the loader already holds: cffi's handle is a second reference, not a second copy
        opened.append((p, ffi.dlopen(str(p), ffi.RTLD_LAZY)))
    return opened


def has_symbol(name: str) -> bool:
    """Whether the active backend exports the C function ``name`` (for an operator function: both phases)."""
    return hasattr(lib, name)


def has_operator(api: str) -> bool:
    """Whether the backend has the aclnn operator ``api``: its phase 1 (``GetWorkspaceSize``) and phase 2 both."""
    return hasattr(lib, api) and hasattr(lib, api + _OPERATOR_PHASE1)


def backend_report(out=print, err=None) -> bool:
    """Print what `aclnn-moe info` says about the backend: which one and why, its libraries and how each was
    opened. On a backend that cannot be loaded, print which library failed, the missing dependency and the way
    out to ``err`` (stderr) and return False."""
    import sys

    err = err or (lambda s: print(s, file=sys.stderr))
    try:
        b = backend()
        lib._open()
    except BackendLoadError as e:
        err(f"backend      cann  (cannot be loaded)")
        err(f"library      {e.library}  (failed)")
        if e.dependency:
            err(f"missing      {e.dependency}  (a dependency of {e.library}, not on the library search path)")
        else:
            err(f"loader       {e.detail}")
        err(f"way out      {e.advice}")
        return False
    except BackendNotFoundError as e:
        err(f"backend      none  ({e})")
        err("way out      `pip install .` builds the embedded host runtime (ACLNN_MOE_BACKEND=host), or source "
            "CANN's set_env.sh for the CANN backend")
        return False
    out(f"backend      {b.name}  ({b.reason})")
    for note in b.notes:
        out(f"note         {note}")
    out(f"include      {b.include_dir}")
    out(f"bindings     {binding_include_dir()}")
    for p in b.libraries:
        how = b.how_loaded.get(str(p))
        out(f"library      {p}{'' if p.is_file() else '  (missing)'}{f'  ({how})' if how else ''}")
    if b.name == "cann":  # chosen automatically only with a device: this is ACLNN_MOE_BACKEND=cann without one
        n = ffi.new("uint32_t *")
        status = lib.aclrtGetDeviceCount(n)
        if status != 0 or n[0] == 0:
            said = f"aclrtGetDeviceCount returned {status}" if status else "aclrtGetDeviceCount reports 0 devices"
            err(f"error        CANN has no usable device ({said}): every device call will fail. The CANN backend "
                "was forced (ACLNN_MOE_BACKEND=cann); unset it, or set ACLNN_MOE_BACKEND=host, to use the host runtime")
            return False
    copies = loaded_copies("libascendcl.so")
    if len(copies) > 1:
        out(f"warning      {len(copies)} copies of libascendcl.so in this process: {', '.join(copies)}")
    return True


lib = _Library()
