"""Python port of moe_init_routing_v2.c, line by line through the raw C API (aclnn_moe.capi)."""
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
    idx_dev, expert_idx = create_acl_tensor([1, 2, 0, 1, 0, 2], "int32_t", [3, 2], lib.ACL_INT32)
    ex_dev, expanded_x = create_acl_tensor([0] * 16, "float", [4, 4], lib.ACL_FLOAT)
    row_dev, row_idx = create_acl_tensor([0] * 6, "int32_t", [6], lib.ACL_INT32)
    cnt_dev, count = create_acl_tensor([0] * 3, "int32_t", [3], lib.ACL_INT32)
    active_num, expert_capacity, expert_num, drop_pad_mode = 4, 0, 3, 0
    expert_tokens_count_or_cumsum_flag = 1  # 1: cumsum, 2: count
    expert_tokens_before_capacity_flag = False

    ws_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeInitRoutingV2GetWorkspaceSize(x, expert_idx, active_num, expert_capacity, expert_num,
                                                    drop_pad_mode, expert_tokens_count_or_cumsum_flag,
                                                    expert_tokens_before_capacity_flag, expanded_x, row_idx, count,
                                                    ffi.NULL, ws_size, executor)
    assert ret == lib.ACL_SUCCESS, f"GetWorkspaceSize failed. ERROR: {ret} ({ffi.string(lib.aclGetRecentErrMsg())})"
    workspace = ffi.new("void **")
    if ws_size[0] > 0:
        assert lib.aclrtMalloc(workspace, ws_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST) == lib.ACL_SUCCESS
    ret = lib.aclnnMoeInitRoutingV2(workspace[0], ws_size[0], executor[0], stream[0])
    assert ret == lib.ACL_SUCCESS, f"aclnnMoeInitRoutingV2 failed. ERROR: {ret}"
    assert lib.aclrtSynchronizeStream(stream[0]) == lib.ACL_SUCCESS

    rows = copy_back(ex_dev, "float", 16)
    rid = copy_back(row_dev, "int32_t", 6)
    cum = copy_back(cnt_dev, "int32_t", 3)
    want_rows = [0.2, 0.3, 0.1, 0.2]
    bad = rid != [2, 4, 0, 3, 1, 5] or cum != [2, 4, 6]
    for r in range(4):
        print(f"expandedX[{r}] =", " ".join(f"{v:.2f}" for v in rows[r * 4:r * 4 + 4]))
        bad |= any(abs(v - want_rows[r]) > 1e-7 for v in rows[r * 4:r * 4 + 4])
    print("expandedRowIdx =", rid)
    print("expertTokensCumsum =", cum)

    for t in (x, expert_idx, expanded_x, row_idx, count):
        lib.aclDestroyTensor(t)
    for d in (x_dev, idx_dev, ex_dev, row_dev, cnt_dev):
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
