"""aclnnMoeTokenPermuteWithEpGrad sample: samples/moe_token_permute_with_ep_grad.c line by line through aclnn_moe.capi (the shared steps are in
_aclnn_sample.py, the port of aclnn_sample.h).

The backward of the permute sample: sorted rows [1, 5) of indices [[1, 2], [3, 1], [2, 3]] go back to their tokens
(token_grad [[2, 2], [5, 5], [3, 3]] from rows valued 1..4) with the probs gradient gathered per pair. Exits non-zero when a result
differs.
"""
import sys

from _aclnn_sample import check_ret, copy_to_host, create_acl_tensor, finalize, init, log_print
from aclnn_moe.capi import ffi, lib

N = 3  # tokens
K = 2  # experts per token
H = 2  # hidden size
ROWS = 4  # rows of the window


def main():
    # 1. device and stream
    device_id = 0
    stream = ffi.new("aclrtStream *")
    ret = init(device_id, stream)
    check_ret(ret == 0, ret, "Init acl failed. ERROR: %d\n", ret)

    # 2. inputs and outputs
    grad_shape = [ROWS, H]
    grad_host_data = ffi.new("float[]", [1, 1, 2, 2, 3, 3, 4, 4])
    sorted_shape = [N * K]
    sorted_host_data = ffi.new("int32_t[]", [0, 2, 4, 1, 3, 5])
    probs_grad_shape = [ROWS]
    probs_grad_host_data = ffi.new("float[]", [0.1, 0.2, 0.3, 0.4])
    token_grad_shape = [N, H]
    token_grad_host_data = ffi.new("float[]", N * H)
    probs_grad_out_shape = [N, K]
    probs_grad_out_host_data = ffi.new("float[]", N * K)
    range_host_data = ffi.new("int64_t[]", [1, 5])
    grad_addr, sorted_addr, probs_grad_addr, token_grad_addr, probs_grad_out_addr = (ffi.new("void **") for _ in range(5))
    grad_t, sorted_t, probs_grad_t, token_grad_t, probs_grad_out_t = (ffi.new("aclTensor **") for _ in range(5))
    ret = create_acl_tensor(grad_host_data, ffi.sizeof("float"), grad_shape, 2, grad_addr, lib.ACL_FLOAT, grad_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(sorted_host_data, ffi.sizeof("int32_t"), sorted_shape, 1, sorted_addr, lib.ACL_INT32, sorted_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(probs_grad_host_data, ffi.sizeof("float"), probs_grad_shape, 1, probs_grad_addr, lib.ACL_FLOAT, probs_grad_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(token_grad_host_data, ffi.sizeof("float"), token_grad_shape, 2, token_grad_addr, lib.ACL_FLOAT, token_grad_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(probs_grad_out_host_data, ffi.sizeof("float"), probs_grad_out_shape, 2, probs_grad_out_addr, lib.ACL_FLOAT, probs_grad_out_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    range_array = lib.aclCreateIntArray(range_host_data, 2)
    check_ret(range_array != ffi.NULL, -1, "aclCreateIntArray failed.\n")

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeTokenPermuteWithEpGradGetWorkspaceSize(grad_t[0], sorted_t[0], probs_grad_t[0], K, range_array, False, token_grad_t[0], probs_grad_out_t[0], workspace_size, executor)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeTokenPermuteWithEpGradGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        ret = lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret(ret == lib.ACL_SUCCESS, ret, "allocate workspace failed. ERROR: %d\n", ret)
    ret = lib.aclnnMoeTokenPermuteWithEpGrad(workspace_addr[0], workspace_size[0], executor[0], stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeTokenPermuteWithEpGrad failed. ERROR: %d (%s)\n", ret, lib.aclGetRecentErrMsg())

    # 4. wait for the stream
    ret = lib.aclrtSynchronizeStream(stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtSynchronizeStream failed. ERROR: %d\n", ret)

    # 5. results back to the host, printed and checked
    mismatches = 0
    got = ffi.new("float[]", N * H)
    expected = ffi.new("float[]", [2, 2, 5, 5, 3, 3])
    ret = copy_to_host(got, token_grad_addr[0], ffi.sizeof(got))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    for i in range(N * H):
        bad = not (abs(got[i] - expected[i]) <= 1e-6)
        mismatches += bad
        log_print("tokenGrad[%ld] is: %f%s\n", i, got[i], "   <-- MISMATCH" if bad else "")
    got = ffi.new("float[]", N * K)
    expected = ffi.new("float[]", [0, 0.2, 0.4, 0.1, 0.3, 0])
    ret = copy_to_host(got, probs_grad_out_addr[0], ffi.sizeof(got))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    for i in range(N * K):
        bad = not (abs(got[i] - expected[i]) <= 1e-6)
        mismatches += bad
        log_print("probsGradOut[%ld] is: %f%s\n", i, got[i], "   <-- MISMATCH" if bad else "")

    # 6. release tensors and arrays
    lib.aclDestroyTensor(grad_t[0])
    lib.aclDestroyTensor(sorted_t[0])
    lib.aclDestroyTensor(probs_grad_t[0])
    lib.aclDestroyTensor(token_grad_t[0])
    lib.aclDestroyTensor(probs_grad_out_t[0])
    lib.aclDestroyIntArray(range_array)

    # 7. release device memory, stream and device
    lib.aclrtFree(grad_addr[0])
    lib.aclrtFree(sorted_addr[0])
    lib.aclrtFree(probs_grad_addr[0])
    lib.aclrtFree(token_grad_addr[0])
    lib.aclrtFree(probs_grad_out_addr[0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    finalize(device_id, stream[0])
    log_print("moe_token_permute_with_ep_grad: %s\n", "MISMATCH" if mismatches else "OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
