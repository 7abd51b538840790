"""Pythonic ownership of runtime objects: Device, Stream, Event, device memory and the workspace pool.

Lifetimes are explicit (``close()`` / ``with``), never left to the garbage collector alone; a finalizer frees
what a caller forgot, except during interpreter shutdown, where leaking is safer than calling into a runtime
that may already be torn down.
"""
from __future__ import annotations

import atexit
import bisect
import contextlib
import functools
import math
import os
import sys
import threading

import numpy as np

from . import _errors, _npu
from ._dtypes import name_of, numpy_dtype
from ._errors import ArgumentError, check
from .capi import ffi, lib

_init_lock = threading.Lock()
_initialized = False
_thread = threading.local()


def _ensure_init() -> None:
    """Initialise ACL once. On CANN with torch_npu installed, torch_npu does it (with its configuration): an
    aclInit(NULL) of ours first would leave it 100002 and its acl.json unapplied."""
    global _initialized
    if not _initialized:
        with _init_lock:
            if not _initialized:
                if not _npu.initialize():
                    status = lib.aclInit(ffi.NULL)
                    if status not in (0, lib.ACL_ERROR_REPEAT_INITIALIZE):
                        check(status, "aclInit")
                _initialized = True


def recover_if_finalized(status: int) -> bool:
    """After someone's aclFinalize, the runtime answers 107002 / 100000 / 361001 until aclInit: initialise again
    (aclInit returns 0 only when the runtime was not initialised) so that the facade recovers on its next use
    instead of failing forever. True when it did. Not on CANN with torch_npu, which owns initialisation."""
    if status not in _FINALIZED_STATUSES or not _initialized or _npu.module() is not None:
        return False
    with _init_lock:
        return lib.aclInit(ffi.NULL) == 0


_FINALIZED_STATUSES = (lib.ACL_ERROR_RT_CONTEXT_NULL, lib.ACL_ERROR_UNINITIALIZE, lib.ACLNN_ERR_RUNTIME_ERROR)


def _after_fork_in_child() -> None:
    """A fork() copies the facade's locks in whatever state other threads held them: new locks, and drop the
    workspaces of threads that do not exist in the child (the C runtime waited for their running tasks, so no
    kernel uses them)."""
    global _init_lock, _backed_lock
    _init_lock = threading.Lock()
    _backed_lock = threading.Lock()
    workspace_pool._lock = threading.Lock()
    staging_pool._lock = threading.Lock()
    with contextlib.suppress(Exception):
        workspace_pool.prune()


def default_device_id() -> int:
    return int(os.environ.get("ACLNN_MOE_DEVICE", "0"))


class Device:
    """An NPU (or the host runtime's CPU device). ``set_current()`` binds the calling thread to it (through
    torch_npu when it is in use, so that its own record of the current device stays true)."""

    def __init__(self, device_id: int | None = None):
        self.id = default_device_id() if device_id is None else int(device_id)

    def set_current(self) -> "Device":
        _ensure_init()
        if _npu.module() is not None:
            _npu.set_device(self.id)
            return self
        if getattr(_thread, "device", None) != self.id:
            check(lib.aclrtSetDevice(self.id), "aclrtSetDevice")
            _thread.device = self.id
        return self

    @staticmethod
    def count() -> int:
        n = ffi.new("uint32_t *")
        check(lib.aclrtGetDeviceCount(n), "aclrtGetDeviceCount")
        return int(n[0])

    def __repr__(self):
        return f"Device({self.id})"


def current_device() -> Device:
    """The calling thread's device: torch_npu's current device when it is in use, else the one this thread set
    (first use: ACLNN_MOE_DEVICE, default 0)."""
    if _npu.module() is not None:
        _ensure_init()
        return Device(_npu.current_device())
    dev = getattr(_thread, "device", None)
    return Device(dev).set_current() if dev is not None else Device().set_current()


def operand_device(operand) -> int | None:
    """The device an operand's data lives on (None for host data, which is staged on the launch device)."""
    obj = getattr(operand, "device_obj", None)
    if obj is None:
        return None
    if type(obj) is DeviceArray or isinstance(obj, DeviceArray):
        return obj.device
    return _npu.device_index(obj) if hasattr(obj, "untyped_storage") else None


