"""aclnnMoeInitRoutingV2Grad sample: samples/moe_init_routing_v2_grad.c line by line through aclnn_moe.capi (the shared steps are in
_aclnn_sample.py, the port of aclnn_sample.h).

Drop/pad mode, 2 experts of capacity 1: expandedRowIdx = [1, -1, 0, -1]; each token sums its kept slots' gradient. Exits non-zero when a result
differs.
"""
import sys

from _aclnn_sample import check_ret, copy_to_host, create_acl_tensor, finalize, init, log_print
from aclnn_moe.capi import ffi, lib

N = 2  # tokens
K = 2  # experts per token
H = 3  # hidden size
E = 2  # experts
C = 1  # capacity


def main():
    # 1. device and stream
    device_id = 0
    stream = ffi.new("aclrtStream *")
    ret = init(device_id, stream)
    check_ret(ret == 0, ret, "Init acl failed. ERROR: %d\n", ret)

    # 2. inputs and outputs
    grad_expanded_x_shape = [E, C, H]
    grad_expanded_x_host_data = ffi.new("float[]", [1, 2, 3, 4, 5, 6])
    row_idx_shape = [N * K]
    row_idx_host_data = ffi.new("int32_t[]", [1, -1, 0, -1])
    grad_x_shape = [N, H]
    grad_x_host_data = ffi.new("float[]", N * H)
    grad_expanded_x_addr, row_idx_addr, grad_x_addr = (ffi.new("void **") for _ in range(3))
    grad_expanded_x_t, row_idx_t, grad_x_t = (ffi.new("aclTensor **") for _ in range(3))
    ret = create_acl_tensor(grad_expanded_x_host_data, ffi.sizeof("float"), grad_expanded_x_shape, 3, grad_expanded_x_addr, lib.ACL_FLOAT, grad_expanded_x_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(row_idx_host_data, ffi.sizeof("int32_t"), row_idx_shape, 1, row_idx_addr, lib.ACL_INT32, row_idx_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(grad_x_host_data, ffi.sizeof("float"), grad_x_shape, 2, grad_x_addr, lib.ACL_FLOAT, grad_x_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeInitRoutingV2GradGetWorkspaceSize(grad_expanded_x_t[0], row_idx_t[0], K, 1, 0, grad_x_t[0], workspace_size, executor)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeInitRoutingV2GradGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        ret = lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret(ret == lib.ACL_SUCCESS, ret, "allocate workspace failed. ERROR: %d\n", ret)
    ret = lib.aclnnMoeInitRoutingV2Grad(workspace_addr[0], workspace_size[0], executor[0], stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeInitRoutingV2Grad failed. ERROR: %d (%s)\n", ret, lib.aclGetRecentErrMsg())

    # 4. wait for the stream
    ret = lib.aclrtSynchronizeStream(stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtSynchronizeStream failed. ERROR: %d\n", ret)

    # 5. results back to the host, printed and checked
    mismatches = 0
    got = ffi.new("float[]", N * H)
    expected = ffi.new("float[]", [4, 5, 6, 1, 2, 3])
    ret = copy_to_host(got, grad_x_addr[0], ffi.sizeof(got))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    for i in range(N * H):
        bad = not (abs(got[i] - expected[i]) <= 1e-6)
        mismatches += bad
        log_print("gradX[%ld] is: %f%s\n", i, got[i], "   <-- MISMATCH" if bad else "")

    # 6. release tensors and arrays
    lib.aclDestroyTensor(grad_expanded_x_t[0])
    lib.aclDestroyTensor(row_idx_t[0])
    lib.aclDestroyTensor(grad_x_t[0])

    # 7. release device memory, stream and device
    lib.aclrtFree(grad_expanded_x_addr[0])
    lib.aclrtFree(row_idx_addr[0])
    lib.aclrtFree(grad_x_addr[0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    finalize(device_id, stream[0])
    log_print("moe_init_routing_v2_grad: %s\n", "MISMATCH" if mismatches else "OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
