"""aclnnMoeTokenPermuteWithEp sample: samples/moe_token_permute_with_ep.c line by line through aclnn_moe.capi (the
shared steps are in _aclnn_sample.py, the port of aclnn_sample.h).

3 tokens of hidden size 4 (valued 0.1, 0.2, 0.3) pick 2 experts each, indices = [[1, 2], [3, 1], [2, 3]]:
sortedIndices = [0, 2, 4, 1, 3, 5]; this rank owns sorted rows [1, 5): tokens 1, 0, 2, 1 with probabilities
0.2, 0.3, 0.5, 0.4. Exits non-zero when a result differs.
"""
import sys

from _aclnn_sample import check_ret, copy_to_host, create_acl_tensor, finalize, init, log_print
from aclnn_moe.capi import ffi, lib

N = 3  # tokens
K = 2  # experts per token
H = 4  # hidden size
ROWS = 4  # sorted rows this rank owns


def main():
    # 1. device and stream
    device_id = 0
    stream = ffi.new("aclrtStream *")
    ret = init(device_id, stream)
    check_ret(ret == 0, ret, "Init acl failed. ERROR: %d\n", ret)

    # 2. inputs and outputs
    x_shape, idx_shape, out_shape = [N, H], [N, K], [ROWS, H]
    sorted_shape, probs_out_shape = [N * K], [ROWS]
    x_host_data = ffi.new("float[]", [0.1, 0.1, 0.1, 0.1, 0.2, 0.2, 0.2, 0.2, 0.3, 0.3, 0.3, 0.3])
    indices_host_data = ffi.new("int32_t[]", [1, 2, 3, 1, 2, 3])
    probs_host_data = ffi.new("float[]", [0.5, 0.3, 0.4, 0.2, 0.5, 0.4])
    out_host_data, probs_out_host_data = ffi.new("float[]", ROWS * H), ffi.new("float[]", ROWS)
    sorted_host_data = ffi.new("int32_t[]", N * K)
    range_host_data = ffi.new("int64_t[]", [1, ROWS + 1])  # this rank keeps rows [1, 5) of the expert-sorted order
    x_addr, indices_addr, probs_addr, out_addr, sorted_addr = (ffi.new("void **") for _ in range(5))
    probs_out_addr = ffi.new("void **")
    x, indices, probs, out, sorted_t, probs_out = (ffi.new("aclTensor **") for _ in range(6))
    ret = create_acl_tensor(x_host_data, ffi.sizeof("float"), x_shape, 2, x_addr, lib.ACL_FLOAT, x)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(indices_host_data, ffi.sizeof("int32_t"), idx_shape, 2, indices_addr, lib.ACL_INT32,
                            indices)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(probs_host_data, ffi.sizeof("float"), idx_shape, 2, probs_addr, lib.ACL_FLOAT, probs)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(out_host_data, ffi.sizeof("float"), out_shape, 2, out_addr, lib.ACL_FLOAT, out)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(sorted_host_data, ffi.sizeof("int32_t"), sorted_shape, 1, sorted_addr, lib.ACL_INT32,
                            sorted_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(probs_out_host_data, ffi.sizeof("float"), probs_out_shape, 1, probs_out_addr,
                            lib.ACL_FLOAT, probs_out)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    range_array = lib.aclCreateIntArray(range_host_data, 2)
    check_ret(range_array != ffi.NULL, -1, "aclCreateIntArray failed.\n")
    num_out_tokens = 0
    padded_mode = False

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeTokenPermuteWithEpGetWorkspaceSize(x[0], indices[0], probs[0], range_array, num_out_tokens,
                                                         padded_mode, out[0], sorted_t[0], probs_out[0],
                                                         workspace_size, executor)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeTokenPermuteWithEpGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        ret = lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret(ret == lib.ACL_SUCCESS, ret, "allocate workspace failed. ERROR: %d\n", ret)
    ret = lib.aclnnMoeTokenPermuteWithEp(workspace_addr[0], workspace_size[0], executor[0], stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeTokenPermuteWithEp failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())

    # 4. wait for the stream
    ret = lib.aclrtSynchronizeStream(stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtSynchronizeStream failed. ERROR: %d\n", ret)

    # 5. results back to the host, printed and checked
    out_data, probs_out_data = ffi.new("float[]", ROWS * H), ffi.new("float[]", ROWS)
    sorted_data = ffi.new("int32_t[]", N * K)
    ret = copy_to_host(out_data, out_addr[0], ffi.sizeof(out_data))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = copy_to_host(sorted_data, sorted_addr[0], ffi.sizeof(sorted_data))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = copy_to_host(probs_out_data, probs_out_addr[0], ffi.sizeof(probs_out_data))
    check_ret(ret == lib.ACL_SUCCESS, ret)

    expected_sorted = ffi.new("int32_t[]", [0, 2, 4, 1, 3, 5])
    expected_row = ffi.new("float[]", [0.2, 0.1, 0.3, 0.2])  # the value of each kept row
    expected_probs = ffi.new("float[]", [0.2, 0.3, 0.5, 0.4])
    mismatches = 0
    for i in range(N * K):
        bad = sorted_data[i] != expected_sorted[i]
        mismatches += bad
        log_print("sortedIndices[%ld] is: %d%s\n", i, sorted_data[i], "   <-- MISMATCH" if bad else "")
    for i in range(ROWS * H):
        bad = out_data[i] != expected_row[i // H]
        mismatches += bad
        log_print("permuteTokens[%ld] is: %f%s\n", i, out_data[i], "   <-- MISMATCH" if bad else "")
    for r in range(ROWS):
        bad = probs_out_data[r] != expected_probs[r]
        mismatches += bad
        log_print("permuteProbs[%ld] is: %f%s\n", r, probs_out_data[r], "   <-- MISMATCH" if bad else "")

    # 6. release tensors and arrays
    lib.aclDestroyTensor(x[0])
    lib.aclDestroyTensor(indices[0])
    lib.aclDestroyTensor(probs[0])
    lib.aclDestroyTensor(out[0])
    lib.aclDestroyTensor(sorted_t[0])
    lib.aclDestroyTensor(probs_out[0])
    lib.aclDestroyIntArray(range_array)

    # 7. release device memory, stream and device
    lib.aclrtFree(x_addr[0])
    lib.aclrtFree(indices_addr[0])
    lib.aclrtFree(probs_addr[0])
    lib.aclrtFree(out_addr[0])
    lib.aclrtFree(sorted_addr[0])
    lib.aclrtFree(probs_out_addr[0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    finalize(device_id, stream[0])
    log_print("moe_token_permute_with_ep: %s\n", "MISMATCH" if mismatches else "OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
