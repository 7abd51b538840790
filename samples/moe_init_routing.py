"""aclnnMoeInitRouting (V1) sample: a line-by-line port of samples/moe_init_routing.c through aclnn_moe.capi.

3 tokens pick 2 experts each, expertIdx = [[1, 2], [0, 1], [0, 2]], rowIdx = [[0, 3], [1, 4], [2, 5]],
activeNum = 3: expandedExpertIdx = [0, 0, 1, 1, 2, 2], expandedX = rows of tokens 1, 2, 0, 1, 0, 2 and
expandedRowIdx = [2, 0, 1, 4, 3, 5]. Exits non-zero when a result differs.
"""
import sys

from aclnn_moe.capi import ffi, lib

N = 3
K = 2
H = 4


def check_ret(ret, what):
    if ret != lib.ACL_SUCCESS:
        print(f"{what} failed. ERROR: {ret} ({ffi.string(lib.aclGetRecentErrMsg()).decode()})")
        sys.exit(ret)


def init(device_id):
    # fixed pattern: initialise ACL, select the device, create a stream (returned as an aclrtStream *)
    check_ret(lib.aclInit(ffi.NULL), "aclInit")
    check_ret(lib.aclrtSetDevice(device_id), "aclrtSetDevice")
    stream = ffi.new("aclrtStream *")
    check_ret(lib.aclrtCreateStream(stream), "aclrtCreateStream")
    return stream


def create_acl_tensor(host_data, shape, data_type, device_addr, tensor):
    """device copy of a host array and a contiguous ND tensor of the given shape over it"""
    size = ffi.sizeof(host_data)
    check_ret(lib.aclrtMalloc(device_addr, size, lib.ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc")
    check_ret(lib.aclrtMemcpy(device_addr[0], size, host_data, size, lib.ACL_MEMCPY_HOST_TO_DEVICE), "aclrtMemcpy")
    strides = [shape[1], 1] if len(shape) == 2 else [1]
    dims = ffi.new("int64_t[]", shape)
    tensor[0] = lib.aclCreateTensor(dims, len(shape), data_type, ffi.new("int64_t[]", strides), 0,
                                    lib.ACL_FORMAT_ND, dims, len(shape), device_addr[0])
    if tensor[0] == ffi.NULL:
        print("aclCreateTensor failed.")
        sys.exit(1)


def main():
    # 1. device and stream
    device_id = 0
    stream = init(device_id)

    # 2. inputs and outputs
    x_host_data = ffi.new("float[]", [0.1] * 4 + [0.2] * 4 + [0.3] * 4)
    expert_idx_host_data = ffi.new("int32_t[]", [1, 2, 0, 1, 0, 2])
    row_idx_host_data = ffi.new("int32_t[]", [0, 3, 1, 4, 2, 5])
    active_num = N
    expanded_x_out_host_data = ffi.new("float[]", N * K * H)
    expanded_row_idx_out_host_data = ffi.new("int32_t[]", N * K)
    expanded_expert_idx_out_host_data = ffi.new("int32_t[]", N * K)
    names = ("x", "row_idx", "expert_idx", "expanded_x", "expanded_row_idx", "expanded_expert_idx")
    addrs = {name: ffi.new("void **") for name in names}
    tensors = {name: ffi.new("aclTensor **") for name in names}
    create_acl_tensor(x_host_data, [N, H], lib.ACL_FLOAT, addrs["x"], tensors["x"])
    create_acl_tensor(row_idx_host_data, [N, K], lib.ACL_INT32, addrs["row_idx"], tensors["row_idx"])
    create_acl_tensor(expert_idx_host_data, [N, K], lib.ACL_INT32, addrs["expert_idx"], tensors["expert_idx"])
    create_acl_tensor(expanded_x_out_host_data, [N * K, H], lib.ACL_FLOAT, addrs["expanded_x"],
                      tensors["expanded_x"])
    create_acl_tensor(expanded_row_idx_out_host_data, [N * K], lib.ACL_INT32, addrs["expanded_row_idx"],
                      tensors["expanded_row_idx"])
    create_acl_tensor(expanded_expert_idx_out_host_data, [N * K], lib.ACL_INT32, addrs["expanded_expert_idx"],
                      tensors["expanded_expert_idx"])

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    t = tensors
    check_ret(lib.aclnnMoeInitRoutingGetWorkspaceSize(t["x"][0], t["row_idx"][0], t["expert_idx"][0], active_num,
                                                      t["expanded_x"][0], t["expanded_row_idx"][0],
                                                      t["expanded_expert_idx"][0], workspace_size, executor),
              "aclnnMoeInitRoutingGetWorkspaceSize")
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        check_ret(lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST),
                  "allocate workspace")
    check_ret(lib.aclnnMoeInitRouting(workspace_addr[0], workspace_size[0], executor[0], stream[0]),
              "aclnnMoeInitRouting")

    # 4. wait for the stream
    check_ret(lib.aclrtSynchronizeStream(stream[0]), "aclrtSynchronizeStream")

    # 5. results back to the host, printed and checked
    expanded_x_data = ffi.new("float[]", N * K * H)
    expanded_row_idx_data = ffi.new("int32_t[]", N * K)
    expanded_expert_idx_data = ffi.new("int32_t[]", N * K)
    for dst, name in ((expanded_x_data, "expanded_x"), (expanded_row_idx_data, "expanded_row_idx"),
                      (expanded_expert_idx_data, "expanded_expert_idx")):
        n = ffi.sizeof(dst)
        check_ret(lib.aclrtMemcpy(dst, n, addrs[name][0], n, lib.ACL_MEMCPY_DEVICE_TO_HOST), "copy result")
    expected_row_idx = [2, 0, 1, 4, 3, 5]
    expected_expert_idx = [0, 0, 1, 1, 2, 2]
    expected_token = [1, 2, 0, 1, 0, 2]  # source token of each expanded row
    mismatches = 0
    for i in range(N * K * H):
        bad = expanded_x_data[i] != x_host_data[expected_token[i // H] * H + i % H]
        mismatches += bad
        print(f"expandedXData[{i}] is: {expanded_x_data[i]:f}{'   <-- MISMATCH' if bad else ''}")
    for i in range(N * K):
        bad = expanded_row_idx_data[i] != expected_row_idx[i]
        mismatches += bad
        print(f"expandedRowIdxData[{i}] is: {expanded_row_idx_data[i]}{'   <-- MISMATCH' if bad else ''}")
    for i in range(N * K):
        bad = expanded_expert_idx_data[i] != expected_expert_idx[i]
        mismatches += bad
        print(f"expandedExpertIdxData[{i}] is: {expanded_expert_idx_data[i]}{'   <-- MISMATCH' if bad else ''}")

    # 6. release tensors
    for name in names:
        lib.aclDestroyTensor(tensors[name][0])

    # 7. release device memory, stream and device
    for name in names:
        lib.aclrtFree(addrs[name][0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    lib.aclrtDestroyStream(stream[0])
    lib.aclrtResetDevice(device_id)
    lib.aclFinalize()
    print("moe_init_routing: FAILED" if mismatches else "moe_init_routing: OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
