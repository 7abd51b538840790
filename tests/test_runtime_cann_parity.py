"""Host runtime behaviours checked against CANN's open runtime / nnopbase code (spec/host-vs-cann.md), and the
host's own documented checks where it is stricter, through the raw C API as a C program would call it."""
from __future__ import annotations

import numpy as np
import pytest

from aclnn_moe.capi import ffi, lib

OK = 0


@pytest.fixture
def stream():
    assert lib.aclInit(ffi.NULL) in (OK, lib.ACL_ERROR_REPEAT_INITIALIZE)
    assert lib.aclrtSetDevice(0) == OK
    s = ffi.new("aclrtStream *")
    assert lib.aclrtCreateStream(s) == OK
    yield s[0]
    assert lib.aclrtDestroyStream(s[0]) == OK


class Dev:
    """an aclrtMalloc block holding a copy of a numpy array"""

    def __init__(self, host: np.ndarray):
        self.host = host
        p = ffi.new("void **")
        assert lib.aclrtMalloc(p, max(host.nbytes, 1), lib.ACL_MEM_MALLOC_HUGE_FIRST) == OK
        self.ptr = p[0]
        if host.nbytes:
            assert lib.aclrtMemcpy(self.ptr, host.nbytes, ffi.from_buffer(host), host.nbytes,
                                   lib.ACL_MEMCPY_HOST_TO_DEVICE) == OK

    def read(self):
        out = np.empty_like(self.host)
        assert lib.aclrtMemcpy(ffi.from_buffer(out), out.nbytes, self.ptr, out.nbytes,
                               lib.ACL_MEMCPY_DEVICE_TO_HOST) == OK
        return out

    def free(self):
        assert lib.aclrtFree(self.ptr) == OK


def tensor(shape, dtype, addr, strides=None, offset=0, storage=None):
    dims = ffi.new("int64_t[]", list(shape) or [0])
    st = ffi.new("int64_t[]", list(strides)) if strides is not None else ffi.NULL
    storage = list(shape) if storage is None else storage
    sd = ffi.new("int64_t[]", storage or [0])
    return lib.aclCreateTensor(dims, len(shape), dtype, st, offset, lib.ACL_FORMAT_ND, sd, len(storage), addr)


def message():
    p = lib.aclGetRecentErrMsg()
    return ffi.string(p).decode() if p != ffi.NULL else ""


def cet_plan(src_t, out_t, experts):
    ws, ex = ffi.new("uint64_t *"), ffi.new("aclOpExecutor **")
    assert lib.aclnnMoeComputeExpertTokensGetWorkspaceSize(src_t, experts, out_t, ws, ex) == OK
    return ws[0], ex[0]


@pytest.fixture
def cet(stream):
    """a ComputeExpertTokens problem: device input and output, their descriptors"""
    src, out = Dev(np.array([0, 1, 1, 2], np.int32)), Dev(np.zeros(3, np.int32))
    src_t, out_t = tensor([4], lib.ACL_INT32, src.ptr), tensor([3], lib.ACL_INT32, out.ptr)
    yield src, out, src_t, out_t
    for t in (src_t, out_t):
        lib.aclDestroyTensor(t)
    src.free()
    out.free()


# ---------------------------------------------------------------- rows of spec/host-vs-cann.md

def test_set_input_tensor_addr_with_a_null_tensor_is_561103(cet, stream):
    src, _, src_t, out_t = cet
    ws, ex = cet_plan(src_t, out_t, 3)
    assert lib.aclSetAclOpExecutorRepeatable(ex) == OK
    assert lib.aclSetInputTensorAddr(ex, 0, ffi.NULL, src.ptr) == lib.ACLNN_ERR_INNER_NULLPTR
    assert lib.aclSetOutputTensorAddr(ex, 0, ffi.NULL, src.ptr) == lib.ACLNN_ERR_INNER_NULLPTR
    assert "tensor" in message()
    # the tensor is checked before the executor, as CANN does
    assert lib.aclSetInputTensorAddr(ffi.NULL, 0, ffi.NULL, src.ptr) == lib.ACLNN_ERR_INNER_NULLPTR
    assert lib.aclDestroyAclOpExecutor(ex) == OK


