"""torch_npu.npu / torch.npu of the stand-in: init, devices, streams, caching allocator."""
from __future__ import annotations

import ctypes
import enum
import threading

from . import acl, calls

ACL_CONFIG = b"stand-in-acl.json"
init_status: int | None = None  # what aclInit returned to the stand-in (100002: someone initialised ACL first)
_initialized = False
_lock = threading.RLock()
_tls = threading.local()  # the per-thread device cache of torch_npu (NPUFunctions.cpp)


class Format(enum.IntEnum):
    NCHW = 0
    NHWC = 1
    ND = 2
    NC1HWC0 = 3
    FRACTAL_Z = 4
    FRACTAL_NZ = 29
    NCDHW = 30


def _check(status, what):
    if status:
        raise RuntimeError(f"stand-in torch_npu: {what} failed with status {status}")


def real_device() -> int:
    """The device the runtime binds this thread to (not the cache): -1 if none."""
    d = ctypes.c_int32(-1)
    return d.value if acl.aclrtGetDevice(ctypes.byref(d)) == 0 else -1


def _set_device_cached(index: int) -> None:
    if getattr(_tls, "device", None) == index:  # torch_npu skips aclrtSetDevice when its cache matches
        return
    _check(acl.aclrtSetDevice(index), f"aclrtSetDevice({index})")
    _tls.device = index
    calls.append(("aclrtSetDevice", index))


def init() -> None:
    _lazy_init()


def _lazy_init() -> None:
    global _initialized, init_status
    with _lock:
        if _initialized:
            return
        init_status = int(acl.aclInit(ACL_CONFIG))
        calls.append(("aclInit", init_status))
        if init_status not in (0, 100002):
            raise RuntimeError(f"stand-in torch_npu: aclInit failed with {init_status}")
        _initialized = True
    _set_device_cached(getattr(_tls, "device", None) or 0)


def is_initialized() -> bool:
    return _initialized


def _index(device) -> int:
    if device is None:
        return current_device()
    if isinstance(device, int):
        return device
    if isinstance(device, str):
        return int(device.split(":")[1]) if ":" in device else current_device()
    idx = getattr(device, "index", None)
    return current_device() if idx is None else int(idx)


def set_device(device) -> None:
    _lazy_init()
    calls.append(("set_device", _index(device)))
    _set_device_cached(_index(device))


def current_device() -> int:
    _lazy_init()
    if getattr(_tls, "device", None) is None:  # a new thread starts on device 0
        _set_device_cached(0)
    return _tls.device


def device_count() -> int:
    n = ctypes.c_uint32(0)
    _check(acl.aclrtGetDeviceCount(ctypes.byref(n)), "aclrtGetDeviceCount")
    return n.value


class device:
    """torch_npu's device guard: set for the block, restored after (through the cache)."""

    def __init__(self, device):
        self.idx = _index(device) if device is not None else -1
        self.prev = -1

    def __enter__(self):
        if self.idx < 0:
            return self
        _lazy_init()
        self.prev = current_device()
        calls.append(("device_guard", self.idx))
        _set_device_cached(self.idx)
        return self

    def __exit__(self, *exc):
        if self.idx >= 0:
            _set_device_cached(self.prev)
        return False


class _Device:
    type = "npu"

    def __init__(self, index: int):
        self.index = int(index)

    def __eq__(self, other):
        return isinstance(other, _Device) and other.index == self.index

    def __hash__(self):
        return hash(("npu", self.index))

    def __repr__(self):
        return f"device(type='npu', index={self.index})"

    def __str__(self):
        return f"npu:{self.index}"


class Stream:
    """An aclrtStream created on a device; ``npu_stream`` is the raw handle (an int), as in torch_npu."""

    def __init__(self, device=None, priority: int = 0):
        idx = _index(device)
        h = ctypes.c_void_p()
        with globals()["device"](idx):
            _check(acl.aclrtCreateStream(ctypes.byref(h)), "aclrtCreateStream")
        self.device_index, self._handle = idx, int(h.value)
        _streams.setdefault(idx, []).append(self)

    @property
    def device(self):
        return _Device(self.device_index)

    @property
    def npu_stream(self) -> int:
        calls.append(("npu_stream", self.device_index, self._handle))
        return self._handle

    def synchronize(self) -> None:
        _check(acl.aclrtSynchronizeStream(ctypes.c_void_p(self._handle)), "aclrtSynchronizeStream")


_streams: dict[int, list[Stream]] = {}
_current: dict[int, Stream] = {}


def current_stream(device=None) -> Stream:
    """The current stream of ``device`` (None: of the current device), one per device."""
    _lazy_init()
    idx = _index(device)
    calls.append(("current_stream", None if device is None else idx, idx))
    with _lock:
        if idx not in _current:
            _current[idx] = Stream(idx)
    return _current[idx]


def set_stream(stream: Stream) -> None:
    _current[stream.device_index] = stream


def synchronize(device=None) -> None:
    for s in _streams.get(_index(device), []):
        s.synchronize()


# ---- the caching allocator: a freed block is reused only for the same (device, stream), as torch_npu's
blocks: dict[int, tuple[int, int, int]] = {}  # live ptr -> (device, stream, nbytes)
_free_blocks: list[tuple[int, int, int, int]] = []  # (device, stream, nbytes, ptr)


def caching_allocator_alloc(size, device=None, stream=None) -> int:
    idx = _index(device)
    if stream is None:
        stream = current_stream(idx).npu_stream
    if isinstance(stream, Stream):
        stream = stream.npu_stream
    if not isinstance(stream, int):
        raise TypeError("stream must be a Stream or an int")
    size = max(int(size), 1)
    calls.append(("caching_allocator_alloc", idx, stream, size))
    with _lock:
        for i, (d, s, n, p) in enumerate(_free_blocks):
            if d == idx and s == stream and n >= size:
                del _free_blocks[i]
                blocks[p] = (d, s, n)
                return p
    ptr = ctypes.c_void_p()
    with globals()["device"](idx):
        _check(acl.aclrtMalloc(ctypes.byref(ptr), ctypes.c_size_t(size), 0), "aclrtMalloc")
    blocks[ptr.value] = (idx, stream, size)
    return ptr.value


def caching_allocator_delete(ptr: int) -> None:
    calls.append(("caching_allocator_delete", int(ptr)))
    with _lock:
        d, s, n = blocks.pop(int(ptr))
        _free_blocks.append((d, s, n, int(ptr)))
