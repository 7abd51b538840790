"""aclnnMoeTokenUnpermuteWithRoutingMapGrad sample: samples/moe_token_unpermute_with_routing_map_grad.c line by line
through aclnn_moe.capi (the shared steps are in _aclnn_sample.py, the port of aclnn_sample.h).

The backward of MoeTokenUnpermuteWithRoutingMap (dropAndPad false, with probs) for routingMap
[[1, 1, 0], [0, 1, 1], [1, 0, 1]], the permute's sortedIndices [0, 2, 3, 4, 1, 5] as outIndex and permuteTokenId:
each token's gradient times its slot's prob goes back to the slot's row, the probs gradient is the dot product of
the token's gradient with that row. Exits non-zero when a result differs.
"""
import sys

from _aclnn_sample import check_ret, copy_to_host, create_acl_tensor, finalize, init, log_print
from aclnn_moe.capi import ffi, lib

T = 3  # tokens
E = 3  # experts
K = 2  # experts per token
H = 2  # hidden size


def check(name, addr, expected):
    got = ffi.new("float[]", len(expected))
    ret = copy_to_host(got, addr, ffi.sizeof(got))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    mismatches = 0
    for i, e in enumerate(expected):
        bad = not (abs(got[i] - e) <= 1e-6)
        mismatches += bad
        log_print("%s[%ld] is: %f%s\n", name, i, got[i], "   <-- MISMATCH" if bad else "")
    return mismatches


def main():
    # 1. device and stream
    device_id = 0
    stream = ffi.new("aclrtStream *")
    ret = init(device_id, stream)
    check_ret(ret == 0, ret, "Init acl failed. ERROR: %d\n", ret)

    # 2. inputs and outputs
    index = [0, 2, 3, 4, 1, 5]
    specs = [  # host data, element size, shape, dtype
        (ffi.new("float[]", [1, 2, 3, 4, 5, 6]), "float", [T, H], lib.ACL_FLOAT),
        (ffi.new("int32_t[]", index), "int32_t", [T * K], lib.ACL_INT32),
        (ffi.new("int32_t[]", index), "int32_t", [T * K], lib.ACL_INT32),
        (ffi.new("int8_t[]", [1, 1, 0, 0, 1, 1, 1, 0, 1]), "int8_t", [T, E], lib.ACL_INT8),
        (ffi.new("float[]", [1, 0, 0, 1, 1, 1, 2, 0, 0, 2, 1, -1]), "float", [T * K, H], lib.ACL_FLOAT),
        (ffi.new("float[]", [0.5, 0.25, 0, 0, 1, 2, 3, 0, 0.5]), "float", [T, E], lib.ACL_FLOAT),
        (ffi.new("float[]", T * K * H), "float", [T * K, H], lib.ACL_FLOAT),
        (ffi.new("float[]", T * E), "float", [T, E], lib.ACL_FLOAT),
    ]
    addrs = [ffi.new("void **") for _ in specs]
    tensors = [ffi.new("aclTensor **") for _ in specs]
    for (data, ctype, shape, dtype), addr, tensor in zip(specs, addrs, tensors):
        ret = create_acl_tensor(data, ffi.sizeof(ctype), shape, len(shape), addr, dtype, tensor)
        check_ret(ret == lib.ACL_SUCCESS, ret)
    grad, out_index, token_id, map_t, permuted, probs, out, probs_out = (t[0] for t in tensors)

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeTokenUnpermuteWithRoutingMapGradGetWorkspaceSize(grad, out_index, token_id, map_t, permuted,
                                                                       probs, False, ffi.NULL, out, probs_out,
                                                                       workspace_size, executor)
    check_ret(ret == lib.ACL_SUCCESS, ret,
              "aclnnMoeTokenUnpermuteWithRoutingMapGradGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        ret = lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret(ret == lib.ACL_SUCCESS, ret, "allocate workspace failed. ERROR: %d\n", ret)
    ret = lib.aclnnMoeTokenUnpermuteWithRoutingMapGrad(workspace_addr[0], workspace_size[0], executor[0], stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeTokenUnpermuteWithRoutingMapGrad failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())

    # 4. wait for the stream
    ret = lib.aclrtSynchronizeStream(stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtSynchronizeStream failed. ERROR: %d\n", ret)

    # 5. results back to the host, printed and checked: row outIndex[i] = grad[i // K] * (the i-th selected prob)
    mismatches = check("permutedTokensGradOut", addrs[6][0], [0.5, 1, 15, 18, 0.25, 0.5, 3, 4, 6, 8, 2.5, 3])
    mismatches += check("probsGradOutOptional", addrs[7][0], [1, 3, 0, 0, 6, 8, 6, 0, -1])

    # 6. release tensors
    for t in tensors:
        lib.aclDestroyTensor(t[0])

    # 7. release device memory, stream and device
    for a in addrs:
        lib.aclrtFree(a[0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    finalize(device_id, stream[0])
    log_print("moe_token_unpermute_with_routing_map_grad: %s\n", "MISMATCH" if mismatches else "OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
