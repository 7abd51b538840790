"""aclnnMoeTokenPermuteWithRoutingMap sample: samples/moe_token_permute_with_routing_map.c line by line through
aclnn_moe.capi (the shared steps are in _aclnn_sample.py, the port of aclnn_sample.h).

Three tokens valued 1, 2, 3 (hidden size 2), routing map [[1, 0, 1], [1, 1, 0], [0, 1, 1]], numOutTokens = 6:
rows expert by expert come from tokens [0, 1, 1, 2, 0, 2] with probs [0.6, 0.3, 0.7, 0.2, 0.4, 0.8], and
sortedIndices = [0, 4, 1, 2, 3, 5]. Exits non-zero when a result differs.
"""
import sys

from _aclnn_sample import check_ret, copy_to_host, create_acl_tensor, finalize, init, log_print
from aclnn_moe.capi import ffi, lib

T = 3  # tokens
E = 3  # experts
H = 2  # hidden size
ROWS = 6


def main():
    # 1. device and stream
    device_id = 0
    stream = ffi.new("aclrtStream *")
    ret = init(device_id, stream)
    check_ret(ret == 0, ret, "Init acl failed. ERROR: %d\n", ret)

    # 2. inputs and outputs
    tokens_shape, map_shape, permuted_shape, rows_shape = [T, H], [T, E], [ROWS, H], [ROWS]
    tokens_host_data = ffi.new("float[]", [1, 1, 2, 2, 3, 3])
    map_host_data = ffi.new("int8_t[]", [1, 0, 1, 1, 1, 0, 0, 1, 1])
    probs_host_data = ffi.new("float[]", [0.6, 0.0, 0.4, 0.3, 0.7, 0.0, 0.0, 0.2, 0.8])
    permuted_host_data = ffi.new("float[]", ROWS * H)
    permuted_probs_host_data = ffi.new("float[]", ROWS)
    sorted_host_data = ffi.new("int32_t[]", ROWS)
    num_out_tokens = ROWS
    drop_and_pad = False
    addrs = [ffi.new("void **") for _ in range(6)]
    tensors = [ffi.new("aclTensor **") for _ in range(6)]
    tokens, routing_map, probs, permuted, permuted_probs, sorted_t = tensors
    tokens_addr, map_addr, probs_addr, permuted_addr, permuted_probs_addr, sorted_addr = addrs
    ret = create_acl_tensor(tokens_host_data, ffi.sizeof("float"), tokens_shape, 2, tokens_addr, lib.ACL_FLOAT, tokens)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(map_host_data, ffi.sizeof("int8_t"), map_shape, 2, map_addr, lib.ACL_INT8, routing_map)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(probs_host_data, ffi.sizeof("float"), map_shape, 2, probs_addr, lib.ACL_FLOAT, probs)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(permuted_host_data, ffi.sizeof("float"), permuted_shape, 2, permuted_addr, lib.ACL_FLOAT,
                            permuted)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(permuted_probs_host_data, ffi.sizeof("float"), rows_shape, 1, permuted_probs_addr,
                            lib.ACL_FLOAT, permuted_probs)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(sorted_host_data, ffi.sizeof("int32_t"), rows_shape, 1, sorted_addr, lib.ACL_INT32,
                            sorted_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeTokenPermuteWithRoutingMapGetWorkspaceSize(tokens[0], routing_map[0], probs[0], num_out_tokens,
                                                                 drop_and_pad, permuted[0], permuted_probs[0],
                                                                 sorted_t[0], workspace_size, executor)
    check_ret(ret == lib.ACL_SUCCESS, ret,
              "aclnnMoeTokenPermuteWithRoutingMapGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        ret = lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret(ret == lib.ACL_SUCCESS, ret, "allocate workspace failed. ERROR: %d\n", ret)
    ret = lib.aclnnMoeTokenPermuteWithRoutingMap(workspace_addr[0], workspace_size[0], executor[0], stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeTokenPermuteWithRoutingMap failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())

    # 4. wait for the stream
    ret = lib.aclrtSynchronizeStream(stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtSynchronizeStream failed. ERROR: %d\n", ret)

    # 5. results back to the host, printed and checked
    permuted_data = ffi.new("float[]", ROWS * H)
    permuted_probs_data = ffi.new("float[]", ROWS)
    sorted_data = ffi.new("int32_t[]", ROWS)
    for dst, src in ((permuted_data, permuted_addr), (permuted_probs_data, permuted_probs_addr),
                     (sorted_data, sorted_addr)):
        ret = copy_to_host(dst, src[0], ffi.sizeof(dst))
        check_ret(ret == lib.ACL_SUCCESS, ret)
    expected_row = [1, 2, 2, 3, 1, 3]
    expected_probs = ffi.new("float[]", [0.6, 0.3, 0.7, 0.2, 0.4, 0.8])
    expected_sorted = [0, 4, 1, 2, 3, 5]
    mismatches = 0
    for i in range(ROWS * H):
        bad = permuted_data[i] != expected_row[i // H]
        mismatches += bad
        log_print("permuteTokensOut[%ld] is: %f%s\n", i, permuted_data[i], "   <-- MISMATCH" if bad else "")
    for i in range(ROWS):
        bad = permuted_probs_data[i] != expected_probs[i] or sorted_data[i] != expected_sorted[i]
        mismatches += bad
        log_print("permuteProbsOut[%ld] is: %f, sortedIndicesOut[%ld] is: %d%s\n", i, permuted_probs_data[i], i,
                  sorted_data[i], "   <-- MISMATCH" if bad else "")

    # 6. release tensors
    for t in tensors:
        lib.aclDestroyTensor(t[0])

    # 7. release device memory, stream and device
    for a in addrs:
        lib.aclrtFree(a[0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    finalize(device_id, stream[0])
    log_print("moe_token_permute_with_routing_map: %s\n", "MISMATCH" if mismatches else "OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
