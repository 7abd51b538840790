"""aclnnMoeTokenPermute sample: samples/moe_token_permute.c line by line through aclnn_moe.capi (the shared steps
are in _aclnn_sample.py, the port of aclnn_sample.h).

Four tokens valued 1..4 (hidden size 2) pick experts [[2, 0], [1, 2], [0, 1], [2, 2]]; sorted by expert the
pairs come from tokens [0, 2, 1, 2, 0, 1, 3, 3], numOutTokens = -2 drops the last two rows, and sortedIndices is
[4, 0, 2, 5, 1, 3, 6, 7]. Exits non-zero when a result differs.
"""
import sys

from _aclnn_sample import check_ret, copy_to_host, create_acl_tensor, finalize, init, log_print
from aclnn_moe.capi import ffi, lib

T = 4  # tokens
K = 2  # experts per token
H = 2  # hidden size
ROWS = 6  # T*K - 2 rows kept


def main():
    # 1. device and stream
    device_id = 0
    stream = ffi.new("aclrtStream *")
    ret = init(device_id, stream)
    check_ret(ret == 0, ret, "Init acl failed. ERROR: %d\n", ret)

    # 2. inputs and outputs
    tokens_shape, indices_shape, permuted_shape, sorted_shape = [T, H], [T, K], [ROWS, H], [T * K]
    tokens_host_data = ffi.new("float[]", [1, 1, 2, 2, 3, 3, 4, 4])
    indices_host_data = ffi.new("int32_t[]", [2, 0, 1, 2, 0, 1, 2, 2])
    permuted_host_data = ffi.new("float[]", ROWS * H)
    sorted_host_data = ffi.new("int32_t[]", T * K)
    num_out_tokens = -2
    padded_mode = False
    tokens_addr, indices_addr, permuted_addr, sorted_addr = (ffi.new("void **") for _ in range(4))
    tokens, indices, permuted, sorted_t = (ffi.new("aclTensor **") for _ in range(4))
    ret = create_acl_tensor(tokens_host_data, ffi.sizeof("float"), tokens_shape, 2, tokens_addr, lib.ACL_FLOAT, tokens)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(indices_host_data, ffi.sizeof("int32_t"), indices_shape, 2, indices_addr, lib.ACL_INT32,
                            indices)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(permuted_host_data, ffi.sizeof("float"), permuted_shape, 2, permuted_addr, lib.ACL_FLOAT,
                            permuted)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(sorted_host_data, ffi.sizeof("int32_t"), sorted_shape, 1, sorted_addr, lib.ACL_INT32,
                            sorted_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeTokenPermuteGetWorkspaceSize(tokens[0], indices[0], num_out_tokens, padded_mode, permuted[0],
                                                   sorted_t[0], workspace_size, executor)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeTokenPermuteGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        ret = lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret(ret == lib.ACL_SUCCESS, ret, "allocate workspace failed. ERROR: %d\n", ret)
    ret = lib.aclnnMoeTokenPermute(workspace_addr[0], workspace_size[0], executor[0], stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeTokenPermute failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())

    # 4. wait for the stream
    ret = lib.aclrtSynchronizeStream(stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtSynchronizeStream failed. ERROR: %d\n", ret)

    # 5. results back to the host, printed and checked
    permuted_data = ffi.new("float[]", ROWS * H)
    sorted_data = ffi.new("int32_t[]", T * K)
    ret = copy_to_host(permuted_data, permuted_addr[0], ffi.sizeof(permuted_data))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = copy_to_host(sorted_data, sorted_addr[0], ffi.sizeof(sorted_data))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    expected_row = [1, 3, 2, 3, 1, 2]  # the value of each permuted row
    expected_sorted = [4, 0, 2, 5, 1, 3, 6, 7]
    mismatches = 0
    for i in range(ROWS * H):
        bad = permuted_data[i] != expected_row[i // H]
        mismatches += bad
        log_print("permuteTokensOut[%ld] is: %f%s\n", i, permuted_data[i], "   <-- MISMATCH" if bad else "")
    for i in range(T * K):
        bad = sorted_data[i] != expected_sorted[i]
        mismatches += bad
        log_print("sortedIndicesOut[%ld] is: %d%s\n", i, sorted_data[i], "   <-- MISMATCH" if bad else "")

    # 6. release tensors
    lib.aclDestroyTensor(tokens[0])
    lib.aclDestroyTensor(indices[0])
    lib.aclDestroyTensor(permuted[0])
    lib.aclDestroyTensor(sorted_t[0])

    # 7. release device memory, stream and device
    lib.aclrtFree(tokens_addr[0])
    lib.aclrtFree(indices_addr[0])
    lib.aclrtFree(permuted_addr[0])
    lib.aclrtFree(sorted_addr[0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    finalize(device_id, stream[0])
    log_print("moe_token_permute: %s\n", "MISMATCH" if mismatches else "OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