def common_device(operands) -> int | None:
    """The one device of all device-resident operands (None if all are host data); ArgumentError naming two
    operands on different devices."""
    first, dev = None, None
    for o in operands:
        if o is None or o.device_obj is None:  # (the per-call hot path: host operands cost one test)
            continue
        d = operand_device(o)
        if d is None:
            continue
        if dev is None:
            first, dev = o, d
        elif d != dev:
            raise ArgumentError(o.name, f"is on device {d} but {first.name} is on device {dev}: all tensor "
                                        "operands of one call must be on the same device")
    return dev


@contextlib.contextmanager
def device_scope(device_id: int | None):
    """Run a block on ``device_id`` (None: the current device), restoring the previous device afterwards. With
    torch_npu in use this is its own device guard (so that its per-thread device cache stays true)."""
    _ensure_init()
    if _npu.module() is not None:
        if device_id is None:
            yield
            return
        with _npu.device_guard(device_id):
            yield
        return
    if device_id is None:
        current_device()
        yield
        return
    prev = getattr(_thread, "device", None)
    Device(device_id).set_current()
    try:
        yield
    finally:  # like a device guard: the thread's own choice of device survives a call on another one
        if prev is not None and prev != device_id:
            Device(prev).set_current()


def on_operands_device(method):
    """Decorator for Operation methods that call the runtime: run them on the device of the operation's
    operands (``self._inputs`` + ``self._outputs``; see common_device / device_scope)."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        dev = common_device([*self._inputs, *self._outputs])
        if _initialized and "torch_npu" not in sys.modules:  # hot path: the thread is already on the device
            cur = getattr(_thread, "device", None)
            if cur is not None and (dev is None or dev == cur):
                return method(self, *args, **kwargs)
        with device_scope(dev):
            return method(self, *args, **kwargs)

    return run


def launch_stream(stream, operands):
    """The stream a call launches on: ``stream`` when given (checked to be of the operands' device when it says
    its device); else, when any operand is a torch NPU tensor, the current stream of the operands' device (as
    op-plugin launches; reading it also flushes torch_npu's task queue, so torch's earlier work on those tensors
    runs first); else None (the default stream)."""
    dev = common_device(operands)
    if stream is not None:
        sdev = getattr(stream, "device_index", None) if not isinstance(stream, Stream) else stream.device
        if sdev is not None and dev is not None and int(sdev) != dev:
            raise ArgumentError("stream", f"is a stream of device {sdev}, but the tensor operands are on device {dev}")
        return stream
    if _npu.module() is not None and any(o is not None and o.kind == "torch_npu" for o in operands):
        return _npu.current_stream(dev if dev is not None else _npu.current_device())
    return None


def current_device_id() -> int:
    if _npu.module() is not None:
        return _npu.current_device()
    dev = getattr(_thread, "device", None)
    return dev if dev is not None else current_device().id


def _finalizing() -> bool:
    return sys.is_finalizing()


class _Owned:
    """Base of objects owning one runtime handle, released by close() or, as a fallback, by the GC.

    The handle lives in ``_live`` while owned; close() takes it out with one ``dict.pop`` (atomic under the GIL,
    so two threads closing at once release it once) and a forgotten object is released by ``__del__`` (cheaper
    than a weakref.finalize per object, which cost more than the aclrtMalloc of a small buffer). Never at
    interpreter exit: daemon threads may still run kernels on this memory / stream (leak at exit instead)."""

    _release = None  # name of the C function releasing the handle

    def _own(self, handle):
        self._handle = handle
        self._live = handle

    def close(self) -> None:
        handle = self.__dict__.pop("_live", _NOTHING)
        if handle is not _NOTHING:
            _release_handle(self._release, handle)

    @property
    def closed(self) -> bool:
        return "_live" not in self.__dict__

    def __del__(self):
        handle = self.__dict__.pop("_live", _NOTHING)
        if handle is not _NOTHING:
            try:
                _release_handle(self._release, handle)
            except Exception:  # noqa: BLE001  (a finalizer must not raise)
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_NOTHING = object()


def _release_handle(func_name, handle):
    if not _finalizing() and not _exiting:
        check(getattr(lib, func_name)(handle), func_name)


_exiting = False


def _at_exit() -> None:
    """From interpreter exit on, nothing is freed: threads still inside operator calls keep their memory."""
    global _exiting
    _exiting = True


class Stream(_Owned):
    """An aclrtStream. ``Stream()`` creates one; ``Stream.wrap(handle)`` borrows a foreign one (an int from
    torch_npu's ``npu_stream``, for instance) without owning it."""

    _release = "aclrtDestroyStream"

    def __init__(self, device: Device | None = None):
        out = ffi.new("aclrtStream *")
        with device_scope(None if device is None else device.id):  # torch_npu's guard when it is in use
            self.device = current_device_id()
            check(lib.aclrtCreateStream(out), "aclrtCreateStream")
        self._own(out[0])

    @classmethod
    def wrap(cls, handle) -> "Stream":
        s = cls.__new__(cls)
        s._handle = ffi.cast("aclrtStream", int(handle))
        s.device = None  # unknown
        return s

    @property
    def handle(self):
        """The aclrtStream (a cffi pointer)."""
        return self._handle

    def synchronize(self) -> None:
        check(lib.aclrtSynchronizeStream(self._handle), "aclrtSynchronizeStream")

    def close(self) -> None:
        if not self.closed:  # the pool's workspaces of this stream go with it (destroy waits for its work)
            workspace_pool.drop_stream(self._handle)
        super().close()

    def __int__(self):
        return int(ffi.cast("uintptr_t", self._handle))


def as_stream_handle(stream):
    """The aclrtStream for a ``stream=`` argument: None (default stream), a Stream, an int handle, or an object
    with ``npu_stream`` (torch_npu.npu.Stream) or ``__aclrt_stream__()``."""
    if stream is None:
        return ffi.NULL
    if isinstance(stream, Stream):
        return stream.handle
    if isinstance(stream, int):
        return ffi.cast("aclrtStream", stream)
    if hasattr(stream, "__aclrt_stream__"):
        return ffi.cast("aclrtStream", int(stream.__aclrt_stream__()))
    if hasattr(stream, "npu_stream"):
        return ffi.cast("aclrtStream", int(stream.npu_stream))
    if isinstance(stream, ffi.CData):
        return stream
    raise TypeError(f"stream: cannot use {type(stream).__name__} as an aclrtStream")


class Event(_Owned):
    """An aclrtEvent with timing: ``end.elapsed_ms(start)`` after both were recorded."""

    _release = "aclrtDestroyEvent"

    def __init__(self):
        current_device()
        out = ffi.new("aclrtEvent *")
        check(lib.aclrtCreateEvent(out), "aclrtCreateEvent")
        self._own(out[0])

    def record(self, stream=None) -> "Event":
        check(lib.aclrtRecordEvent(self._handle, as_stream_handle(stream)), "aclrtRecordEvent")
        return self

    def synchronize(self) -> None:
        check(lib.aclrtSynchronizeEvent(self._handle), "aclrtSynchronizeEvent")

    def elapsed_ms(self, start: "Event") -> float:
        ms = ffi.new("float *")
        check(lib.aclrtEventElapsedTime(ms, start._handle, self._handle), "aclrtEventElapsedTime")
        return float(ms[0])


_VOID_PP, _UINTPTR = ffi.typeof("void **"), ffi.typeof("uintptr_t")
_HUGE_FIRST = lib.ACL_MEM_MALLOC_HUGE_FIRST


class DeviceBuffer(_Owned):
    """``nbytes`` of device memory from aclrtMalloc. ``ptr`` is the address as an int, ``cptr`` as void*."""

    _release = "aclrtFree"

    def __init__(self, nbytes: int, device: int | None = None):
        self.nbytes = nbytes = int(nbytes)
        out = ffi.new(_VOID_PP)
        cur = getattr(_thread, "device", None)
        if _initialized and cur is not None and (device is None or device == cur) and "torch_npu" not in sys.modules:
            self.device = cur  # (hot path, taken by every fresh output of a cached plan: no scope to enter)
            if lib.aclrtMalloc(out, nbytes or 1, _HUGE_FIRST):
                self._malloc(out, nbytes)  # (recovery after an aclFinalize, or the error raised)
        else:
            with device_scope(device):
                self.device = current_device_id()
                self._malloc(out, nbytes)
        p = out[0]
        self._handle = self._live = self.cptr = p  # (what _own does, inline)
        self.ptr = int(ffi.cast(_UINTPTR, p))

    @staticmethod
    def _malloc(out, nbytes):
        status = lib.aclrtMalloc(out, max(nbytes, 1), _HUGE_FIRST)
        if status and recover_if_finalized(status):  # aclFinalize by someone: initialised again, retry
            status = lib.aclrtMalloc(out, max(nbytes, 1), _HUGE_FIRST)
        check(status, "aclrtMalloc")

    def upload(self, array: np.ndarray, offset: int = 0) -> None:
        """Copy a C-contiguous host array into the buffer at byte `offset`."""
        n = array.nbytes
        if n:
            check(lib.aclrtMemcpy(ffi.cast("char *", self.cptr) + offset, self.nbytes - offset,
                                  ffi.from_buffer(array), n, lib.ACL_MEMCPY_HOST_TO_DEVICE), "aclrtMemcpy")

    def download(self, array: np.ndarray, offset: int = 0) -> np.ndarray:
        """Fill a C-contiguous writable host array from the buffer at byte `offset`."""
        n = array.nbytes
        if n:
            check(lib.aclrtMemcpy(ffi.from_buffer(array), n, ffi.cast("char *", self.cptr) + offset, n,
                                  lib.ACL_MEMCPY_DEVICE_TO_HOST), "aclrtMemcpy")
        return array


class WorkspacePool:
    """Device scratch reused across calls: one buffer per (stream, thread, device), grown (never shrunk) on demand.

    ``allocator(nbytes) -> object with .cptr and .nbytes`` can replace aclrtMalloc (e.g. a framework's caching
    allocator). Work on one stream runs in order, so a thread's buffer is free for its next call on the same
    stream once the previous call was enqueued; a buffer being replaced by a larger one is released only after
    its stream has drained (stream-ordered release), so an in-flight kernel never loses its scratch. Separate
    buffers per thread keep concurrent callers of one stream from sharing scratch."""

    def __init__(self, allocator=DeviceBuffer):
        self._allocator = allocator
        self._buffers: dict[tuple[int, int], object] = {}
        self._lock = threading.Lock()

    def get(self, nbytes: int, stream_handle=ffi.NULL):
        if nbytes == 0:
            return ffi.NULL
        # the NULL stream is every device's default stream: the device is part of the key
        key = (int(ffi.cast("uintptr_t", stream_handle)), threading.get_ident(), current_device_id())
        with self._lock:
            buf = self._buffers.get(key)
            if buf is not None and buf.nbytes >= nbytes:
                return buf.cptr
        if buf is not None:
            check(lib.aclrtSynchronizeStream(stream_handle), "aclrtSynchronizeStream")
            if hasattr(buf, "close"):
                buf.close()
        # grow by at least a quarter so that slowly rising sizes do not reallocate every call
        size = max(int(nbytes), int(buf.nbytes * 1.25) if buf is not None else 0)
        fresh = self._allocator(size)
        with self._lock:
            self._buffers[key] = fresh
            new_key = buf is None
        if new_key:  # a new (stream, thread): the time to release those of finished threads
            self.prune()
        return fresh.cptr

    def get_default(self, nbytes: int, device: int):
        """``get(nbytes)`` on the default stream of ``device``, the thread's current device (the lean path of
        repeated calls: one dict lookup; only this thread replaces its own buffer, so no lock is needed to read)."""
        buf = self._buffers.get((0, threading.get_ident(), device))
        if buf is not None and buf.nbytes >= nbytes:
            return buf.cptr
        return self.get(nbytes, ffi.NULL)

    def prune(self) -> None:
        """Release the buffers of threads that have finished (after their stream drained: on a stream that was
        destroyed meanwhile, the destroy already waited)."""
        alive = {t.ident for t in threading.enumerate()}
        with self._lock:
            dead = [k for k in self._buffers if k[1] not in alive]
            bufs = [(k[0], self._buffers.pop(k)) for k in dead]
        self._close_after_drain(bufs)

    def drop_stream(self, stream_handle) -> None:
        """Release the buffers of one stream (called before it is destroyed)."""
        h = int(ffi.cast("uintptr_t", stream_handle))
        with self._lock:
            bufs = [(h, self._buffers.pop(k)) for k in [k for k in self._buffers if k[0] == h]]
        self._close_after_drain(bufs)

    @staticmethod
    def _close_after_drain(bufs) -> None:
        for h, buf in bufs:
            lib.aclrtSynchronizeStream(ffi.cast("aclrtStream", h))  # an error: the stream is gone, and idle
            if hasattr(buf, "close"):
                with contextlib.suppress(Exception):
                    buf.close()

    def set_allocator(self, allocator) -> None:
        """Use `allocator(nbytes) -> object with .cptr (void*) and .nbytes` for new buffers from now on (the
        pool's current buffers are released: call it when no work that uses them is in flight)."""
        self.release()
        self._allocator = allocator

    def release(self) -> None:
        """Free every buffer (call when no work that uses them is in flight)."""
        with self._lock:
            bufs, self._buffers = list(self._buffers.values()), {}
        for buf in bufs:
            if hasattr(buf, "close"):
                buf.close()

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(b.nbytes for b in self._buffers.values())

    def __len__(self) -> int:
        return len(self._buffers)


workspace_pool = WorkspacePool()


class StagingPool:
    """Device buffers that carry host operands to and from the device, leased per operation and reused, so
    that a function-form call does not pay an aclrtMalloc/aclrtFree pair. Buffers larger than `keep_bytes`
    are freed when given back rather than kept."""

    def __init__(self, keep_bytes: int = 64 << 20, keep_count: int = 4):
        self._free: list[DeviceBuffer] = []
        self._lock = threading.Lock()
        self.keep_bytes, self.keep_count = keep_bytes, keep_count

    def lease(self, nbytes: int) -> DeviceBuffer:
        """A buffer of at least ``nbytes`` on the current device."""
        nbytes = max(int(nbytes), 1)
        device = current_device_id()
        with self._lock:
            for i, b in enumerate(self._free):
                if b.nbytes >= nbytes and b.device == device:
                    return self._free.pop(i)
        return DeviceBuffer(nbytes)

    def give_back(self, buf: DeviceBuffer) -> None:
        with self._lock:
            if buf.nbytes <= self.keep_bytes and len(self._free) < self.keep_count:
                self._free.append(buf)
                self._free.sort(key=lambda b: b.nbytes)
                return
        buf.close()

    def release(self) -> None:
        with self._lock:
            bufs, self._free = self._free, []
        for b in bufs:
            b.close()


staging_pool = StagingPool()

_errors._recover = recover_if_finalized
os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)