def test_destroying_a_non_repeatable_executor_deletes_it(cet, stream):
    _, _, src_t, out_t = cet
    ws, ex = cet_plan(src_t, out_t, 3)
    assert lib.aclDestroyAclOpExecutor(ex) == OK
    # it is gone: its phase 2 and a second destroy see a dead handle
    assert lib.aclnnMoeComputeExpertTokens(ffi.NULL, 0, ex, stream) == lib.ACLNN_ERR_INNER_NULLPTR
    assert lib.aclDestroyAclOpExecutor(ex) == lib.ACLNN_ERR_INNER_NULLPTR


def test_a_null_workspace_with_a_size_is_161001_even_when_none_is_needed(cet, stream):
    _, out, src_t, out_t = cet
    ws, ex = cet_plan(src_t, out_t, 3)
    assert ws == 0  # the operator needs no workspace here
    assert lib.aclnnMoeComputeExpertTokens(ffi.NULL, 64, ex, stream) == lib.ACLNN_ERR_PARAM_NULLPTR
    assert "workspace" in message()
    # the non-repeatable executor is consumed by the failed phase 2 (CANN deletes it too)
    assert lib.aclnnMoeComputeExpertTokens(ffi.NULL, 0, ex, stream) == lib.ACLNN_ERR_INNER_NULLPTR
    # with size 0 it runs
    ws, ex = cet_plan(src_t, out_t, 3)
    assert lib.aclnnMoeComputeExpertTokens(ffi.NULL, 0, ex, stream) == OK
    np.testing.assert_array_equal(out.read(), [1, 3, 4])


@pytest.mark.parametrize("kind", [6, 7, 8, -1])
def test_memcpy_kinds_cann_does_not_translate_are_100000(stream, kind):
    a = Dev(np.arange(4, dtype=np.int32))
    b = Dev(np.zeros(4, np.int32))
    assert lib.aclrtMemcpy(b.ptr, 16, a.ptr, 16, ffi.cast("aclrtMemcpyKind", kind)) == lib.ACL_ERROR_INVALID_PARAM
    assert "kind" in message()
    assert lib.aclrtMemcpy(b.ptr, 16, a.ptr, 16, lib.ACL_MEMCPY_DEVICE_TO_DEVICE) == OK
    np.testing.assert_array_equal(b.read(), [0, 1, 2, 3])
    a.free()
    b.free()


def test_recent_error_message_is_kept_per_thread_newest_first():
    assert lib.aclrtSetDevice(4242) == lib.ACL_ERROR_RT_INVALID_DEVICEID
    first = message()
    assert "4242" in first
    assert message() == first  # read twice: the same text (CANN's thread_local string is never cleared)
    assert lib.aclrtSetDevice(0) == OK
    assert message() == first  # a success does not clear it
    assert lib.aclrtSetDevice(4343) == lib.ACL_ERROR_RT_INVALID_DEVICEID
    text = message()
    lines = text.split("\n")
    # the new error is put in front of the older text (whose oldest lines may drop out at the size cap)
    assert "4343" in lines[0] and lines[1:] == first.split("\n")[:len(lines) - 1] and len(lines) > 1

    import threading
    seen = []
    t = threading.Thread(target=lambda: seen.append(message()))
    t.start()
    t.join()
    assert seen == [""]  # another thread has its own (empty) text


def test_recent_error_message_stays_bounded():
    for i in range(200):
        assert lib.aclrtSetDevice(10000 + i) == lib.ACL_ERROR_RT_INVALID_DEVICEID
        text = message()
    assert "10199" in text.split("\n")[0]
    assert len(text) <= 4096 and "10000" not in text  # the oldest lines are dropped


# ---------------------------------------------------------------- "stricter" rows: decided per row

