"""aclnnMoeReRouting sample: samples/moe_re_routing.c line by line through aclnn_moe.capi (the shared steps are in
_aclnn_sample.py, the port of aclnn_sample.h).

6 int8 tokens arrived grouped by source rank, then local expert, expertTokenNumPerRank = [[1, 2], [2, 1]].
Re-routing puts them expert-major: gather index [0, 3, 4, 1, 2, 5], scales follow the tokens, expertTokenNum =
[3, 3]. Exits non-zero when a result differs.
"""
import sys

from _aclnn_sample import check_ret, copy_to_host, create_acl_tensor, finalize, init, log_print
from aclnn_moe.capi import ffi, lib

A = 6  # tokens
H = 4  # hidden size
N = 2  # ranks
E = 2  # local experts


def main():
    # 1. device and stream
    device_id = 0
    stream = ffi.new("aclrtStream *")
    ret = init(device_id, stream)
    check_ret(ret == 0, ret, "Init acl failed. ERROR: %d\n", ret)

    # 2. inputs and outputs: token t holds the values 10*t .. 10*t+3, its scale is t/2
    tokens_host_data = ffi.new("int8_t[]", A * H)
    scales_host_data = ffi.new("float[]", A)
    for t in range(A):
        for j in range(H):
            tokens_host_data[t * H + j] = 10 * t + j
        scales_host_data[t] = 0.5 * t
    counts_host_data = ffi.new("int32_t[]", [1, 2, 2, 1])
    permute_tokens_host_data = ffi.new("int8_t[]", A * H)
    permute_scales_host_data = ffi.new("float[]", A)
    permute_idx_host_data = ffi.new("int32_t[]", A)
    expert_token_num_host_data = ffi.new("int32_t[]", E)
    tokens_shape, counts_shape, a_shape, e_shape = [A, H], [N, E], [A], [E]
    tokens_addr, counts_addr, scales_addr = (ffi.new("void **") for _ in range(3))
    permute_tokens_addr, permute_scales_addr, permute_idx_addr, expert_token_num_addr = (
        ffi.new("void **") for _ in range(4))
    tokens, counts, scales = (ffi.new("aclTensor **") for _ in range(3))
    permute_tokens, permute_scales, permute_idx, expert_token_num = (ffi.new("aclTensor **") for _ in range(4))
    ret = create_acl_tensor(tokens_host_data, ffi.sizeof("int8_t"), tokens_shape, 2, tokens_addr, lib.ACL_INT8, tokens)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(counts_host_data, ffi.sizeof("int32_t"), counts_shape, 2, counts_addr, lib.ACL_INT32,
                            counts)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(scales_host_data, ffi.sizeof("float"), a_shape, 1, scales_addr, lib.ACL_FLOAT, scales)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(permute_tokens_host_data, ffi.sizeof("int8_t"), tokens_shape, 2, permute_tokens_addr,
                            lib.ACL_INT8, permute_tokens)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(permute_scales_host_data, ffi.sizeof("float"), a_shape, 1, permute_scales_addr,
                            lib.ACL_FLOAT, permute_scales)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(permute_idx_host_data, ffi.sizeof("int32_t"), a_shape, 1, permute_idx_addr, lib.ACL_INT32,
                            permute_idx)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(expert_token_num_host_data, ffi.sizeof("int32_t"), e_shape, 1, expert_token_num_addr,
                            lib.ACL_INT32, expert_token_num)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    expert_token_num_type = 1  # count mode
    idx_type = 0  # gather index

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeReRoutingGetWorkspaceSize(tokens[0], counts[0], scales[0], expert_token_num_type, idx_type,
                                                permute_tokens[0], permute_scales[0], permute_idx[0],
                                                expert_token_num[0], workspace_size, executor)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeReRoutingGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        ret = lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret(ret == lib.ACL_SUCCESS, ret, "allocate workspace failed. ERROR: %d\n", ret)
    ret = lib.aclnnMoeReRouting(workspace_addr[0], workspace_size[0], executor[0], stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeReRouting failed. ERROR: %d (%s)\n", ret, lib.aclGetRecentErrMsg())

    # 4. wait for the stream
    ret = lib.aclrtSynchronizeStream(stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtSynchronizeStream failed. ERROR: %d\n", ret)

    # 5. results back to the host, printed and checked
    out_tokens = ffi.new("int8_t[]", A * H)
    out_scales = ffi.new("float[]", A)
    out_idx, out_num = ffi.new("int32_t[]", A), ffi.new("int32_t[]", E)
    ret = copy_to_host(out_tokens, permute_tokens_addr[0], ffi.sizeof(out_tokens))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = copy_to_host(out_scales, permute_scales_addr[0], ffi.sizeof(out_scales))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = copy_to_host(out_idx, permute_idx_addr[0], ffi.sizeof(out_idx))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = copy_to_host(out_num, expert_token_num_addr[0], ffi.sizeof(out_num))
    check_ret(ret == lib.ACL_SUCCESS, ret)

    expected_idx = ffi.new("int32_t[]", [0, 3, 4, 1, 2, 5])
    expected_num = ffi.new("int32_t[]", [3, 3])
    mismatches = 0
    for j in range(A):
        bad = (out_idx[j] != expected_idx[j] or out_scales[j] != scales_host_data[expected_idx[j]] or
               ffi.buffer(out_tokens + j * H, H)[:] != ffi.buffer(tokens_host_data + expected_idx[j] * H, H)[:])
        mismatches += bad
        log_print("permuteTokenIdx[%d] is: %d, permuteTokens[%d] is: [%d, %d, %d, %d], "
                  "permutePerTokenScales[%d] is: %.1f%s\n",
                  j, out_idx[j], j, out_tokens[j * H], out_tokens[j * H + 1], out_tokens[j * H + 2],
                  out_tokens[j * H + 3], j, out_scales[j], "   <-- MISMATCH" if bad else "")
    for e in range(E):
        bad = out_num[e] != expected_num[e]
        mismatches += bad
        log_print("expertTokenNum[%d] is: %d%s\n", e, out_num[e], "   <-- MISMATCH" if bad else "")

    # 6. release tensors
    lib.aclDestroyTensor(tokens[0])
    lib.aclDestroyTensor(counts[0])
    lib.aclDestroyTensor(scales[0])
    lib.aclDestroyTensor(permute_tokens[0])
    lib.aclDestroyTensor(permute_scales[0])
    lib.aclDestroyTensor(permute_idx[0])
    lib.aclDestroyTensor(expert_token_num[0])

    # 7. release device memory, stream and device
    lib.aclrtFree(tokens_addr[0])
    lib.aclrtFree(counts_addr[0])
    lib.aclrtFree(scales_addr[0])
    lib.aclrtFree(permute_tokens_addr[0])
    lib.aclrtFree(permute_scales_addr[0])
    lib.aclrtFree(permute_idx_addr[0])
    lib.aclrtFree(expert_token_num_addr[0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    finalize(device_id, stream[0])
    log_print("moe_re_routing: %s\n", "MISMATCH" if mismatches else "OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
