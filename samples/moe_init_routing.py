"""aclnnMoeInitRouting (V1) sample: samples/moe_init_routing.c line by line through aclnn_moe.capi (the shared steps
are in _aclnn_sample.py, the port of aclnn_sample.h).

3 tokens pick 2 experts each, expertIdx = [[1, 2], [0, 1], [0, 2]], rowIdx = [[0, 3], [1, 4], [2, 5]],
activeNum = 3: expandedExpertIdx = [0, 0, 1, 1, 2, 2], expandedX = rows of tokens 1, 2, 0, 1, 0, 2 and
expandedRowIdx = [2, 0, 1, 4, 3, 5]. Exits non-zero when a result differs.
"""
import sys

from _aclnn_sample import check_ret, copy_to_host, create_acl_tensor, finalize, init, log_print
from aclnn_moe.capi import ffi, lib

N = 3
K = 2
H = 4


def main():
    # 1. device and stream
    device_id = 0
    stream = ffi.new("aclrtStream *")
    ret = init(device_id, stream)
    check_ret(ret == 0, ret, "Init acl failed. ERROR: %d\n", ret)

    # 2. inputs and outputs
    x_host_data = ffi.new("float[]", [0.1, 0.1, 0.1, 0.1, 0.2, 0.2, 0.2, 0.2, 0.3, 0.3, 0.3, 0.3])
    expert_idx_host_data = ffi.new("int32_t[]", [1, 2, 0, 1, 0, 2])
    row_idx_host_data = ffi.new("int32_t[]", [0, 3, 1, 4, 2, 5])
    active_num = N
    expanded_x_out_host_data = ffi.new("float[]", N * K * H)
    expanded_row_idx_out_host_data = ffi.new("int32_t[]", N * K)
    expanded_expert_idx_out_host_data = ffi.new("int32_t[]", N * K)
    x_shape, idx_shape, expanded_x_shape, idx_out_shape = [N, H], [N, K], [N * K, H], [N * K]
    x_addr, row_idx_addr, expert_idx_addr = (ffi.new("void **") for _ in range(3))
    expanded_x_addr, expanded_row_idx_addr, expanded_expert_idx_addr = (ffi.new("void **") for _ in range(3))
    x, row_idx, expert_idx = (ffi.new("aclTensor **") for _ in range(3))
    expanded_x_out, expanded_row_idx_out, expanded_expert_idx_out = (ffi.new("aclTensor **") for _ in range(3))
    ret = create_acl_tensor(x_host_data, ffi.sizeof("float"), x_shape, 2, x_addr, lib.ACL_FLOAT, x)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(row_idx_host_data, ffi.sizeof("int32_t"), idx_shape, 2, row_idx_addr, lib.ACL_INT32,
                            row_idx)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(expert_idx_host_data, ffi.sizeof("int32_t"), idx_shape, 2, expert_idx_addr, lib.ACL_INT32,
                            expert_idx)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(expanded_x_out_host_data, ffi.sizeof("float"), expanded_x_shape, 2, expanded_x_addr,
                            lib.ACL_FLOAT, expanded_x_out)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(expanded_row_idx_out_host_data, ffi.sizeof("int32_t"), idx_out_shape, 1,
                            expanded_row_idx_addr, lib.ACL_INT32, expanded_row_idx_out)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(expanded_expert_idx_out_host_data, ffi.sizeof("int32_t"), idx_out_shape, 1,
                            expanded_expert_idx_addr, lib.ACL_INT32, expanded_expert_idx_out)
    check_ret(ret == lib.ACL_SUCCESS, ret)

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeInitRoutingGetWorkspaceSize(x[0], row_idx[0], expert_idx[0], active_num, expanded_x_out[0],
                                                  expanded_row_idx_out[0], expanded_expert_idx_out[0], workspace_size,
                                                  executor)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeInitRoutingGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        ret = lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret(ret == lib.ACL_SUCCESS, ret, "allocate workspace failed. ERROR: %d\n", ret)
    ret = lib.aclnnMoeInitRouting(workspace_addr[0], workspace_size[0], executor[0], stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeInitRouting failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())

    # 4. wait for the stream
    ret = lib.aclrtSynchronizeStream(stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtSynchronizeStream failed. ERROR: %d\n", ret)

    # 5. results back to the host, printed and checked
    expanded_x_data = ffi.new("float[]", N * K * H)
    expanded_row_idx_data, expanded_expert_idx_data = ffi.new("int32_t[]", N * K), ffi.new("int32_t[]", N * K)
    ret = copy_to_host(expanded_x_data, expanded_x_addr[0], ffi.sizeof(expanded_x_data))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = copy_to_host(expanded_row_idx_data, expanded_row_idx_addr[0], ffi.sizeof(expanded_row_idx_data))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = copy_to_host(expanded_expert_idx_data, expanded_expert_idx_addr[0], ffi.sizeof(expanded_expert_idx_data))
    check_ret(ret == lib.ACL_SUCCESS, ret)

    expected_row_idx = ffi.new("int32_t[]", [2, 0, 1, 4, 3, 5])
    expected_expert_idx = ffi.new("int32_t[]", [0, 0, 1, 1, 2, 2])
    expected_token = [1, 2, 0, 1, 0, 2]  # source token of each expanded row
    mismatches = 0
    for i in range(N * K * H):
        bad = expanded_x_data[i] != x_host_data[expected_token[i // H] * H + i % H]
        mismatches += bad
        log_print("expandedXData[%ld] is: %f%s\n", i, expanded_x_data[i], "   <-- MISMATCH" if bad else "")
    for i in range(N * K):
        bad = expanded_row_idx_data[i] != expected_row_idx[i]
        mismatches += bad
        log_print("expandedRowIdxData[%ld] is: %d%s\n", i, expanded_row_idx_data[i], "   <-- MISMATCH" if bad else "")
    for i in range(N * K):
        bad = expanded_expert_idx_data[i] != expected_expert_idx[i]
        mismatches += bad
        log_print("expandedExpertIdxData[%ld] is: %d%s\n", i, expanded_expert_idx_data[i],
                  "   <-- MISMATCH" if bad else "")

    # 6. release tensors
    lib.aclDestroyTensor(x[0])
    lib.aclDestroyTensor(row_idx[0])
    lib.aclDestroyTensor(expert_idx[0])
    lib.aclDestroyTensor(expanded_x_out[0])
    lib.aclDestroyTensor(expanded_row_idx_out[0])
    lib.aclDestroyTensor(expanded_expert_idx_out[0])

    # 7. release device memory, stream and device
    lib.aclrtFree(x_addr[0])
    lib.aclrtFree(row_idx_addr[0])
    lib.aclrtFree(expert_idx_addr[0])
    lib.aclrtFree(expanded_x_addr[0])
    lib.aclrtFree(expanded_row_idx_addr[0])
    lib.aclrtFree(expanded_expert_idx_addr[0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    finalize(device_id, stream[0])
    log_print("moe_init_routing: %s\n", "MISMATCH" if mismatches else "OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
