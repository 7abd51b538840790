"""The scaffolding the Python ports share: samples/aclnn_sample.h line by line through aclnn_moe.capi (the C API
1:1), with the helpers' names in snake_case: check_ret / log_print, init, create_acl_tensor, copy_to_host, finalize.

Out-parameters are cffi pointers, as in C: ``stream = ffi.new("aclrtStream *")``, ``addr = ffi.new("void **")``,
``tensor = ffi.new("aclTensor **")``; host data are cffi arrays (``ffi.new("float[]", [...])``), shapes are lists.
The leading underscore keeps tests/test_samples.py from taking this module for a sample.
"""
import sys

from aclnn_moe.capi import ffi, lib

ACLNN_SAMPLE_MAX_DIMS = 8


def _printf_arg(arg):
    """a char * (aclGetRecentErrMsg()) prints as its string, as printf's %s does"""
    if isinstance(arg, ffi.CData) and ffi.typeof(arg).kind == "pointer" and ffi.typeof(arg).item.cname == "char":
        return "(null)" if arg == ffi.NULL else ffi.string(arg).decode(errors="replace")
    return arg


def log_print(message, *args):
    """LOG_PRINT(message, ...): printf (Python's % takes the same %d / %ld / %f / %s)"""
    sys.stdout.write(message % tuple(_printf_arg(a) for a in args))


def check_ret(cond, ret, *message):
    """CHECK_RET(cond, LOG_PRINT(message...); return ret). A Python function cannot return from its caller, so this
    leaves the sample with exit code ret, the code main's `return ret` gives the C sample."""
    if not cond:
        if message:
            log_print(*message)
        sys.stdout.flush()
        sys.exit(ret)


def get_shape_size(shape, ndim):
    shape_size = 1
    for i in range(ndim):
        shape_size *= shape[i]
    return shape_size


def init(device_id, stream):
    """fixed pattern: initialise ACL, select the device, create a stream"""
    ret = lib.aclInit(ffi.NULL)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclInit failed. ERROR: %d\n", ret)
    ret = lib.aclrtSetDevice(device_id)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtSetDevice failed. ERROR: %d\n", ret)
    ret = lib.aclrtCreateStream(stream)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtCreateStream failed. ERROR: %d\n", ret)
    return 0


def create_acl_tensor(host_data, elem_size, shape, ndim, device_addr, data_type, tensor):
    """device copy of host_data (elem_size bytes per element, shape[0] * ... * shape[ndim - 1] elements) and a
    contiguous ND aclTensor of that shape over it"""
    check_ret(1 <= ndim <= ACLNN_SAMPLE_MAX_DIMS, -1, "unsupported ndim %d\n", ndim)
    size = get_shape_size(shape, ndim) * elem_size
    # aclrtMalloc: device memory
    ret = lib.aclrtMalloc(device_addr, size, lib.ACL_MEM_MALLOC_HUGE_FIRST)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtMalloc failed. ERROR: %d\n", ret)
    # aclrtMemcpy: host data to the device
    ret = lib.aclrtMemcpy(device_addr[0], size, host_data, size, lib.ACL_MEMCPY_HOST_TO_DEVICE)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtMemcpy failed. ERROR: %d\n", ret)
    # the strides of a contiguous tensor
    strides = ffi.new("int64_t[]", ACLNN_SAMPLE_MAX_DIMS)
    strides[ndim - 1] = 1
    for i in range(ndim - 1, 0, -1):
        strides[i - 1] = shape[i] * strides[i]
    # aclCreateTensor
    dims = ffi.new("int64_t[]", list(shape[:ndim]))
    tensor[0] = lib.aclCreateTensor(dims, ndim, data_type, strides, 0, lib.ACL_FORMAT_ND, dims, ndim, device_addr[0])
    check_ret(tensor[0] != ffi.NULL, -1, "aclCreateTensor failed.\n")
    return 0


def copy_to_host(host_data, device_addr, size):
    """a result back to the host: size bytes from device_addr to host_data"""
    ret = lib.aclrtMemcpy(host_data, size, device_addr, size, lib.ACL_MEMCPY_DEVICE_TO_HOST)
    check_ret(ret == lib.ACL_SUCCESS, ret, "copy result from device to host failed. ERROR: %d\n", ret)
    return 0


def finalize(device_id, stream):
    """fixed pattern: destroy the stream, reset the device, finalise ACL"""
    lib.aclrtDestroyStream(stream)
    lib.aclrtResetDevice(device_id)
    lib.aclFinalize()