class DeviceArray:
    """A tensor resident in device memory: shape, dtype and a DeviceBuffer (or a borrowed address).

    Passing DeviceArrays to the operators skips every host<->device copy; results then come back as
    DeviceArrays too. ``to_device(ndarray)`` and ``.to_host()`` move data explicitly."""

    def __init__(self, shape, dtype, buffer: DeviceBuffer | None = None, *, ptr: int | None = None, owner=None,
                 device: int | None = None):
        self.shape = tuple(int(s) for s in shape)
        self.dtype = numpy_dtype(name_of(dtype))
        self.nbytes = math.prod(self.shape) * self.dtype.itemsize
        self.buffer = buffer if buffer is not None or ptr is not None else DeviceBuffer(self.nbytes, device)
        self.ptr = self.buffer.ptr if ptr is None else int(ptr)
        self._owner = owner  # keeps borrowed memory alive
        # borrowed memory: the device it was given for, else unknown (None: not checked against the others)
        self.device = getattr(self.buffer, "device", None) if device is None else int(device)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def to_host(self) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        if out.nbytes:
            check(lib.aclrtMemcpy(ffi.from_buffer(out), out.nbytes, ffi.cast("void *", self.ptr), out.nbytes,
                                  lib.ACL_MEMCPY_DEVICE_TO_HOST), "aclrtMemcpy")
        return out

    def copy_from(self, array) -> "DeviceArray":
        a = np.ascontiguousarray(array, dtype=self.dtype)
        if a.shape != self.shape:
            raise ValueError(f"copy_from: shape {a.shape} does not match {self.shape}")
        if a.nbytes:
            check(lib.aclrtMemcpy(ffi.cast("void *", self.ptr), self.nbytes, ffi.from_buffer(a), a.nbytes,
                                  lib.ACL_MEMCPY_HOST_TO_DEVICE), "aclrtMemcpy")
        return self

    def close(self) -> None:
        if isinstance(self.buffer, DeviceBuffer):
            self.buffer.close()

    def __repr__(self):
        return f"DeviceArray(shape={self.shape}, dtype={self.dtype.name}, ptr=0x{self.ptr:x})"


