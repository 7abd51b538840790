"""aclnnMoeFinalizeRoutingV2Grad sample: samples/moe_finalize_routing_v2_grad.c line by line through aclnn_moe.capi (the shared steps are in
_aclnn_sample.py, the port of aclnn_sample.h).

Dropless finalize backward: gradExpandedX[row] = gradY[i] * scale, gradScales = (expandedX[row] + bias) . gradY[i]. Exits non-zero when a result
differs.
"""
import sys

from _aclnn_sample import check_ret, copy_to_host, create_acl_tensor, finalize, init, log_print
from aclnn_moe.capi import ffi, lib

R = 2  # tokens
K = 2  # experts per token
H = 2  # hidden size
E = 2  # experts


def main():
    # 1. device and stream
    device_id = 0
    stream = ffi.new("aclrtStream *")
    ret = init(device_id, stream)
    check_ret(ret == 0, ret, "Init acl failed. ERROR: %d\n", ret)

    # 2. inputs and outputs
    grad_y_shape = [R, H]
    grad_y_host_data = ffi.new("float[]", [1, 2, 3, 4])
    row_idx_shape = [R * K]
    row_idx_host_data = ffi.new("int32_t[]", [1, 3, 0, 2])
    expanded_x_shape = [R * K, H]
    expanded_x_host_data = ffi.new("float[]", [1, 0, 0, 1, 1, 1, 2, 0])
    scales_shape = [R, K]
    scales_host_data = ffi.new("float[]", [0.5, 0.25, 1, 2])
    expert_idx_shape = [R, K]
    expert_idx_host_data = ffi.new("int32_t[]", [0, 1, 1, 0])
    bias_shape = [E, H]
    bias_host_data = ffi.new("float[]", [0.5, 0.5, 1, 0])
    grad_expanded_x_shape = [R * K, H]
    grad_expanded_x_host_data = ffi.new("float[]", (R * K) * H)
    grad_scales_shape = [R, K]
    grad_scales_host_data = ffi.new("float[]", R * K)
    grad_y_addr, row_idx_addr, expanded_x_addr, scales_addr, expert_idx_addr, bias_addr, grad_expanded_x_addr, grad_scales_addr = (ffi.new("void **") for _ in range(8))
    grad_y_t, row_idx_t, expanded_x_t, scales_t, expert_idx_t, bias_t, grad_expanded_x_t, grad_scales_t = (ffi.new("aclTensor **") for _ in range(8))
    ret = create_acl_tensor(grad_y_host_data, ffi.sizeof("float"), grad_y_shape, 2, grad_y_addr, lib.ACL_FLOAT, grad_y_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(row_idx_host_data, ffi.sizeof("int32_t"), row_idx_shape, 1, row_idx_addr, lib.ACL_INT32, row_idx_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(expanded_x_host_data, ffi.sizeof("float"), expanded_x_shape, 2, expanded_x_addr, lib.ACL_FLOAT, expanded_x_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(scales_host_data, ffi.sizeof("float"), scales_shape, 2, scales_addr, lib.ACL_FLOAT, scales_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(expert_idx_host_data, ffi.sizeof("int32_t"), expert_idx_shape, 2, expert_idx_addr, lib.ACL_INT32, expert_idx_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(bias_host_data, ffi.sizeof("float"), bias_shape, 2, bias_addr, lib.ACL_FLOAT, bias_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(grad_expanded_x_host_data, ffi.sizeof("float"), grad_expanded_x_shape, 2, grad_expanded_x_addr, lib.ACL_FLOAT, grad_expanded_x_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(grad_scales_host_data, ffi.sizeof("float"), grad_scales_shape, 2, grad_scales_addr, lib.ACL_FLOAT, grad_scales_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeFinalizeRoutingV2GradGetWorkspaceSize(grad_y_t[0], row_idx_t[0], expanded_x_t[0], scales_t[0], expert_idx_t[0], bias_t[0], 0, 0, 0, 0, grad_expanded_x_t[0], grad_scales_t[0], workspace_size, executor)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeFinalizeRoutingV2GradGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        ret = lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret(ret == lib.ACL_SUCCESS, ret, "allocate workspace failed. ERROR: %d\n", ret)
    ret = lib.aclnnMoeFinalizeRoutingV2Grad(workspace_addr[0], workspace_size[0], executor[0], stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeFinalizeRoutingV2Grad failed. ERROR: %d (%s)\n", ret, lib.aclGetRecentErrMsg())

    # 4. wait for the stream
    ret = lib.aclrtSynchronizeStream(stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtSynchronizeStream failed. ERROR: %d\n", ret)

    # 5. results back to the host, printed and checked
    mismatches = 0
    got = ffi.new("float[]", (R * K) * H)
    expected = ffi.new("float[]", [3, 4, 0.5, 1, 6, 8, 0.25, 0.5])
    ret = copy_to_host(got, grad_expanded_x_addr[0], ffi.sizeof(got))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    for i in range((R * K) * H):
        bad = not (abs(got[i] - expected[i]) <= 1e-6)
        mismatches += bad
        log_print("gradExpandedX[%ld] is: %f%s\n", i, got[i], "   <-- MISMATCH" if bad else "")
    got = ffi.new("float[]", R * K)
    expected = ffi.new("float[]", [3.5, 3, 6, 10.5])
    ret = copy_to_host(got, grad_scales_addr[0], ffi.sizeof(got))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    for i in range(R * K):
        bad = not (abs(got[i] - expected[i]) <= 1e-6)
        mismatches += bad
        log_print("gradScales[%ld] is: %f%s\n", i, got[i], "   <-- MISMATCH" if bad else "")

    # 6. release tensors and arrays
    lib.aclDestroyTensor(grad_y_t[0])
    lib.aclDestroyTensor(row_idx_t[0])
    lib.aclDestroyTensor(expanded_x_t[0])
    lib.aclDestroyTensor(scales_t[0])
    lib.aclDestroyTensor(expert_idx_t[0])
    lib.aclDestroyTensor(bias_t[0])
    lib.aclDestroyTensor(grad_expanded_x_t[0])
    lib.aclDestroyTensor(grad_scales_t[0])

    # 7. release device memory, stream and device
    lib.aclrtFree(grad_y_addr[0])
    lib.aclrtFree(row_idx_addr[0])
    lib.aclrtFree(expanded_x_addr[0])
    lib.aclrtFree(scales_addr[0])
    lib.aclrtFree(expert_idx_addr[0])
    lib.aclrtFree(bias_addr[0])
    lib.aclrtFree(grad_expanded_x_addr[0])
    lib.aclrtFree(grad_scales_addr[0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    finalize(device_id, stream[0])
    log_print("moe_finalize_routing_v2_grad: %s\n", "MISMATCH" if mismatches else "OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
