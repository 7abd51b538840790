"""aclnnMoeInitRoutingV2 sample in dropless mode: samples/moe_init_routing_v2.c line by line through aclnn_moe.capi
(the shared steps are in _aclnn_sample.py, the port of aclnn_sample.h).

3 tokens of hidden size 4 pick 2 of 3 experts each, expertIdx = [[1, 2], [0, 1], [0, 2]], activeNum = 4: the first
4 expert-sorted rows are gathered (tokens 1, 2, 0, 1), expandedRowIdx = [2, 4, 0, 3, 1, 5] and the per-expert
cumulative counts are [2, 4, 6]. Exits non-zero when a result differs.
"""
import sys

from _aclnn_sample import check_ret, copy_to_host, create_acl_tensor, finalize, init, log_print
from aclnn_moe.capi import ffi, lib

N = 3  # tokens
K = 2  # experts per token
H = 4  # hidden size
E = 3  # experts
ACTIVE = 4


def main():
    # 1. device and stream
    device_id = 0
    stream = ffi.new("aclrtStream *")
    ret = init(device_id, stream)
    check_ret(ret == 0, ret, "Init acl failed. ERROR: %d\n", ret)

    # 2. inputs and outputs
    x_shape, idx_shape, expanded_x_shape = [N, H], [N, K], [ACTIVE, H]
    row_idx_shape, count_shape = [N * K], [E]
    x_host_data = ffi.new("float[]", [0.1, 0.1, 0.1, 0.1, 0.2, 0.2, 0.2, 0.2, 0.3, 0.3, 0.3, 0.3])
    expert_idx_host_data = ffi.new("int32_t[]", [1, 2, 0, 1, 0, 2])
    expanded_x_host_data = ffi.new("float[]", ACTIVE * H)
    row_idx_host_data, count_host_data = ffi.new("int32_t[]", N * K), ffi.new("int32_t[]", E)
    active_num, expert_capacity, expert_num, drop_pad_mode = ACTIVE, 0, E, 0
    expert_tokens_count_or_cumsum_flag = 1  # 1: cumsum, 2: count
    expert_tokens_before_capacity_flag = False
    x_addr, expert_idx_addr, expanded_x_addr, row_idx_addr, count_addr = (ffi.new("void **") for _ in range(5))
    x, expert_idx, expanded_x, row_idx, count = (ffi.new("aclTensor **") for _ in range(5))
    ret = create_acl_tensor(x_host_data, ffi.sizeof("float"), x_shape, 2, x_addr, lib.ACL_FLOAT, x)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(expert_idx_host_data, ffi.sizeof("int32_t"), idx_shape, 2, expert_idx_addr, lib.ACL_INT32,
                            expert_idx)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(expanded_x_host_data, ffi.sizeof("float"), expanded_x_shape, 2, expanded_x_addr,
                            lib.ACL_FLOAT, expanded_x)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(row_idx_host_data, ffi.sizeof("int32_t"), row_idx_shape, 1, row_idx_addr, lib.ACL_INT32,
                            row_idx)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(count_host_data, ffi.sizeof("int32_t"), count_shape, 1, count_addr, lib.ACL_INT32, count)
    check_ret(ret == lib.ACL_SUCCESS, ret)

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeInitRoutingV2GetWorkspaceSize(x[0], expert_idx[0], active_num, expert_capacity, expert_num,
                                                    drop_pad_mode, expert_tokens_count_or_cumsum_flag,
                                                    expert_tokens_before_capacity_flag, expanded_x[0], row_idx[0],
                                                    count[0], ffi.NULL, workspace_size, executor)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeInitRoutingV2GetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        ret = lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret(ret == lib.ACL_SUCCESS, ret, "allocate workspace failed. ERROR: %d\n", ret)
    ret = lib.aclnnMoeInitRoutingV2(workspace_addr[0], workspace_size[0], executor[0], stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeInitRoutingV2 failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())

    # 4. wait for the stream
    ret = lib.aclrtSynchronizeStream(stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtSynchronizeStream failed. ERROR: %d\n", ret)

    # 5. results back to the host, printed and checked
    expanded_x_data = ffi.new("float[]", ACTIVE * H)
    row_idx_data, cumsum_data = ffi.new("int32_t[]", N * K), ffi.new("int32_t[]", E)
    ret = copy_to_host(expanded_x_data, expanded_x_addr[0], ffi.sizeof(expanded_x_data))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = copy_to_host(row_idx_data, row_idx_addr[0], ffi.sizeof(row_idx_data))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = copy_to_host(cumsum_data, count_addr[0], ffi.sizeof(cumsum_data))
    check_ret(ret == lib.ACL_SUCCESS, ret)

    expected_row = ffi.new("float[]", [0.2, 0.3, 0.1, 0.2])  # the value of each gathered row
    expected_row_idx = ffi.new("int32_t[]", [2, 4, 0, 3, 1, 5])
    expected_cumsum = ffi.new("int32_t[]", [2, 4, 6])
    mismatches = 0
    for i in range(ACTIVE * H):
        bad = expanded_x_data[i] != expected_row[i // H]
        mismatches += bad
        log_print("expandedX[%ld] is: %f%s\n", i, expanded_x_data[i], "   <-- MISMATCH" if bad else "")
    for i in range(N * K):
        bad = row_idx_data[i] != expected_row_idx[i]
        mismatches += bad
        log_print("expandedRowIdx[%ld] is: %d%s\n", i, row_idx_data[i], "   <-- MISMATCH" if bad else "")
    for e in range(E):
        bad = cumsum_data[e] != expected_cumsum[e]
        mismatches += bad
        log_print("expertTokensCumsum[%ld] is: %d%s\n", e, cumsum_data[e], "   <-- MISMATCH" if bad else "")

    # 6. release tensors
    lib.aclDestroyTensor(x[0])
    lib.aclDestroyTensor(expert_idx[0])
    lib.aclDestroyTensor(expanded_x[0])
    lib.aclDestroyTensor(row_idx[0])
    lib.aclDestroyTensor(count[0])

    # 7. release device memory, stream and device
    lib.aclrtFree(x_addr[0])
    lib.aclrtFree(expert_idx_addr[0])
    lib.aclrtFree(expanded_x_addr[0])
    lib.aclrtFree(row_idx_addr[0])
    lib.aclrtFree(count_addr[0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    finalize(device_id, stream[0])
    log_print("moe_init_routing_v2: %s\n", "MISMATCH" if mismatches else "OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