def new_device_array(shape: tuple, dtype: np.dtype, nbytes: int, device: int | None) -> DeviceArray:
    """A DeviceArray of fresh memory whose (tuple) shape, numpy dtype and size are known already (the plan
    cache's fresh outputs: none of the constructor's conversions)."""
    a = DeviceArray.__new__(DeviceArray)
    a.shape, a.dtype, a.nbytes, a._owner = shape, dtype, nbytes, None
    a.buffer = b = DeviceBuffer(nbytes, device)
    a.ptr, a.device = b.ptr, b.device
    return a




# ---- host arrays in device memory (the plan cache's large fresh outputs on the host backend)
# A large output the caller keeps is a numpy array over an aclrtMalloc block: the allocator pools large blocks
# with their pages faulted in (and huge pages), so a fresh 100 MB result does not pay 25k page faults per call as
# np.empty memory does; the block goes back to the pool when the last view of the array dies. Such memory is
# device memory already, so a later call given the array (or a torch view of it) binds it without registering
# it: ``device_backed(addr, nbytes)`` says whether a range lies in one of these blocks.
_backed_lock = threading.Lock()
_backed_starts: list = []  # sorted block starts
_backed_ends: dict = {}  # start -> end
_backed_freed: list = []  # starts freed by finalizers, dropped from the table at its next use


