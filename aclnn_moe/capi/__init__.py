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

from ._backend import Backend, BackendNotFoundError, binding_include_dir, choose_backend
from ._headers import build_cdef, declared_functions

__all__ = ["ffi", "lib", "backend", "Backend", "BackendNotFoundError", "SymbolNotFoundError", "cdef_source",
           "declared_functions", "has_symbol", "binding_include_dir"]


class SymbolNotFoundError(AttributeError):
    """A declared C function is not exported by any library of the active backend."""


_lock = threading.RLock()
_backend: Backend | None = None
# The declarations come from this package's headers whatever the backend (CANN's own are C++-only), so they
# are parsed at import: ffi.new("aclrtStream *") works before any library is opened, as in a C program.
_cdef: str = build_cdef(binding_include_dir())
ffi = cffi.FFI()
ffi.cdef(_cdef)


def backend() -> Backend:
    """The active backend (chosen once per process; see ``_backend.choose_backend``)."""
    global _backend
    if _backend is None:
        with _lock:
            if _backend is None:
                _backend = choose_backend()
    return _backend


def cdef_source() -> str:
    """The cdef text the binding was declared with (generated from include/)."""
    return _cdef


class _Library:
    """All libraries of the backend behind one namespace, like one big C library."""

    def __init__(self):
        self._handles = None

    def _open(self):
        with _lock:
            if self._handles is None:
                b = backend()
                flags = ffi.RTLD_NOW if b.name == "host" else ffi.RTLD_LAZY | ffi.RTLD_GLOBAL
                self._handles = [(p, ffi.dlopen(str(p), flags)) for p in b.libraries]
        return self._handles

    def __getattr__(self, name):
        handles = self._handles or self._open()
        for _, h in handles:
            try:
                value = getattr(h, name)
            except AttributeError:
                continue
            self.__dict__[name] = value  # later lookups skip __getattr__
            return value
        b = backend()
        searched = ", ".join(str(p) for p, _ in handles)
        if name not in declared_functions(_cdef):
            raise AttributeError(f"{name!r} is not declared in aclnn_moe's headers (include/)")
        hint = ""
        if b.name == "cann":
            hint = (f" The installed CANN version ({b.version() or 'version not recorded'}) is too old for this "
                    "function, or its operator package is not installed.")
        raise SymbolNotFoundError(f"symbol {name} not found in the {b.name} backend; searched: {searched}.{hint}")

    def __dir__(self):
        return declared_functions(cdef_source())


def has_symbol(name: str) -> bool:
    """Whether the active backend exports the C function ``name``."""
    return hasattr(lib, name)


lib = _Library()
