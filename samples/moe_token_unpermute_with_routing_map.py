"""aclnnMoeTokenUnpermuteWithRoutingMap sample: samples/moe_token_unpermute_with_routing_map.c line by line
through aclnn_moe.capi (the shared steps are in _aclnn_sample.py, the port of aclnn_sample.h).

The reverse of the routing-map permute sample: rows [1, 2, 2, 3, 1, 3] (hidden size 2), sortedIndices
[0, 4, 1, 2, 3, 5]; slot t*2 + k takes token t's k-th selected prob ([0.6, 0.4], [0.3, 0.7], [0.2, 0.8]) and the
tokens come back as 1, 2, 3. Exits non-zero when a result differs.
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
    permuted_shape, rows_shape, map_shape, out_shape = [ROWS, H], [ROWS], [T, E], [T, H]
    host = [(ffi.new("float[]", [1, 1, 2, 2, 2, 2, 3, 3, 1, 1, 3, 3]), "float", permuted_shape, lib.ACL_FLOAT),
            (ffi.new("int32_t[]", [0, 4, 1, 2, 3, 5]), "int32_t", rows_shape, lib.ACL_INT32),
            (ffi.new("int8_t[]", [1, 0, 1, 1, 1, 0, 0, 1, 1]), "int8_t", map_shape, lib.ACL_INT8),
            (ffi.new("float[]", [0.6, 0.0, 0.4, 0.3, 0.7, 0.0, 0.0, 0.2, 0.8]), "float", map_shape, lib.ACL_FLOAT),
            (ffi.new("float[]", T * H), "float", out_shape, lib.ACL_FLOAT),
            (ffi.new("int32_t[]", ROWS), "int32_t", rows_shape, lib.ACL_INT32),
            (ffi.new("int32_t[]", ROWS), "int32_t", rows_shape, lib.ACL_INT32),
            (ffi.new("float[]", ROWS), "float", rows_shape, lib.ACL_FLOAT)]
    addrs = [ffi.new("void **") for _ in host]
    tensors = [ffi.new("aclTensor **") for _ in host]
    for (data, ctype, shape, dtype), addr, tensor in zip(host, addrs, tensors):
        ret = create_acl_tensor(data, ffi.sizeof(ctype), shape, len(shape), addr, dtype, tensor)
        check_ret(ret == lib.ACL_SUCCESS, ret)
    permuted, sorted_t, routing_map, probs, out, out_index, token_id, permute_probs = (t[0] for t in tensors)
    restore_shape_host_data = ffi.new("int64_t[]", [T, H])
    restore_shape = lib.aclCreateIntArray(restore_shape_host_data, 2)
    check_ret(restore_shape != ffi.NULL, -1, "aclCreateIntArray failed.\n")
    padded_mode = False

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeTokenUnpermuteWithRoutingMapGetWorkspaceSize(permuted, sorted_t, routing_map, probs, padded_mode,
                                                                   restore_shape, out, out_index, token_id,
                                                                   permute_probs, workspace_size, executor)
    check_ret(ret == lib.ACL_SUCCESS, ret,
              "aclnnMoeTokenUnpermuteWithRoutingMapGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        ret = lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret(ret == lib.ACL_SUCCESS, ret, "allocate workspace failed. ERROR: %d\n", ret)
    ret = lib.aclnnMoeTokenUnpermuteWithRoutingMap(workspace_addr[0], workspace_size[0], executor[0], stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeTokenUnpermuteWithRoutingMap failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())

    # 4. wait for the stream
    ret = lib.aclrtSynchronizeStream(stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtSynchronizeStream failed. ERROR: %d\n", ret)

    # 5. results back to the host, printed and checked
    out_data = ffi.new("float[]", T * H)
    permute_probs_data = ffi.new("float[]", ROWS)
    ret = copy_to_host(out_data, addrs[4][0], ffi.sizeof(out_data))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = copy_to_host(permute_probs_data, addrs[7][0], ffi.sizeof(permute_probs_data))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    expected_probs = ffi.new("float[]", [0.6, 0.4, 0.3, 0.7, 0.2, 0.8])
    mismatches = 0
    for i in range(T * H):
        bad = not (abs(out_data[i] - (i // H + 1)) <= 1e-6)
        mismatches += bad
        log_print("unpermutedTokens[%ld] is: %f%s\n", i, out_data[i], "   <-- MISMATCH" if bad else "")
    for i in range(ROWS):
        bad = permute_probs_data[i] != expected_probs[i]
        mismatches += bad
        log_print("permuteProbs[%ld] is: %f%s\n", i, permute_probs_data[i], "   <-- MISMATCH" if bad else "")

    # 6. release tensors and arrays
    for t in tensors:
        lib.aclDestroyTensor(t[0])
    lib.aclDestroyIntArray(restore_shape)

    # 7. release device memory, stream and device
    for a in addrs:
        lib.aclrtFree(a[0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    finalize(device_id, stream[0])
    log_print("moe_token_unpermute_with_routing_map: %s\n", "MISMATCH" if mismatches else "OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
