"""aclnnMoeGatingTopK sample: samples/moe_gating_top_k.c line by line through aclnn_moe.capi (the shared steps are
in _aclnn_sample.py, the port of aclnn_sample.h).

x [3, 16] fp32, bias [16]: 4 groups of 4 experts, keep the 2 best groups by the sum of their top-2 scores, then
the top 4 experts; sigmoid, renormalised, scaled by 2.5. Exits non-zero when the result differs.
"""
import sys

from _aclnn_sample import check_ret, copy_to_host, create_acl_tensor, finalize, init, log_print
from aclnn_moe.capi import ffi, lib

ROWS = 3
EXPERTS = 16
K = 4


def main():
    # 1. device and stream
    device_id = 0
    stream = ffi.new("aclrtStream *")
    ret = init(device_id, stream)
    check_ret(ret == 0, ret, "Init acl failed. ERROR: %d\n", ret)

    # 2. inputs and outputs
    x_shape = [ROWS, EXPERTS]
    bias_shape = [EXPERTS]
    y_shape = [ROWS, K]
    expert_idx_shape = [ROWS, K]
    norm_out_shape = [ROWS, EXPERTS]
    x_host_data = ffi.new("float[]", ROWS * EXPERTS)
    bias_host_data = ffi.new("float[]", EXPERTS)
    y_host_data = ffi.new("float[]", ROWS * K)
    expert_idx_host_data = ffi.new("int32_t[]", ROWS * K)
    norm_out_host_data = ffi.new("float[]", ROWS * EXPERTS)
    for r in range(ROWS):
        for e in range(EXPERTS):
            x_host_data[r * EXPERTS + e] = ((e * 7 + r * 5) % 16) * 0.25 - 2.0
    for e in range(EXPERTS):
        bias_host_data[e] = ((e * 3) % 8) * 0.125 - 0.5

    x_addr, bias_addr, y_addr, expert_idx_addr, norm_out_addr = (ffi.new("void **") for _ in range(5))
    x, bias, y, expert_idx, norm_out = (ffi.new("aclTensor **") for _ in range(5))
    ret = create_acl_tensor(x_host_data, ffi.sizeof("float"), x_shape, 2, x_addr, lib.ACL_FLOAT, x)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(bias_host_data, ffi.sizeof("float"), bias_shape, 1, bias_addr, lib.ACL_FLOAT, bias)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(y_host_data, ffi.sizeof("float"), y_shape, 2, y_addr, lib.ACL_FLOAT, y)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(expert_idx_host_data, ffi.sizeof("int32_t"), expert_idx_shape, 2, expert_idx_addr,
                            lib.ACL_INT32, expert_idx)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(norm_out_host_data, ffi.sizeof("float"), norm_out_shape, 2, norm_out_addr, lib.ACL_FLOAT,
                            norm_out)
    check_ret(ret == lib.ACL_SUCCESS, ret)

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream
    k, k_group, group_count, group_select_mode, renorm, norm_type = K, 2, 4, 1, 0, 1
    out_flag = False
    routed_scaling_factor, eps = 2.5, 1e-20
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeGatingTopKGetWorkspaceSize(x[0], bias[0], k, k_group, group_count, group_select_mode, renorm,
                                                 norm_type, out_flag, routed_scaling_factor, eps, y[0], expert_idx[0],
                                                 norm_out[0], workspace_size, executor)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeGatingTopKGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        ret = lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret(ret == lib.ACL_SUCCESS, ret, "allocate workspace failed. ERROR: %d\n", ret)
    ret = lib.aclnnMoeGatingTopK(workspace_addr[0], workspace_size[0], executor[0], stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeGatingTopK failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())

    # 4. wait for the stream
    ret = lib.aclrtSynchronizeStream(stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtSynchronizeStream failed. ERROR: %d\n", ret)

    # 5. results back to the host, printed and checked
    y_result = ffi.new("float[]", ROWS * K)
    idx_result = ffi.new("int32_t[]", ROWS * K)
    ret = copy_to_host(y_result, y_addr[0], ffi.sizeof(y_result))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = copy_to_host(idx_result, expert_idx_addr[0], ffi.sizeof(idx_result))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    expected_idx = ffi.new("int32_t[]", [2, 13, 15, 1, 15, 5, 6, 12, 5, 12, 7, 13])
    expected_y = ffi.new("float[]", [
        8.186376095e-01, 6.800619364e-01, 5.629075766e-01, 4.383928180e-01,
        7.482275963e-01, 4.575898945e-01, 7.796899080e-01, 5.144925714e-01,
        7.488800287e-01, 7.876820564e-01, 6.543464065e-01, 3.090913296e-01])
    mismatches = 0
    for i in range(ROWS * K):
        bad = idx_result[i] != expected_idx[i] or not (abs(y_result[i] - expected_y[i]) <= 1e-5 * abs(expected_y[i]))
        mismatches += bad
        log_print("expertIdx[%ld] is: %d, y[%ld] is: %f%s\n", i, idx_result[i], i, y_result[i],
                  "   <-- MISMATCH" if bad else "")

    # 6. release tensors
    lib.aclDestroyTensor(x[0])
    lib.aclDestroyTensor(bias[0])
    lib.aclDestroyTensor(y[0])
    lib.aclDestroyTensor(expert_idx[0])
    lib.aclDestroyTensor(norm_out[0])

    # 7. release device memory, stream and device
    lib.aclrtFree(x_addr[0])
    lib.aclrtFree(bias_addr[0])
    lib.aclrtFree(y_addr[0])
    lib.aclrtFree(expert_idx_addr[0])
    lib.aclrtFree(norm_out_addr[0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    finalize(device_id, stream[0])
    log_print("moe_gating_top_k: %s\n", "MISMATCH" if mismatches else "OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
