"""Shared test fixtures.

``ws_status`` calls an operator's phase 1 (and, with ``run=True``, phase 2) directly through capi with
descriptors built from numpy arrays, bypassing the facade's own checks, so that tests can assert the exact
status code the C implementation returns for a broken rule::

    status, msg = ws_status("aclnnMoeGatingTopK", x, None, 9, 1, 1, 0, 0, 0, False, 1.0, 1e-20, y, idx, out)
    assert status == 561002 and "k" in msg

Arguments: numpy arrays become device tensors (uploaded), ``None`` becomes NULL, a Python list an
aclIntArray, anything else is passed to cffi as is. With ``run=True`` the outputs are copied back into the
numpy arrays given for them.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

from aclnn_moe import DeviceBuffer
from aclnn_moe._dtypes import acl_dtype
from aclnn_moe._errors import recent_message
from aclnn_moe.capi import ffi, lib


def _call(api, args, run):
    keep, cargs, outs = [], [], []
    try:
        for a in args:
            if isinstance(a, np.ndarray):
                buf = DeviceBuffer(max(a.nbytes, 1))
                keep.append(buf)
                if a.nbytes:
                    buf.upload(np.ascontiguousarray(a))
                dims = ffi.new("int64_t[]", list(a.shape) or [0])
                t = lib.aclCreateTensor(dims, a.ndim, acl_dtype(a.dtype.name), ffi.NULL, 0, lib.ACL_FORMAT_ND,
                                        dims, a.ndim, buf.cptr)
                assert t != ffi.NULL, recent_message()
                keep.append(("tensor", t))
                cargs.append(t)
                outs.append((a, buf))
            elif isinstance(a, list):
                h = lib.aclCreateIntArray(ffi.new("int64_t[]", list(a) or [0]), len(a))
                keep.append(("array", h))
                cargs.append(h)
            elif a is None:
                cargs.append(ffi.NULL)
            else:
                cargs.append(a)
        ws = ffi.new("uint64_t *")
        ex = ffi.new("aclOpExecutor **")
        status = getattr(lib, api + "GetWorkspaceSize")(*cargs, ws, ex)
        if status != 0 or not run:
            msg = recent_message() if status else ""  # the text persists (CANN): a success has no message
            if status == 0:  # consume the executor so nothing leaks
                w = DeviceBuffer(ws[0]) if ws[0] else None
                getattr(lib, api)(w.cptr if w else ffi.NULL, ws[0], ex[0], ffi.NULL)
                if w:
                    w.close()
            return status, msg
        w = DeviceBuffer(ws[0]) if ws[0] else None
        status = getattr(lib, api)(w.cptr if w else ffi.NULL, ws[0], ex[0], ffi.NULL)
        msg = recent_message() if status else ""
        if w:
            w.close()
        if status == 0:
            for a, buf in outs:
                if a.flags.writeable and a.flags.c_contiguous:
                    buf.download(a)
        return status, msg
    finally:
        for k in keep:
            if isinstance(k, tuple):
                kind, h = k
                (lib.aclDestroyTensor if kind == "tensor" else lib.aclDestroyIntArray)(h)
            else:
                k.close()


@pytest.fixture
def ws_status():
    """ws_status(api, *args, run=False) -> (status, message); see the module docstring."""

    def call(api, *args, run=False):
        return _call(api, args, run)

    return call


@pytest.fixture
def rng(request):
    """A generator seeded from the test's name, so each test sees fixed data."""
    import zlib

    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def pytest_collection_modifyitems(config, items):
    """Tests marked `ascend` need the CANN backend on an NPU, `torch_npu` needs torch_npu: elsewhere they skip
    with the reason, never fail."""
    from aclnn_moe.capi import backend

    on_cann = backend().name == "cann"
    try:
        import torch_npu  # noqa: F401

        has_torch_npu = True
    except ImportError:
        has_torch_npu = False
    for item in items:
        if "ascend" in item.keywords and not on_cann:
            item.add_marker(pytest.mark.skip(reason=f"needs CANN on an Ascend NPU; the active backend is "
                                                    f"{backend().name} ({backend().reason})"))
        if "torch_npu" in item.keywords and not has_torch_npu:
            item.add_marker(pytest.mark.skip(reason="needs torch_npu, which is not installed"))


@pytest.fixture
def device_view():
    """device_view(base, shape, strides, offset, fmt=None) -> (aclTensor*, DeviceBuffer): uploads the 1-D
    numpy array `base` as the storage and describes a view of it (any strides / offset / format); everything is
    released when the test ends."""
    from aclnn_moe._errors import recent_message as _msg

    made = []

    def make(base, shape, strides, offset, fmt=None):
        base = np.ascontiguousarray(base).reshape(-1)
        buf = DeviceBuffer(max(base.nbytes, 1))
        made.append(buf)
        if base.nbytes:
            buf.upload(base)
        t = lib.aclCreateTensor(ffi.new("int64_t[]", list(shape) or [0]), len(shape), acl_dtype(base.dtype.name),
                                ffi.new("int64_t[]", list(strides) or [0]), offset,
                                lib.ACL_FORMAT_ND if fmt is None else fmt, ffi.new("int64_t[]", [base.size]), 1,
                                buf.cptr)
        assert t != ffi.NULL, _msg()
        made.append(t)
        return t, buf

    yield make
    for m in reversed(made):
        if isinstance(m, DeviceBuffer):
            m.close()
        else:
            lib.aclDestroyTensor(m)


@pytest.fixture
def two_phase():
    """two_phase(api, *c_args) -> status: phase 1 with the given C arguments, then (if it succeeded) phase 2 on
    the default stream with a freshly allocated workspace."""

    def call(api, *args):
        ws = ffi.new("uint64_t *")
        ex = ffi.new("aclOpExecutor **")
        status = getattr(lib, api + "GetWorkspaceSize")(*args, ws, ex)
        if status:
            return status
        w = DeviceBuffer(ws[0]) if ws[0] else None
        try:
            return getattr(lib, api)(w.cptr if w else ffi.NULL, ws[0], ex[0], ffi.NULL)
        finally:
            if w:
                w.close()

    return call


@pytest.fixture
def in_threads():
    """in_threads(work, n=4): run ``work(i)`` for i in range(n) in n threads at once, wait for all, and re-raise
    the first exception any of them raised (an assertion inside a thread fails the test)."""

    def run(work, n=4):
        errors = []

        def guarded(i):
            try:
                work(i)
            except BaseException as e:  # noqa: BLE001  (re-raised in the test's thread)
                errors.append(e)

        threads = [threading.Thread(target=guarded, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    return run
