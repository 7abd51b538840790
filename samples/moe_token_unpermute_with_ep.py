"""Python port of moe_token_unpermute_with_ep.c, line by line through the raw C API (aclnn_moe.capi)."""
import sys

from aclnn_moe.capi import ffi, lib


def create_acl_tensor(host, ctype, shape, dtype):
    """device buffer + contiguous ND aclTensor over it; returns (device_addr, tensor)"""
    n = 1
    for s in shape:
        n *= s
    size = n * ffi.sizeof(ctype)
    dev = ffi.new("void **")
    ret = lib.aclrtMalloc(dev, size, lib.ACL_MEM_MALLOC_HUGE_FIRST)
    assert ret == lib.ACL_SUCCESS, f"aclrtMalloc failed. ERROR: {ret}"
    buf = ffi.new(f"{ctype}[]", host)
    ret = lib.aclrtMemcpy(dev[0], size, buf, size, lib.ACL_MEMCPY_HOST_TO_DEVICE)
    assert ret == lib.ACL_SUCCESS, f"aclrtMemcpy failed. ERROR: {ret}"
    strides = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        strides[i] = shape[i + 1] * strides[i + 1]
    dims = ffi.new("int64_t[]", shape)
    tensor = lib.aclCreateTensor(dims, len(shape), dtype, ffi.new("int64_t[]", strides), 0, lib.ACL_FORMAT_ND,
                                 dims, len(shape), dev[0])
    assert tensor != ffi.NULL
    return dev[0], tensor


def copy_back(dev, ctype, n):
    host = ffi.new(f"{ctype}[]", n)
    lib.aclrtMemcpy(host, n * ffi.sizeof(ctype), dev, n * ffi.sizeof(ctype), lib.ACL_MEMCPY_DEVICE_TO_HOST)
    return list(host)


def main():
    device_id = 0
    assert lib.aclInit(ffi.NULL) == lib.ACL_SUCCESS
    stream = ffi.new("aclrtStream *")
    assert lib.aclrtSetDevice(device_id) == lib.ACL_SUCCESS
    assert lib.aclrtCreateStream(stream) == lib.ACL_SUCCESS

    # rows 1..4 of the sorted order of indices [[1,2],[3,1],[2,3]] for tokens valued 1, 2, 3
    perm_dev, permuted = create_acl_tensor([2, 2, 1, 1, 3, 3, 2, 2], "float", [4, 2], lib.ACL_FLOAT)
    sorted_dev, sorted_t = create_acl_tensor([0, 2, 4, 1, 3, 5], "int32_t", [6], lib.ACL_INT32)
    probs_dev, probs = create_acl_tensor([0.5, 0.3, 0.4, 0.2, 0.5, 0.4], "float", [3, 2], lib.ACL_FLOAT)
    out_dev, out = create_acl_tensor([0] * 6, "float", [3, 2], lib.ACL_FLOAT)
    rng = lib.aclCreateIntArray(ffi.new("int64_t[]", [1, 5]), 2)
    num_topk = 2

    ws_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeTokenUnpermuteWithEpGetWorkspaceSize(permuted, sorted_t, probs, num_topk, rng, False, ffi.NULL,
                                                           out, ws_size, executor)
    assert ret == lib.ACL_SUCCESS, f"GetWorkspaceSize failed. ERROR: {ret} ({ffi.string(lib.aclGetRecentErrMsg())})"
    workspace = ffi.new("void **")
    if ws_size[0] > 0:
        assert lib.aclrtMalloc(workspace, ws_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST) == lib.ACL_SUCCESS
    ret = lib.aclnnMoeTokenUnpermuteWithEp(workspace[0], ws_size[0], executor[0], stream[0])
    assert ret == lib.ACL_SUCCESS, f"aclnnMoeTokenUnpermuteWithEp failed. ERROR: {ret}"
    assert lib.aclrtSynchronizeStream(stream[0]) == lib.ACL_SUCCESS

    result = copy_back(out_dev, "float", 6)
    want = [0.3, 1.2, 1.5]  # token 0: 1*0.3; token 1: 2*0.4 + 2*0.2; token 2: 3*0.5
    bad = False
    for t in range(3):
        print(f"out[{t}] = {result[t * 2]:.4f} {result[t * 2 + 1]:.4f}")
        bad |= any(abs(v - want[t]) > 1e-6 for v in result[t * 2:t * 2 + 2])

    for t in (permuted, sorted_t, probs, out):
        lib.aclDestroyTensor(t)
    lib.aclDestroyIntArray(rng)
    for d in (perm_dev, sorted_dev, probs_dev, out_dev):
        lib.aclrtFree(d)
    if ws_size[0] > 0:
        lib.aclrtFree(workspace[0])
    lib.aclrtDestroyStream(stream[0])
    lib.aclrtResetDevice(device_id)
    lib.aclFinalize()
    print("MISMATCH" if bad else "OK")
    return int(bad)


if __name__ == "__main__":
    sys.exit(main())
