"""aclnnMoeInitRoutingV3 sample (what torch_npu.npu_moe_init_routing_v2 runs): samples/moe_init_routing_v3.c line by
line through aclnn_moe.capi (the shared steps are in _aclnn_sample.py, the port of aclnn_sample.h).

One rank owns experts [1, 3) of 4 and quantises dynamically to int8 (quantMode 1): expertIdx = [[1, 2], [0, 1],
[3, 2]] gives expandedRowIdx = [0, 2, -1, 1, -1, 3], rows 0..3 from tokens 0, 1, 0, 2 (q = rint(row / s),
s = max|row| / 127), two empty rows, counts [2, 2]. Exits non-zero when a result differs.
"""
import sys

import numpy as np

from _aclnn_sample import check_ret, copy_to_host, create_acl_tensor, finalize, init, log_print
from aclnn_moe.capi import ffi, lib

N = 3  # tokens
K = 2  # experts per token
H = 4  # hidden size
E = 4  # experts
START, END = 1, 3


def main():
    # 1. device and stream
    device_id = 0
    stream = ffi.new("aclrtStream *")
    ret = init(device_id, stream)
    check_ret(ret == 0, ret, "Init acl failed. ERROR: %d\n", ret)

    # 2. inputs and outputs
    x_shape, idx_shape, expanded_x_shape = [N, H], [N, K], [N * K, H]
    row_idx_shape, count_shape, scale_shape = [N * K], [END - START], [N * K]
    x_host_data = ffi.new("float[]", [1.0, 3.0, -2.0, 5.0, -8.0, 5.0, 2.0, 0.0, 0.3, 0.6, 1.0, -0.2])
    expert_idx_host_data = ffi.new("int32_t[]", [1, 2, 0, 1, 3, 2])
    expanded_x_host_data = ffi.new("int8_t[]", N * K * H)
    row_idx_host_data = ffi.new("int32_t[]", N * K)
    count_host_data = ffi.new("int64_t[]", END - START)
    scale_host_data = ffi.new("float[]", N * K)
    active_num, expert_capacity, expert_num, drop_pad_mode = -1, 0, E, 0
    expert_tokens_num_type = 1  # 0: cumsum, 1: count, 2: key_value
    expert_tokens_num_flag = True
    quant_mode = 1  # -1: none, 0: static, 1: dynamic int8
    row_idx_type = 0  # 0: gather form, 1: scatter form
    active_expert_range = lib.aclCreateIntArray(ffi.new("int64_t[]", [START, END]), 2)
    check_ret(active_expert_range != ffi.NULL, -1, "aclCreateIntArray failed.\n")
    x_addr, expert_idx_addr, expanded_x_addr, row_idx_addr, count_addr, scale_addr = (ffi.new("void **")
                                                                                       for _ in range(6))
    x, expert_idx, expanded_x, row_idx, count, expanded_scale = (ffi.new("aclTensor **") for _ in range(6))
    ret = create_acl_tensor(x_host_data, ffi.sizeof("float"), x_shape, 2, x_addr, lib.ACL_FLOAT, x)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(expert_idx_host_data, ffi.sizeof("int32_t"), idx_shape, 2, expert_idx_addr, lib.ACL_INT32,
                            expert_idx)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(expanded_x_host_data, ffi.sizeof("int8_t"), expanded_x_shape, 2, expanded_x_addr,
                            lib.ACL_INT8, expanded_x)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(row_idx_host_data, ffi.sizeof("int32_t"), row_idx_shape, 1, row_idx_addr, lib.ACL_INT32,
                            row_idx)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(count_host_data, ffi.sizeof("int64_t"), count_shape, 1, count_addr, lib.ACL_INT64, count)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(scale_host_data, ffi.sizeof("float"), scale_shape, 1, scale_addr, lib.ACL_FLOAT,
                            expanded_scale)
    check_ret(ret == lib.ACL_SUCCESS, ret)

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream (no smooth scale, no offset)
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeInitRoutingV3GetWorkspaceSize(x[0], expert_idx[0], ffi.NULL, ffi.NULL, active_num,
                                                    expert_capacity, expert_num, drop_pad_mode,
                                                    expert_tokens_num_type, expert_tokens_num_flag, quant_mode,
                                                    active_expert_range, row_idx_type, expanded_x[0], row_idx[0],
                                                    count[0], expanded_scale[0], workspace_size, executor)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeInitRoutingV3GetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        ret = lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret(ret == lib.ACL_SUCCESS, ret, "allocate workspace failed. ERROR: %d\n", ret)
    ret = lib.aclnnMoeInitRoutingV3(workspace_addr[0], workspace_size[0], executor[0], stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeInitRoutingV3 failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())

    # 4. wait for the stream
    ret = lib.aclrtSynchronizeStream(stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtSynchronizeStream failed. ERROR: %d\n", ret)

    # 5. results back to the host, printed and checked
    expanded_x_data = ffi.new("int8_t[]", N * K * H)
    row_idx_data, count_data = ffi.new("int32_t[]", N * K), ffi.new("int64_t[]", END - START)
    scale_data = ffi.new("float[]", N * K)
    for host, dev in ((expanded_x_data, expanded_x_addr), (row_idx_data, row_idx_addr), (count_data, count_addr),
                      (scale_data, scale_addr)):
        ret = copy_to_host(host, dev[0], ffi.sizeof(host))
        check_ret(ret == lib.ACL_SUCCESS, ret)

    expected_x = [25, 76, -51, 127, -127, 79, 32, 0, 25, 76, -51, 127, 38, 76, 127, -25] + [0] * 8
    expected_row_idx = [0, 2, -1, 1, -1, 3]
    expected_count = [2, 2]
    row_max = [5.0, 8.0, 5.0, 1.0, 0.0, 0.0]  # max|row| of tokens 0, 1, 0, 2
    mismatches = 0
    for i in range(N * K * H):
        bad = expanded_x_data[i] != expected_x[i]
        mismatches += bad
        log_print("expandedX[%ld] is: %d%s\n", i, expanded_x_data[i], "   <-- MISMATCH" if bad else "")
    for i in range(N * K):
        bad = row_idx_data[i] != expected_row_idx[i]
        mismatches += bad
        log_print("expandedRowIdx[%ld] is: %d%s\n", i, row_idx_data[i], "   <-- MISMATCH" if bad else "")
    for e in range(END - START):
        bad = count_data[e] != expected_count[e]
        mismatches += bad
        log_print("expertTokensCount[%ld] is: %ld%s\n", e, count_data[e], "   <-- MISMATCH" if bad else "")
    for i in range(N * K):
        bad = scale_data[i] != np.float32(row_max[i]) / np.float32(127.0)  # the fp32 division C does
        mismatches += bad
        log_print("expandedScale[%ld] is: %f%s\n", i, scale_data[i], "   <-- MISMATCH" if bad else "")

    # 6. release tensors and the range
    for t in (x, expert_idx, expanded_x, row_idx, count, expanded_scale):
        lib.aclDestroyTensor(t[0])
    lib.aclDestroyIntArray(active_expert_range)

    # 7. release device memory, stream and device
    for a in (x_addr, expert_idx_addr, expanded_x_addr, row_idx_addr, count_addr, scale_addr):
        lib.aclrtFree(a[0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    finalize(device_id, stream[0])
    log_print("moe_init_routing_v3: %s\n", "MISMATCH" if mismatches else "OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