def test_rebinding_a_non_repeatable_executor_is_accepted_as_cann_does(cet, stream):
    # CANN returns 0 (acl_op_api.cpp); the host used to refuse. Rebinding before phase 2 is well defined.
    src, out, src_t, out_t = cet
    other = Dev(np.array([2, 2, 2, 2], np.int32))
    ws, ex = cet_plan(src_t, out_t, 3)
    assert lib.aclSetInputTensorAddr(ex, 0, src_t, other.ptr) == OK
    assert lib.aclnnMoeComputeExpertTokens(ffi.NULL, 0, ex, stream) == OK
    np.testing.assert_array_equal(out.read(), [0, 0, 4])
    other.free()


def test_rebinding_an_index_out_of_range_stays_an_error(cet, stream):
    # Kept as a documented host check (161002, as CANN documents for index errors): the host's executors own
    # descriptor copies located by the index, so an index naming no tensor cannot rebind anything.
    src, _, src_t, out_t = cet
    ws, ex = cet_plan(src_t, out_t, 3)
    assert lib.aclSetInputTensorAddr(ex, 1, src_t, src.ptr) == lib.ACLNN_ERR_PARAM_INVALID
    assert lib.aclSetOutputTensorAddr(ex, 7, out_t, src.ptr) == lib.ACLNN_ERR_PARAM_INVALID
    assert "index" in message()
    assert lib.aclDestroyAclOpExecutor(ex) == OK


# ---------------------------------------------------------------- issue 12 classes, from Python too

def test_outputs_aliasing_inputs_are_rejected_naming_both_parameters(stream):
    src = Dev(np.array([0, 1, 1, 2], np.int32))
    src_t = tensor([4], lib.ACL_INT32, src.ptr)
    out_t = tensor([3], lib.ACL_INT32, src.ptr)  # writes over its own input
    ws, ex = cet_plan(src_t, out_t, 3)
    assert lib.aclnnMoeComputeExpertTokens(ffi.NULL, 0, ex, stream) == lib.ACLNN_ERR_PARAM_INVALID
    msg = message().split("\n")[0]
    assert "sortedExperts" in msg and "out" in msg and "overlap" in msg
    np.testing.assert_array_equal(src.read(), [0, 1, 1, 2])  # untouched
    lib.aclDestroyTensor(src_t)
    lib.aclDestroyTensor(out_t)
    src.free()


def test_misaligned_addresses_are_rejected(cet, stream):
    src, _, src_t, out_t = cet
    bad = ffi.cast("char *", src.ptr) + 1
    assert tensor([3], lib.ACL_INT32, bad) == ffi.NULL
    assert "aligned" in message()
    assert lib.aclSetRawTensorAddr(src_t, bad) == lib.ACLNN_ERR_PARAM_INVALID
    ws, ex = cet_plan(src_t, out_t, 3)
    assert lib.aclSetInputTensorAddr(ex, 0, src_t, bad) == lib.ACLNN_ERR_PARAM_INVALID
    assert lib.aclDestroyAclOpExecutor(ex) == OK
    # a one-byte dtype may start anywhere
    u8 = tensor([3], lib.ACL_UINT8, bad)
    assert u8 != ffi.NULL
    lib.aclDestroyTensor(u8)


def test_descriptor_arithmetic_never_wraps():
    big = 1 << 62
    assert tensor([big, 4], lib.ACL_INT32, ffi.NULL) == ffi.NULL  # contiguous strides pass INT64_MAX
    assert "overflow" in message()
    assert tensor([3, 2], lib.ACL_INT32, ffi.NULL, strides=[big, 1], storage=[8]) == ffi.NULL  # extent wraps
    assert tensor([1 << 61], lib.ACL_FLOAT, ffi.NULL) == ffi.NULL  # 2^63 bytes
    assert tensor([4], lib.ACL_FLOAT, ffi.NULL, storage=[big]) == ffi.NULL  # storage bytes
    t = tensor([0, big], lib.ACL_FLOAT, ffi.NULL, strides=[big, big])  # empty: touches nothing
    assert t != ffi.NULL
    lib.aclDestroyTensor(t)


