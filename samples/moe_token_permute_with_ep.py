"""Python port of moe_token_permute_with_ep.c, line by line through the raw C API (aclnn_moe.capi)."""
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

    x_dev, x = create_acl_tensor([0.1] * 4 + [0.2] * 4 + [0.3] * 4, "float", [3, 4], lib.ACL_FLOAT)
    idx_dev, indices = create_acl_tensor([1, 2, 3, 1, 2, 3], "int32_t", [3, 2], lib.ACL_INT32)
    probs_dev, probs = create_acl_tensor([0.5, 0.3, 0.4, 0.2, 0.5, 0.4], "float", [3, 2], lib.ACL_FLOAT)
    out_dev, out = create_acl_tensor([0] * 16, "float", [4, 4], lib.ACL_FLOAT)
    sorted_dev, sorted_t = create_acl_tensor([0] * 6, "int32_t", [6], lib.ACL_INT32)
    probs_out_dev, probs_out = create_acl_tensor([0] * 4, "float", [4], lib.ACL_FLOAT)
    rng = lib.aclCreateIntArray(ffi.new("int64_t[]", [1, 5]), 2)  # this rank keeps sorted rows [1, 5)

    ws_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeTokenPermuteWithEpGetWorkspaceSize(x, indices, probs, rng, 0, False, out, sorted_t, probs_out,
                                                         ws_size, executor)
    assert ret == lib.ACL_SUCCESS, f"GetWorkspaceSize failed. ERROR: {ret} ({ffi.string(lib.aclGetRecentErrMsg())})"
    workspace = ffi.new("void **")
    if ws_size[0] > 0:
        assert lib.aclrtMalloc(workspace, ws_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST) == lib.ACL_SUCCESS
    ret = lib.aclnnMoeTokenPermuteWithEp(workspace[0], ws_size[0], executor[0], stream[0])
    assert ret == lib.ACL_SUCCESS, f"aclnnMoeTokenPermuteWithEp failed. ERROR: {ret}"
    assert lib.aclrtSynchronizeStream(stream[0]) == lib.ACL_SUCCESS

    rows = copy_back(out_dev, "float", 16)
    sorted_idx = copy_back(sorted_dev, "int32_t", 6)
    probs_host = copy_back(probs_out_dev, "float", 4)
    want_rows, want_probs = [0.2, 0.1, 0.3, 0.2], [0.2, 0.3, 0.5, 0.4]
    bad = sorted_idx != [0, 2, 4, 1, 3, 5]
    print("sortedIndices =", sorted_idx)
    for r in range(4):
        print(f"permuteTokens[{r}] =", " ".join(f"{v:.2f}" for v in rows[r * 4:r * 4 + 4]), f" permuteProbs[{r}] = {probs_host[r]:.2f}")
        bad |= any(abs(v - want_rows[r]) > 1e-7 for v in rows[r * 4:r * 4 + 4])
        bad |= abs(probs_host[r] - want_probs[r]) > 1e-7

    for t in (x, indices, probs, out, sorted_t, probs_out):
        lib.aclDestroyTensor(t)
    lib.aclDestroyIntArray(rng)
    for d in (x_dev, idx_dev, probs_dev, out_dev, sorted_dev, probs_out_dev):
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
