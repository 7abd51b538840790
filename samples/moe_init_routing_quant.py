"""aclnnMoeInitRoutingQuant sample: samples/moe_init_routing_quant.c line by line through aclnn_moe.capi (the shared
steps are in _aclnn_sample.py, the port of aclnn_sample.h).

V1 routing with static int8 quantisation: expertIdx = [[1, 2], [0, 1], [3, 2]] with the k-major rowIdx
[[0, 3], [1, 4], [2, 5]] gives expandedExpertIdx = [0, 1, 1, 2, 2, 3], expandedRowIdx = [1, 0, 5, 3, 2, 4];
activeNum = 2 keeps 4 rows (tokens 1, 0, 1, 0), int8(rint(fp16(x) * fp16(20) + fp16(0.5))) in fp16 arithmetic.
Exits non-zero when a result differs.
"""
import sys

from _aclnn_sample import check_ret, copy_to_host, create_acl_tensor, finalize, init, log_print
from aclnn_moe.capi import ffi, lib

N = 3  # tokens
K = 2  # experts per token
H = 4  # hidden size
ACTIVE = 2
ROWS = ACTIVE * K


def main():
    # 1. device and stream
    device_id = 0
    stream = ffi.new("aclrtStream *")
    ret = init(device_id, stream)
    check_ret(ret == 0, ret, "Init acl failed. ERROR: %d\n", ret)

    # 2. inputs and outputs
    x_shape, idx_shape, expanded_x_shape, flat_shape = [N, H], [N, K], [ROWS, H], [N * K]
    x_host_data = ffi.new("float[]", [0.1, -0.2, 0.3, 0.9, 1.5, -1.1, 0.25, 0.05, -0.7, 0.6, 2.0, -3.0])
    row_idx_host_data = ffi.new("int32_t[]", [0, 3, 1, 4, 2, 5])
    expert_idx_host_data = ffi.new("int32_t[]", [1, 2, 0, 1, 3, 2])
    expanded_x_host_data = ffi.new("int8_t[]", ROWS * H)
    zeros = ffi.new("int32_t[]", N * K)
    active_num = ACTIVE
    scale, offset = 20.0, 0.5
    x_addr, row_idx_addr, expert_idx_addr, expanded_x_addr, expanded_row_idx_addr, expanded_expert_idx_addr = (
        ffi.new("void **") for _ in range(6))
    x, row_idx, expert_idx, expanded_x, expanded_row_idx, expanded_expert_idx = (ffi.new("aclTensor **")
                                                                                  for _ in range(6))
    ret = create_acl_tensor(x_host_data, ffi.sizeof("float"), x_shape, 2, x_addr, lib.ACL_FLOAT, x)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(row_idx_host_data, ffi.sizeof("int32_t"), idx_shape, 2, row_idx_addr, lib.ACL_INT32,
                            row_idx)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(expert_idx_host_data, ffi.sizeof("int32_t"), idx_shape, 2, expert_idx_addr, lib.ACL_INT32,
                            expert_idx)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(expanded_x_host_data, ffi.sizeof("int8_t"), expanded_x_shape, 2, expanded_x_addr,
                            lib.ACL_INT8, expanded_x)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(zeros, ffi.sizeof("int32_t"), flat_shape, 1, expanded_row_idx_addr, lib.ACL_INT32,
                            expanded_row_idx)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(zeros, ffi.sizeof("int32_t"), flat_shape, 1, expanded_expert_idx_addr, lib.ACL_INT32,
                            expanded_expert_idx)
    check_ret(ret == lib.ACL_SUCCESS, ret)

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeInitRoutingQuantGetWorkspaceSize(x[0], row_idx[0], expert_idx[0], active_num, scale, offset,
                                                       expanded_x[0], expanded_row_idx[0], expanded_expert_idx[0],
                                                       workspace_size, executor)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeInitRoutingQuantGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        ret = lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret(ret == lib.ACL_SUCCESS, ret, "allocate workspace failed. ERROR: %d\n", ret)
    ret = lib.aclnnMoeInitRoutingQuant(workspace_addr[0], workspace_size[0], executor[0], stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeInitRoutingQuant failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())

    # 4. wait for the stream
    ret = lib.aclrtSynchronizeStream(stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtSynchronizeStream failed. ERROR: %d\n", ret)

    # 5. results back to the host, printed and checked
    expanded_x_data = ffi.new("int8_t[]", ROWS * H)
    expanded_row_idx_data, expanded_expert_idx_data = ffi.new("int32_t[]", N * K), ffi.new("int32_t[]", N * K)
    for host, dev in ((expanded_x_data, expanded_x_addr), (expanded_row_idx_data, expanded_row_idx_addr),
                      (expanded_expert_idx_data, expanded_expert_idx_addr)):
        ret = copy_to_host(host, dev[0], ffi.sizeof(host))
        check_ret(ret == lib.ACL_SUCCESS, ret)

    expected_x = [30, -22, 6, 2, 2, -4, 6, 18] * 2
    expected_row_idx = [1, 0, 5, 3, 2, 4]
    expected_expert_idx = [0, 1, 1, 2, 2, 3]
    mismatches = 0
    for i in range(ROWS * H):
        bad = expanded_x_data[i] != expected_x[i]
        mismatches += bad
        log_print("expandedX[%ld] is: %d%s\n", i, expanded_x_data[i], "   <-- MISMATCH" if bad else "")
    for i in range(N * K):
        bad = expanded_row_idx_data[i] != expected_row_idx[i]
        mismatches += bad
        log_print("expandedRowIdx[%ld] is: %d%s\n", i, expanded_row_idx_data[i], "   <-- MISMATCH" if bad else "")
    for i in range(N * K):
        bad = expanded_expert_idx_data[i] != expected_expert_idx[i]
        mismatches += bad
        log_print("expandedExpertIdx[%ld] is: %d%s\n", i, expanded_expert_idx_data[i],
                  "   <-- MISMATCH" if bad else "")

    # 6. release tensors
    for t in (x, row_idx, expert_idx, expanded_x, expanded_row_idx, expanded_expert_idx):
        lib.aclDestroyTensor(t[0])

    # 7. release device memory, stream and device
    for a in (x_addr, row_idx_addr, expert_idx_addr, expanded_x_addr, expanded_row_idx_addr,
              expanded_expert_idx_addr):
        lib.aclrtFree(a[0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    finalize(device_id, stream[0])
    log_print("moe_init_routing_quant: %s\n", "MISMATCH" if mismatches else "OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