def _drain_backed_locked() -> None:
    while _backed_freed:
        start = _backed_freed.pop()
        if _backed_ends.pop(start, None) is not None:
            i = bisect.bisect_left(_backed_starts, start)
            if i < len(_backed_starts) and _backed_starts[i] == start:
                del _backed_starts[i]


def _free_backed(p) -> None:
    # (a finalizer: takes no lock, the table forgets the block at its next use; never at interpreter exit)
    _backed_freed.append(int(ffi.cast(_UINTPTR, p)))
    if not _finalizing() and not _exiting:
        lib.aclrtFree(p)


def host_array_on_device(shape: tuple, dtype: np.dtype, nbytes: int) -> np.ndarray:
    """A fresh C-contiguous numpy array whose memory is an aclrtMalloc block, freed when the array (with every
    view of it) is gone. Host backend only (device memory is host memory there)."""
    out = ffi.new(_VOID_PP)
    DeviceBuffer._malloc(out, nbytes)
    start = int(ffi.cast(_UINTPTR, out[0]))
    p = ffi.gc(ffi.cast("char *", out[0]), _free_backed, size=nbytes)
    with _backed_lock:
        _drain_backed_locked()
        bisect.insort(_backed_starts, start)
        _backed_ends[start] = start + nbytes
    return np.frombuffer(ffi.buffer(p, nbytes), dtype).reshape(shape)


def device_backed(addr: int, nbytes: int) -> bool:
    """Whether [addr, addr + nbytes) lies inside one block of ``host_array_on_device`` (an answer the C range
    checks verify again: a stale one costs an error status, never memory safety)."""
    with _backed_lock:
        _drain_backed_locked()
        i = bisect.bisect_right(_backed_starts, addr) - 1
        return i >= 0 and addr + nbytes <= _backed_ends[_backed_starts[i]]


def to_device(array) -> DeviceArray:
    """Copy a host array (numpy, or anything numpy accepts) into a new DeviceArray."""
    a = np.ascontiguousarray(array)
    return DeviceArray(a.shape, a.dtype).copy_from(a)