def test_null_lists_and_arrays_with_a_size_are_null_with_a_message():
    for make in (lambda: lib.aclCreateTensorList(ffi.NULL, 3), lambda: lib.aclCreateScalarList(ffi.NULL, 2),
                 lambda: lib.aclCreateIntArray(ffi.NULL, 2), lambda: lib.aclCreateFloatArray(ffi.NULL, 2),
                 lambda: lib.aclCreateBoolArray(ffi.NULL, 2)):
        assert make() == ffi.NULL
        assert "NULL" in message().split("\n")[0]
    empty = lib.aclCreateTensorList(ffi.NULL, 0)
    assert empty != ffi.NULL and lib.aclDestroyTensorList(empty) == OK


def test_a_handle_of_another_type_is_an_error_not_a_misread():
    arr = lib.aclCreateIntArray(ffi.new("int64_t[]", [1, 2]), 2)
    scalar = lib.aclCreateScalar(ffi.new("float *", 1.0), lib.ACL_FLOAT)
    size = ffi.new("uint64_t *")
    assert lib.aclGetFloatArraySize(ffi.cast("aclFloatArray *", arr), size) == lib.ACLNN_ERR_PARAM_INVALID
    assert lib.aclDestroyIntArray(ffi.cast("aclIntArray *", scalar)) == lib.ACLNN_ERR_PARAM_INVALID
    assert lib.aclDestroyTensorList(ffi.cast("aclTensorList *", arr)) == lib.ACLNN_ERR_PARAM_INVALID
    assert lib.aclGetIntArraySize(arr, size) == OK and size[0] == 2
    assert lib.aclDestroyIntArray(arr) == OK and lib.aclDestroyScalar(scalar) == OK


