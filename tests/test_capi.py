"""The raw binding, used exactly as a C aclnn sample uses the C API, and the runtime/nnopbase semantics the
ABI promises (spec/abi.md sections 3 and 4)."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest

from aclnn_moe.capi import ffi, lib

ACL_SUCCESS = 0


def _malloc_copy(host: np.ndarray):
    dev = ffi.new("void **")
    assert lib.aclrtMalloc(dev, host.nbytes, lib.ACL_MEM_MALLOC_HUGE_FIRST) == ACL_SUCCESS
    assert lib.aclrtMemcpy(dev[0], host.nbytes, ffi.from_buffer(host), host.nbytes,
                           lib.ACL_MEMCPY_HOST_TO_DEVICE) == ACL_SUCCESS
    return dev[0]


def _tensor(shape, dtype, addr, strides=None):
    dims = ffi.new("int64_t[]", shape)
    st = ffi.new("int64_t[]", strides) if strides is not None else ffi.NULL
    return lib.aclCreateTensor(dims, len(shape), dtype, st, 0, lib.ACL_FORMAT_ND, dims, len(shape), addr)


def _free(p):
    """libc free(), as a C caller releases the arrays of aclGetViewShape & co."""
    ctypes.CDLL(None).free(ctypes.c_void_p(int(ffi.cast("uintptr_t", p))))


def _message():
    p = lib.aclGetRecentErrMsg()
    return ffi.string(p).decode() if p != ffi.NULL else ""


@pytest.fixture
def stream():
    status = lib.aclInit(ffi.NULL)
    assert status in (ACL_SUCCESS, lib.ACL_ERROR_REPEAT_INITIALIZE)
    assert lib.aclrtSetDevice(0) == ACL_SUCCESS
    s = ffi.new("aclrtStream *")
    assert lib.aclrtCreateStream(s) == ACL_SUCCESS
    yield s[0]
    assert lib.aclrtDestroyStream(s[0]) == ACL_SUCCESS


def test_sample_compute_expert_tokens_line_by_line(stream):
    # 2. inputs and outputs
    sorted_host = np.array([0, 0, 1, 1, 2, 2], np.int32)
    out_host = np.array([3, 4, 5], np.int32)
    sorted_dev, out_dev = _malloc_copy(sorted_host), _malloc_copy(out_host)
    sorted_t = _tensor([6], lib.ACL_INT32, sorted_dev)
    out_t = _tensor([3], lib.ACL_INT32, out_dev)
    # 3. two-phase call
    ws = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    assert lib.aclnnMoeComputeExpertTokensGetWorkspaceSize(sorted_t, 3, out_t, ws, executor) == ACL_SUCCESS
    workspace = ffi.NULL
    if ws[0] > 0:
        p = ffi.new("void **")
        assert lib.aclrtMalloc(p, ws[0], lib.ACL_MEM_MALLOC_HUGE_FIRST) == ACL_SUCCESS
        workspace = p[0]
    assert lib.aclnnMoeComputeExpertTokens(workspace, ws[0], executor[0], stream) == ACL_SUCCESS
    # 4. synchronize, 5. copy back
    assert lib.aclrtSynchronizeStream(stream) == ACL_SUCCESS
    result = np.zeros(3, np.int32)
    assert lib.aclrtMemcpy(ffi.from_buffer(result), result.nbytes, out_dev, result.nbytes,
                           lib.ACL_MEMCPY_DEVICE_TO_HOST) == ACL_SUCCESS
    np.testing.assert_array_equal(result, [2, 4, 6])
    # 6. a non-repeatable executor is gone after its second phase
    assert lib.aclnnMoeComputeExpertTokens(workspace, ws[0], executor[0], stream) == lib.ACLNN_ERR_INNER_NULLPTR
    # 7. release
    assert lib.aclDestroyTensor(sorted_t) == ACL_SUCCESS
    assert lib.aclDestroyTensor(out_t) == ACL_SUCCESS
    for p in (sorted_dev, out_dev) + ((workspace,) if ws[0] else ()):
        assert lib.aclrtFree(p) == ACL_SUCCESS


def test_repeatable_executor_rebinds_addresses(stream):
    a, b = np.array([0, 1, 1, 1], np.int32), np.array([0, 0, 0, 1], np.int32)
    da, db, dout = _malloc_copy(a), _malloc_copy(b), _malloc_copy(np.zeros(2, np.int32))
    src_t, out_t = _tensor([4], lib.ACL_INT32, da), _tensor([2], lib.ACL_INT32, dout)
    ws, ex = ffi.new("uint64_t *"), ffi.new("aclOpExecutor **")
    assert lib.aclnnMoeComputeExpertTokensGetWorkspaceSize(src_t, 2, out_t, ws, ex) == ACL_SUCCESS
    # as CANN, rebinding is accepted before the executor is made repeatable (it is meant for repeatable ones)
    assert lib.aclSetInputTensorAddr(ex[0], 0, src_t, db) == ACL_SUCCESS
    assert lib.aclSetAclOpExecutorRepeatable(ex[0]) == ACL_SUCCESS
    out = np.zeros(2, np.int32)
    for src, want in ((da, [1, 4]), (db, [3, 4]), (da, [1, 4])):
        assert lib.aclSetInputTensorAddr(ex[0], 0, src_t, src) == ACL_SUCCESS
        assert lib.aclnnMoeComputeExpertTokens(ffi.NULL, 0, ex[0], stream) == ACL_SUCCESS
        lib.aclrtMemcpy(ffi.from_buffer(out), 8, dout, 8, lib.ACL_MEMCPY_DEVICE_TO_HOST)
        np.testing.assert_array_equal(out, want)
    assert lib.aclSetInputTensorAddr(ex[0], 5, src_t, da) == lib.ACLNN_ERR_PARAM_INVALID  # no input 5
    # outputs rebind too: the next run writes into a second buffer and leaves the first alone
    dout2 = _malloc_copy(np.full(2, -1, np.int32))
    assert lib.aclSetOutputTensorAddr(ex[0], 0, out_t, dout2) == ACL_SUCCESS
    assert lib.aclSetInputTensorAddr(ex[0], 0, src_t, db) == ACL_SUCCESS
    assert lib.aclnnMoeComputeExpertTokens(ffi.NULL, 0, ex[0], stream) == ACL_SUCCESS
    out2 = np.zeros(2, np.int32)
    lib.aclrtMemcpy(ffi.from_buffer(out2), 8, dout2, 8, lib.ACL_MEMCPY_DEVICE_TO_HOST)
    lib.aclrtMemcpy(ffi.from_buffer(out), 8, dout, 8, lib.ACL_MEMCPY_DEVICE_TO_HOST)
    np.testing.assert_array_equal(out2, [3, 4])
    np.testing.assert_array_equal(out, [1, 4])
    lib.aclrtFree(dout2)
    assert lib.aclDestroyAclOpExecutor(ex[0]) == ACL_SUCCESS
    assert lib.aclDestroyAclOpExecutor(ex[0]) == lib.ACLNN_ERR_INNER_NULLPTR  # already gone
    for t in (src_t, out_t):
        lib.aclDestroyTensor(t)
    for p in (da, db, dout):
        lib.aclrtFree(p)


def test_a_view_outside_its_storage_is_rejected_not_read(stream):
    host = np.arange(4, dtype=np.int32)
    dev = _malloc_copy(host)
    dims, storage = ffi.new("int64_t[]", [4]), ffi.new("int64_t[]", [2])
    t = lib.aclCreateTensor(dims, 1, lib.ACL_INT32, ffi.NULL, 0, lib.ACL_FORMAT_ND, storage, 1, dev)
    out = _tensor([4], lib.ACL_INT32, _malloc_copy(np.zeros(4, np.int32)))
    ws, ex = ffi.new("uint64_t *"), ffi.new("aclOpExecutor **")
    assert lib.aclnnMoeComputeExpertTokensGetWorkspaceSize(t, 4, out, ws, ex) == lib.ACLNN_ERR_PARAM_INVALID
    assert "storage" in _message()
    lib.aclDestroyTensor(t)
    lib.aclDestroyTensor(out)
    lib.aclrtFree(dev)


def test_memory_not_from_aclrtmalloc_is_rejected_at_execution(stream):
    host = np.zeros(4, np.int32)  # host memory posing as device memory
    t = _tensor([4], lib.ACL_INT32, ffi.from_buffer(host))
    out_dev = _malloc_copy(np.zeros(2, np.int32))
    out = _tensor([2], lib.ACL_INT32, out_dev)
    ws, ex = ffi.new("uint64_t *"), ffi.new("aclOpExecutor **")
    assert lib.aclnnMoeComputeExpertTokensGetWorkspaceSize(t, 2, out, ws, ex) == ACL_SUCCESS
    assert lib.aclnnMoeComputeExpertTokens(ffi.NULL, ws[0], ex[0], stream) == lib.ACLNN_ERR_PARAM_INVALID
    assert "device memory" in _message()
    lib.aclDestroyTensor(t)
    lib.aclDestroyTensor(out)
    lib.aclrtFree(out_dev)


def test_runtime_errors_have_codes_and_messages():
    assert lib.aclrtSetDevice(12345) == lib.ACL_ERROR_RT_INVALID_DEVICEID
    msg = _message()
    assert "12345" in msg and "deviceId" in msg
    assert _message() == msg  # thread-local text kept, as CANN's runtime keeps it
    p = ffi.new("void **")
    assert lib.aclrtMalloc(p, 0, lib.ACL_MEM_MALLOC_HUGE_FIRST) == lib.ACL_ERROR_INVALID_PARAM
    assert lib.aclrtFree(ffi.cast("void *", 0x1000)) == lib.ACL_ERROR_INVALID_PARAM
    lib.aclrtSetDevice(0)
    assert lib.aclrtMalloc(p, 16, lib.ACL_MEM_MALLOC_HUGE_FIRST) == ACL_SUCCESS
    host = np.zeros(32, np.uint8)
    # more than the destination holds, or than the device block holds
    assert lib.aclrtMemcpy(p[0], 16, ffi.from_buffer(host), 32, lib.ACL_MEMCPY_HOST_TO_DEVICE) != ACL_SUCCESS
    assert lib.aclrtMemcpy(p[0], 64, ffi.from_buffer(host), 32, lib.ACL_MEMCPY_HOST_TO_DEVICE) != ACL_SUCCESS
    assert lib.aclrtMemcpy(p[0], 16, ffi.from_buffer(host), 16, lib.ACL_MEMCPY_HOST_TO_DEVICE) == ACL_SUCCESS
    assert lib.aclrtFree(p[0]) == ACL_SUCCESS
    assert lib.aclrtFree(p[0]) == lib.ACL_ERROR_INVALID_PARAM  # double free is an error, not a crash


def test_tensor_api_copies_and_queries():
    shape = [2, 3]
    dims = ffi.new("int64_t[]", shape)
    t = lib.aclCreateTensor(dims, 2, lib.ACL_BF16, ffi.NULL, 1, lib.ACL_FORMAT_ND, ffi.new("int64_t[]", [7]), 1,
                            ffi.NULL)
    dims[0] = 99  # the tensor keeps its own copy
    out, n = ffi.new("int64_t **"), ffi.new("uint64_t *")
    assert lib.aclGetViewShape(t, out, n) == ACL_SUCCESS and list(out[0][0:n[0]]) == shape
    _free(out[0])  # the shape queries' arrays come from malloc: a C caller free()s them
    assert lib.aclGetViewStrides(t, out, n) == ACL_SUCCESS and list(out[0][0:n[0]]) == [3, 1]  # NULL: contiguous
    _free(out[0])
    assert lib.aclGetStorageShape(t, out, n) == ACL_SUCCESS and list(out[0][0:n[0]]) == [7]
    _free(out[0])
    off, dt = ffi.new("int64_t *"), ffi.new("aclDataType *")
    assert lib.aclGetViewOffset(t, off) == ACL_SUCCESS and off[0] == 1
    assert lib.aclGetDataType(t, dt) == ACL_SUCCESS and dt[0] == lib.ACL_BF16
    assert lib.aclGetDataType(t, ffi.NULL) == lib.ACLNN_ERR_PARAM_NULLPTR
    assert lib.aclCreateTensor(ffi.NULL, 2, lib.ACL_FLOAT, ffi.NULL, 0, lib.ACL_FORMAT_ND, ffi.NULL, 0,
                               ffi.NULL) == ffi.NULL
    values = ffi.new("int64_t[]", [5, 6])
    arr = lib.aclCreateIntArray(values, 2)
    values[0] = 0
    size = ffi.new("uint64_t *")
    assert lib.aclGetIntArraySize(arr, size) == ACL_SUCCESS and size[0] == 2
    assert lib.aclDestroyIntArray(arr) == ACL_SUCCESS
    # a list owns its tensors: destroying it destroys them, so destroying one again is an error
    t2 = lib.aclCreateTensor(dims, 2, lib.ACL_FLOAT, ffi.NULL, 0, lib.ACL_FORMAT_ND, dims, 2, ffi.NULL)
    tl = lib.aclCreateTensorList(ffi.new("aclTensor *[]", [t, t2]), 2)
    assert lib.aclDestroyTensorList(tl) == ACL_SUCCESS
    assert lib.aclDestroyTensor(t2) == lib.ACLNN_ERR_PARAM_INVALID
    assert lib.aclDestroyTensor(ffi.NULL) == ACL_SUCCESS


def test_events_time_work_on_a_stream(stream):
    start, end = ffi.new("aclrtEvent *"), ffi.new("aclrtEvent *")
    assert lib.aclrtCreateEvent(start) == ACL_SUCCESS and lib.aclrtCreateEvent(end) == ACL_SUCCESS
    ms = ffi.new("float *")
    assert lib.aclrtEventElapsedTime(ms, start[0], end[0]) == lib.ACL_ERROR_INVALID_PARAM  # not recorded yet
    assert lib.aclrtRecordEvent(start[0], stream) == ACL_SUCCESS
    n = 1 << 22
    p = ffi.new("void **")
    lib.aclrtMalloc(p, n, lib.ACL_MEM_MALLOC_HUGE_FIRST)
    assert lib.aclrtMemsetAsync(p[0], n, 1, n, stream) == ACL_SUCCESS
    assert lib.aclrtRecordEvent(end[0], stream) == ACL_SUCCESS
    assert lib.aclrtSynchronizeEvent(end[0]) == ACL_SUCCESS
    assert lib.aclrtEventElapsedTime(ms, start[0], end[0]) == ACL_SUCCESS and ms[0] > 0
    lib.aclrtFree(p[0])
    for e in (start[0], end[0]):
        assert lib.aclrtDestroyEvent(e) == ACL_SUCCESS
    assert lib.aclrtDestroyStream(ffi.cast("aclrtStream", 0x10)) == lib.ACL_ERROR_INVALID_RESOURCE_HANDLE
