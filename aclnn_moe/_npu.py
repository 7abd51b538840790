"""Everything torch_npu-specific, done the way torch_npu and op-plugin do it (spec/host-vs-cann.md, "Real-box facts").

Contract for the operation engine (``_operation.py``, ``_operands.py``, ``_runtime.py``):

* ``module()``: torch_npu when it is imported and the backend is CANN, else None (torch_npu's tensors live in CANN's
  device memory: on the host runtime they cannot be read, and ``describe`` says so).
* ``initialize()``: on CANN, ACL is initialised by torch_npu (its ``aclInit`` with its acl.json), never by a bare
  ``aclInit(NULL)`` that would leave torch_npu only 100002 and its configuration unapplied.
* ``device_guard(index)``: torch_npu's own device guard, so that its per-thread device cache stays true (it skips
  ``aclrtSetDevice`` when the cache matches: a bare ``aclrtSetDevice`` behind it moves the thread for good).
* ``current_stream(index)``: the current stream *of that device* (``torch.npu.current_stream()`` without a device is
  the current device's), as an int ``aclrtStream``; reading ``npu_stream`` also flushes torch_npu's task queue, so
  work torch enqueued before runs first.
* ``workspace(nbytes, index, stream)``: scratch from torch_npu's caching allocator *for the launch stream*, so the
  block is handed to no other stream while the kernel runs (op-plugin's ``unsafe_empty_workspace`` on the stream).
* ``describe(t, name)``: the aclFormat an NPU tensor is described with: base formats (ND, NCHW, NHWC, NCDHW) are
  labelled by rank as op-plugin does, with a 1-D storage; any other NPU format (FRACTAL_NZ ...) is refused with an
  ``ArgumentError`` naming the format and the conversion, since every operator here takes ND data.
* ``empty(shape, dtype, like)``: an output tensor on the device of ``like``.
"""
from __future__ import annotations

import importlib.util
import logging
import sys
import weakref

from ._errors import ArgumentError

_log = logging.getLogger("aclnn_moe")
# torch_npu's base formats (FormatHelper::IsOpInputBaseFormat): NCHW 0, NHWC 1, ND 2, NCDHW 30
_BASE_FORMATS = (0, 1, 2, 30)
_ND = 2


def module():
    """torch_npu if it is imported and the active backend is CANN, else None."""
    m = sys.modules.get("torch_npu")
    if m is None or getattr(m, "__aclnn_moe_shim__", False):  # torch_npu_compat.install()'s stand-in: no NPU
        return None
    from .capi import backend

    return m if backend().name == "cann" else None


def initialize() -> bool:
    """Let torch_npu initialise ACL (with its own configuration) when the backend is CANN and torch_npu is
    installed: imported first if it is not yet. Returns True if it did, False if ACL is ours to initialise."""
    from .capi import backend

    if backend().name != "cann":
        return False
    m = sys.modules.get("torch_npu")
    if m is not None and getattr(m, "__aclnn_moe_shim__", False):  # torch_npu_compat.install()'s stand-in
        return False
    if m is None:
        if importlib.util.find_spec("torch_npu") is None:
            return False
        try:
            import torch_npu as m  # noqa: F811  (it must initialise ACL before anything else does)
        except Exception as e:  # noqa: BLE001  (a broken torch_npu cannot be initialised later either)
            _log.warning("torch_npu is installed but does not import (%s); initialising ACL without it", e)
            return False
    m.npu.init()
    return True


def device_index(t) -> int:
    """The NPU index of a torch NPU tensor (``npu`` without an index is torch_npu's current device)."""
    idx = t.device.index
    return int(idx) if idx is not None else int(module().npu.current_device())


def device_guard(index: int):
    """torch_npu's device guard for ``index`` (sets the device for the block and restores the previous one)."""
    return module().npu.device(int(index))


def current_device() -> int:
    return int(module().npu.current_device())


def set_device(index: int) -> None:
    module().npu.set_device(int(index))


def current_stream(index: int) -> int:
    """The current stream of device ``index`` as an int aclrtStream (flushes torch_npu's task queue first)."""
    return int(module().npu.current_stream(int(index)).npu_stream)


class Workspace:
    """A block of torch_npu's caching allocator, allocated for one stream; returned to the allocator by close()
    (or when dropped). The allocator reuses a freed block only for later work on the same stream."""

    __slots__ = ("ptr", "cptr", "nbytes", "device", "stream", "_finalizer", "__weakref__")

    def __init__(self, nbytes: int, index: int, stream: int):
        from .capi import ffi

        npu = module().npu
        self.nbytes, self.device, self.stream = int(nbytes), int(index), int(stream)
        self.ptr = int(npu.caching_allocator_alloc(self.nbytes, self.device, self.stream or None))
        self.cptr = ffi.cast("void *", self.ptr)
        self._finalizer = weakref.finalize(self, npu.caching_allocator_delete, self.ptr)

    def close(self) -> None:
        self._finalizer()


def workspace(nbytes: int, index: int, stream: int) -> Workspace:
    return Workspace(nbytes, index, stream)


def format_name(fmt: int) -> str:
    from .capi import cdef_source

    import re

    for name in re.findall(r"\b(ACL_FORMAT_\w+)\s*=\s*(-?\d+)", cdef_source()):
        if int(name[1]) == fmt:
            return name[0][len("ACL_FORMAT_"):]
    return "unknown"


def plain_format(ndim: int) -> int:
    """op-plugin's label for a base-format tensor of rank ``ndim`` (NCL, NCHW, NCDHW, else ND)."""
    from .capi import lib

    return {3: lib.ACL_FORMAT_NCL, 4: lib.ACL_FORMAT_NCHW, 5: lib.ACL_FORMAT_NCDHW}.get(ndim, lib.ACL_FORMAT_ND)


def describe(t, name: str) -> int:
    """The aclFormat to describe the torch NPU tensor ``t`` (parameter ``name``) with; ArgumentError when it cannot
    be described truthfully: not an NPU tensor, not on the CANN backend, or in a non-base NPU format."""
    if t.device.type != "npu":
        raise ArgumentError(name, f"is a torch tensor on {t.device}; aclnn_moe takes CPU or NPU torch tensors")
    m = module()
    if m is None:
        from .capi import backend

        b = backend()
        raise ArgumentError(name, f"is a torch NPU tensor, but the active aclnn_moe backend is {b.name} ({b.reason}), "
                                  "which cannot read NPU memory; use the CANN backend (ACLNN_MOE_BACKEND=cann)")
    fmt = int(m.get_npu_format(t))
    if fmt not in _BASE_FORMATS:
        raise ArgumentError(name, f"is stored in NPU format {format_name(fmt)} ({fmt}), but this operator takes ND "
                                  f"data; convert it first with torch_npu.npu_format_cast({name}, {_ND}) (ND)")
    return plain_format(t.dim())


def empty(shape, dtype: str, like):
    """An uninitialised torch tensor of ``shape`` and ``dtype`` on the device of the tensor ``like``."""
    import torch

    return like.new_empty(tuple(shape), dtype=getattr(torch, dtype))