def test_phase_two_uses_only_the_workspace_phase_one_computed(stream):
    # a workspaceSize larger than the block must not let the kernel write past the block: it is given phase 1's
    # size; and a block smaller than phase 1's size is rejected
    rows = 1 << 16
    src = Dev(np.sort(np.random.default_rng(0).integers(0, 8, rows)).astype(np.int32))
    out = Dev(np.zeros(8, np.int32))
    src_t, out_t = tensor([rows], lib.ACL_INT32, src.ptr), tensor([8], lib.ACL_INT32, out.ptr)
    ws, ex = cet_plan(src_t, out_t, 8)
    if ws == 0:
        pytest.skip("this build's kernel needs no workspace at this size")
    small = Dev(np.zeros(max(ws // 2, 1), np.uint8))
    assert lib.aclnnMoeComputeExpertTokens(small.ptr, ws, ex, stream) == lib.ACLNN_ERR_PARAM_INVALID
    assert "workspace" in message()
    exact = Dev(np.zeros(ws, np.uint8))
    ws2, ex = cet_plan(src_t, out_t, 8)
    assert lib.aclnnMoeComputeExpertTokens(exact.ptr, ws2 * 1000, ex, stream) == OK
    want = np.cumsum(np.bincount(src.host, minlength=8))
    np.testing.assert_array_equal(out.read(), want)
    for d in (src, out, small, exact):
        d.free()
    lib.aclDestroyTensor(src_t)
    lib.aclDestroyTensor(out_t)


# ---------------------------------------------------------------- host memory registration, aclrtMalloc

def test_registered_host_memory_is_device_memory_until_unregistered(stream):
    host = np.array([0, 0, 1, 3], np.int32)
    result = np.zeros(4, np.int32)
    dev = ffi.new("void **")
    assert lib.aclrtHostRegister(ffi.from_buffer(host), host.nbytes, lib.ACL_HOST_REGISTER_MAPPED, dev) == OK
    assert int(ffi.cast("uintptr_t", dev[0])) == int(ffi.cast("uintptr_t", ffi.from_buffer(host)))
    rdev = ffi.new("void **")
    assert lib.aclrtHostRegister(ffi.from_buffer(result), result.nbytes, 0, rdev) == OK
    src_t, out_t = tensor([4], lib.ACL_INT32, dev[0]), tensor([4], lib.ACL_INT32, rdev[0])
    ws, ex = cet_plan(src_t, out_t, 4)
    assert lib.aclnnMoeComputeExpertTokens(ffi.NULL, 0, ex, stream) == OK
    np.testing.assert_array_equal(result, [2, 3, 3, 4])  # written in place, nothing copied
    # errors: double / overlapping registration, unknown type, a range that is not registered
    assert lib.aclrtHostRegister(ffi.from_buffer(host), 4, 0, dev) == lib.ACL_ERROR_HOST_MEMORY_ALREADY_REGISTERED
    inner = ffi.cast("char *", ffi.from_buffer(host)) + 4
    assert lib.aclrtHostRegister(inner, 4, 0, dev) == lib.ACL_ERROR_HOST_MEMORY_ALREADY_REGISTERED
    assert "overlaps" in message()
    assert lib.aclrtHostRegister(ffi.from_buffer(host), 4, ffi.cast("aclrtHostRegisterType", 4), dev) == \
        lib.ACL_ERROR_INVALID_PARAM
    assert lib.aclrtHostRegister(ffi.NULL, 4, 0, dev) == lib.ACL_ERROR_INVALID_PARAM
    assert lib.aclrtHostUnregister(inner) == lib.ACL_ERROR_HOST_MEMORY_NOT_REGISTERED
    assert lib.aclrtFree(dev[0]) == lib.ACL_ERROR_INVALID_PARAM  # not aclrtMalloc memory
    assert "aclrtHostUnregister" in message()
    assert lib.aclrtHostUnregister(dev[0]) == OK and lib.aclrtHostUnregister(rdev[0]) == OK
    assert lib.aclrtHostUnregister(dev[0]) == lib.ACL_ERROR_HOST_MEMORY_NOT_REGISTERED
    # unregistered: no longer device memory
    ws, ex = cet_plan(src_t, out_t, 4)
    assert lib.aclnnMoeComputeExpertTokens(ffi.NULL, 0, ex, stream) == lib.ACLNN_ERR_PARAM_INVALID
    assert "device memory" in message()
    lib.aclDestroyTensor(src_t)
    lib.aclDestroyTensor(out_t)


def test_registering_inside_an_aclrtmalloc_block_is_refused(stream):
    d = Dev(np.zeros(64, np.uint8))
    dev = ffi.new("void **")
    assert lib.aclrtHostRegister(ffi.cast("char *", d.ptr) + 8, 8, 0, dev) == lib.ACL_ERROR_HOST_MEMORY_ALREADY_REGISTERED
    d.free()


@pytest.mark.parametrize("policy", ["ACL_MEM_MALLOC_HUGE_FIRST", "ACL_MEM_MALLOC_NORMAL_ONLY",
                                    "ACL_MEM_MALLOC_HUGE_ONLY"])
def test_large_blocks_are_pooled_and_range_checks_stay_exact(stream, policy):
    n = (77 << 20) + 12  # a size no other test uses, so the pool's best fit is the mapping freed here
    p = ffi.new("void **")
    assert lib.aclrtMalloc(p, n, getattr(lib, policy)) == OK
    first = int(ffi.cast("uintptr_t", p[0]))
    assert first % 64 == 0
    assert lib.aclrtMemset(p[0], n, 7, n) == OK
    assert lib.aclrtMemset(p[0], n + 1, 7, n + 1) == lib.ACL_ERROR_INVALID_PARAM  # exactly n bytes are device
    assert lib.aclrtFree(p[0]) == OK
    assert lib.aclrtMemset(p[0], 16, 0, 16) == lib.ACL_ERROR_INVALID_PARAM  # freed (pooled) is not device memory
    assert lib.aclrtMalloc(p, n - 100, getattr(lib, policy)) == OK  # about the same size: the pooled mapping
    assert int(ffi.cast("uintptr_t", p[0])) == first
    assert lib.aclrtMemset(p[0], n - 100, 0, n - 99) != OK
    assert lib.aclrtFree(p[0]) == OK
