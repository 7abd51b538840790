"""aclnnMoeTokenPermuteGrad sample: samples/moe_token_permute_grad.c line by line through aclnn_moe.capi (the shared steps are in
_aclnn_sample.py, the port of aclnn_sample.h).

The backward of MoeTokenPermute: sortedIndices [2, 4, 0, 3, 1, 5], 5 gradient rows; each token sums its rows. Exits non-zero when a result
differs.
"""
import sys

from _aclnn_sample import check_ret, copy_to_host, create_acl_tensor, finalize, init, log_print
from aclnn_moe.capi import ffi, lib

N = 3  # tokens
K = 2  # experts per token
H = 2  # hidden size
ROWS = 5  # numOutTokens


def main():
    # 1. device and stream
    device_id = 0
    stream = ffi.new("aclrtStream *")
    ret = init(device_id, stream)
    check_ret(ret == 0, ret, "Init acl failed. ERROR: %d\n", ret)

    # 2. inputs and outputs
    grad_shape = [ROWS, H]
    grad_host_data = ffi.new("float[]", [1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    sorted_shape = [N * K]
    sorted_host_data = ffi.new("int32_t[]", [2, 4, 0, 3, 1, 5])
    out_shape = [N, H]
    out_host_data = ffi.new("float[]", N * H)
    grad_addr, sorted_addr, out_addr = (ffi.new("void **") for _ in range(3))
    grad_t, sorted_t, out_t = (ffi.new("aclTensor **") for _ in range(3))
    ret = create_acl_tensor(grad_host_data, ffi.sizeof("float"), grad_shape, 2, grad_addr, lib.ACL_FLOAT, grad_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(sorted_host_data, ffi.sizeof("int32_t"), sorted_shape, 1, sorted_addr, lib.ACL_INT32, sorted_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(out_host_data, ffi.sizeof("float"), out_shape, 2, out_addr, lib.ACL_FLOAT, out_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeTokenPermuteGradGetWorkspaceSize(grad_t[0], sorted_t[0], K, False, out_t[0], workspace_size, executor)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeTokenPermuteGradGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        ret = lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret(ret == lib.ACL_SUCCESS, ret, "allocate workspace failed. ERROR: %d\n", ret)
    ret = lib.aclnnMoeTokenPermuteGrad(workspace_addr[0], workspace_size[0], executor[0], stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeTokenPermuteGrad failed. ERROR: %d (%s)\n", ret, lib.aclGetRecentErrMsg())

    # 4. wait for the stream
    ret = lib.aclrtSynchronizeStream(stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtSynchronizeStream failed. ERROR: %d\n", ret)

    # 5. results back to the host, printed and checked
    mismatches = 0
    got = ffi.new("float[]", N * H)
    expected = ffi.new("float[]", [8, 8, 5, 5, 2, 2])
    ret = copy_to_host(got, out_addr[0], ffi.sizeof(got))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    for i in range(N * H):
        bad = not (abs(got[i] - expected[i]) <= 1e-6)
        mismatches += bad
        log_print("out[%ld] is: %f%s\n", i, got[i], "   <-- MISMATCH" if bad else "")

    # 6. release tensors and arrays
    lib.aclDestroyTensor(grad_t[0])
    lib.aclDestroyTensor(sorted_t[0])
    lib.aclDestroyTensor(out_t[0])

    # 7. release device memory, stream and device
    lib.aclrtFree(grad_addr[0])
    lib.aclrtFree(sorted_addr[0])
    lib.aclrtFree(out_addr[0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    finalize(device_id, stream[0])
    log_print("moe_token_permute_grad: %s\n", "MISMATCH" if mismatches else "OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
