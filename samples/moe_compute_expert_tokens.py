"""aclnnMoeComputeExpertTokens sample: samples/moe_compute_expert_tokens.c line by line through aclnn_moe.capi (the
shared steps are in _aclnn_sample.py, the port of aclnn_sample.h).

sortedExperts = [0, 0, 1, 3, 3, 3, 3, 5, 7, 7], numExperts = 8: out[i] = rows handled by experts 0..i =
[2, 3, 3, 7, 7, 8, 8, 10]. Exits non-zero when the result differs.
"""
import sys

from _aclnn_sample import check_ret, copy_to_host, create_acl_tensor, finalize, init, log_print
from aclnn_moe.capi import ffi, lib

ROWS = 10
NUM_EXPERTS = 8


def main():
    # 1. device and stream
    device_id = 0
    stream = ffi.new("aclrtStream *")
    ret = init(device_id, stream)
    check_ret(ret == 0, ret, "Init acl failed. ERROR: %d\n", ret)

    # 2. input and output
    sorted_experts_shape, out_shape = [ROWS], [NUM_EXPERTS]
    sorted_experts_host_data = ffi.new("int32_t[]", [0, 0, 1, 3, 3, 3, 3, 5, 7, 7])
    out_host_data = ffi.new("int32_t[]", NUM_EXPERTS)
    num_experts = NUM_EXPERTS
    sorted_experts_addr, out_addr = ffi.new("void **"), ffi.new("void **")
    sorted_experts, out = ffi.new("aclTensor **"), ffi.new("aclTensor **")
    ret = create_acl_tensor(sorted_experts_host_data, ffi.sizeof("int32_t"), sorted_experts_shape, 1,
                            sorted_experts_addr, lib.ACL_INT32, sorted_experts)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(out_host_data, ffi.sizeof("int32_t"), out_shape, 1, out_addr, lib.ACL_INT32, out)
    check_ret(ret == lib.ACL_SUCCESS, ret)

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeComputeExpertTokensGetWorkspaceSize(sorted_experts[0], num_experts, out[0], workspace_size,
                                                          executor)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeComputeExpertTokensGetWorkspaceSize failed. ERROR: %d (%s)\n",
              ret, lib.aclGetRecentErrMsg())
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        ret = lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret(ret == lib.ACL_SUCCESS, ret, "allocate workspace failed. ERROR: %d\n", ret)
    ret = lib.aclnnMoeComputeExpertTokens(workspace_addr[0], workspace_size[0], executor[0], stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeComputeExpertTokens failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())

    # 4. wait for the stream
    ret = lib.aclrtSynchronizeStream(stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtSynchronizeStream failed. ERROR: %d\n", ret)

    # 5. result back to the host, printed and checked
    result = ffi.new("int32_t[]", NUM_EXPERTS)
    ret = copy_to_host(result, out_addr[0], ffi.sizeof(result))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    expected = ffi.new("int32_t[]", [2, 3, 3, 7, 7, 8, 8, 10])
    mismatches = 0
    for i in range(NUM_EXPERTS):
        bad = result[i] != expected[i]
        mismatches += bad
        log_print("out[%ld] is: %d%s\n", i, result[i], "   <-- MISMATCH" if bad else "")

    # 6. release tensors
    lib.aclDestroyTensor(sorted_experts[0])
    lib.aclDestroyTensor(out[0])

    # 7. release device memory, stream and device
    lib.aclrtFree(sorted_experts_addr[0])
    lib.aclrtFree(out_addr[0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    finalize(device_id, stream[0])
    log_print("moe_compute_expert_tokens: %s\n", "MISMATCH" if mismatches else "OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
