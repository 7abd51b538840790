"""aclnnMoeTokenUnpermuteGrad sample: samples/moe_token_unpermute_grad.c line by line through aclnn_moe.capi (the shared steps are in
_aclnn_sample.py, the port of aclnn_sample.h).

The backward of MoeTokenUnpermute: permuted rows get grad * prob, probs get row . grad. Exits non-zero when a result
differs.
"""
import sys

from _aclnn_sample import check_ret, copy_to_host, create_acl_tensor, finalize, init, log_print
from aclnn_moe.capi import ffi, lib

N = 2  # tokens
K = 2  # experts per token
H = 2  # hidden size


def main():
    # 1. device and stream
    device_id = 0
    stream = ffi.new("aclrtStream *")
    ret = init(device_id, stream)
    check_ret(ret == 0, ret, "Init acl failed. ERROR: %d\n", ret)

    # 2. inputs and outputs
    permuted_shape = [N * K, H]
    permuted_host_data = ffi.new("float[]", [1, 0, 0, 1, 1, 1, 2, 2])
    grad_shape = [N, H]
    grad_host_data = ffi.new("float[]", [1, 2, 3, 4])
    sorted_shape = [N * K]
    sorted_host_data = ffi.new("int32_t[]", [3, 0, 2, 1])
    probs_shape = [N, K]
    probs_host_data = ffi.new("float[]", [0.5, 0.25, 1, 2])
    permuted_grad_shape = [N * K, H]
    permuted_grad_host_data = ffi.new("float[]", (N * K) * H)
    probs_grad_shape = [N, K]
    probs_grad_host_data = ffi.new("float[]", N * K)
    permuted_addr, grad_addr, sorted_addr, probs_addr, permuted_grad_addr, probs_grad_addr = (ffi.new("void **") for _ in range(6))
    permuted_t, grad_t, sorted_t, probs_t, permuted_grad_t, probs_grad_t = (ffi.new("aclTensor **") for _ in range(6))
    ret = create_acl_tensor(permuted_host_data, ffi.sizeof("float"), permuted_shape, 2, permuted_addr, lib.ACL_FLOAT, permuted_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(grad_host_data, ffi.sizeof("float"), grad_shape, 2, grad_addr, lib.ACL_FLOAT, grad_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(sorted_host_data, ffi.sizeof("int32_t"), sorted_shape, 1, sorted_addr, lib.ACL_INT32, sorted_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(probs_host_data, ffi.sizeof("float"), probs_shape, 2, probs_addr, lib.ACL_FLOAT, probs_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(permuted_grad_host_data, ffi.sizeof("float"), permuted_grad_shape, 2, permuted_grad_addr, lib.ACL_FLOAT, permuted_grad_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(probs_grad_host_data, ffi.sizeof("float"), probs_grad_shape, 2, probs_grad_addr, lib.ACL_FLOAT, probs_grad_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeTokenUnpermuteGradGetWorkspaceSize(permuted_t[0], grad_t[0], sorted_t[0], probs_t[0], False, ffi.NULL, permuted_grad_t[0], probs_grad_t[0], workspace_size, executor)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeTokenUnpermuteGradGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        ret = lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret(ret == lib.ACL_SUCCESS, ret, "allocate workspace failed. ERROR: %d\n", ret)
    ret = lib.aclnnMoeTokenUnpermuteGrad(workspace_addr[0], workspace_size[0], executor[0], stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeTokenUnpermuteGrad failed. ERROR: %d (%s)\n", ret, lib.aclGetRecentErrMsg())

    # 4. wait for the stream
    ret = lib.aclrtSynchronizeStream(stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtSynchronizeStream failed. ERROR: %d\n", ret)

    # 5. results back to the host, printed and checked
    mismatches = 0
    got = ffi.new("float[]", (N * K) * H)
    expected = ffi.new("float[]", [0.25, 0.5, 6, 8, 3, 4, 0.5, 1])
    ret = copy_to_host(got, permuted_grad_addr[0], ffi.sizeof(got))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    for i in range((N * K) * H):
        bad = not (abs(got[i] - expected[i]) <= 1e-6)
        mismatches += bad
        log_print("permutedGrad[%ld] is: %f%s\n", i, got[i], "   <-- MISMATCH" if bad else "")
    got = ffi.new("float[]", N * K)
    expected = ffi.new("float[]", [6, 1, 7, 4])
    ret = copy_to_host(got, probs_grad_addr[0], ffi.sizeof(got))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    for i in range(N * K):
        bad = not (abs(got[i] - expected[i]) <= 1e-6)
        mismatches += bad
        log_print("probsGrad[%ld] is: %f%s\n", i, got[i], "   <-- MISMATCH" if bad else "")

    # 6. release tensors and arrays
    lib.aclDestroyTensor(permuted_t[0])
    lib.aclDestroyTensor(grad_t[0])
    lib.aclDestroyTensor(sorted_t[0])
    lib.aclDestroyTensor(probs_t[0])
    lib.aclDestroyTensor(permuted_grad_t[0])
    lib.aclDestroyTensor(probs_grad_t[0])

    # 7. release device memory, stream and device
    lib.aclrtFree(permuted_addr[0])
    lib.aclrtFree(grad_addr[0])
    lib.aclrtFree(sorted_addr[0])
    lib.aclrtFree(probs_addr[0])
    lib.aclrtFree(permuted_grad_addr[0])
    lib.aclrtFree(probs_grad_addr[0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    finalize(device_id, stream[0])
    log_print("moe_token_unpermute_grad: %s\n", "MISMATCH" if mismatches else "OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
