"""aclnnMoeTokenUnpermuteWithEp sample: samples/moe_token_unpermute_with_ep.c line by line through aclnn_moe.capi
(the shared steps are in _aclnn_sample.py, the port of aclnn_sample.h).

The reverse of the permute sample: tokens valued 1, 2, 3 (hidden size 2) routed to indices = [[1, 2], [3, 1],
[2, 3]]; this rank holds the expert outputs of sorted rows [1, 5) and each token sums its rows in the window,
weighted by its probabilities: [0.3, 1.2, 1.5]. Exits non-zero when a result differs.
"""
import sys

from _aclnn_sample import check_ret, copy_to_host, create_acl_tensor, finalize, init, log_print
from aclnn_moe.capi import ffi, lib

N = 3  # tokens
K = 2  # experts per token
H = 2  # hidden size
ROWS = 4  # sorted rows this rank holds


def main():
    # 1. device and stream
    device_id = 0
    stream = ffi.new("aclrtStream *")
    ret = init(device_id, stream)
    check_ret(ret == 0, ret, "Init acl failed. ERROR: %d\n", ret)

    # 2. inputs and outputs
    permuted_shape, sorted_shape, probs_shape = [ROWS, H], [N * K], [N, K]
    out_shape = [N, H]
    permuted_host_data = ffi.new("float[]", [2, 2, 1, 1, 3, 3, 2, 2])
    sorted_host_data = ffi.new("int32_t[]", [0, 2, 4, 1, 3, 5])
    probs_host_data = ffi.new("float[]", [0.5, 0.3, 0.4, 0.2, 0.5, 0.4])
    out_host_data = ffi.new("float[]", N * H)
    range_host_data = ffi.new("int64_t[]", [1, ROWS + 1])
    num_topk = K
    padded_mode = False
    permuted_addr, sorted_addr, probs_addr, out_addr = (ffi.new("void **") for _ in range(4))
    permuted, sorted_t, probs, out = (ffi.new("aclTensor **") for _ in range(4))
    ret = create_acl_tensor(permuted_host_data, ffi.sizeof("float"), permuted_shape, 2, permuted_addr, lib.ACL_FLOAT,
                            permuted)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(sorted_host_data, ffi.sizeof("int32_t"), sorted_shape, 1, sorted_addr, lib.ACL_INT32,
                            sorted_t)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(probs_host_data, ffi.sizeof("float"), probs_shape, 2, probs_addr, lib.ACL_FLOAT, probs)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(out_host_data, ffi.sizeof("float"), out_shape, 2, out_addr, lib.ACL_FLOAT, out)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    range_array = lib.aclCreateIntArray(range_host_data, 2)
    check_ret(range_array != ffi.NULL, -1, "aclCreateIntArray failed.\n")

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeTokenUnpermuteWithEpGetWorkspaceSize(permuted[0], sorted_t[0], probs[0], num_topk, range_array,
                                                           padded_mode, ffi.NULL, out[0], workspace_size, executor)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeTokenUnpermuteWithEpGetWorkspaceSize failed. ERROR: %d (%s)\n",
              ret, lib.aclGetRecentErrMsg())
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        ret = lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret(ret == lib.ACL_SUCCESS, ret, "allocate workspace failed. ERROR: %d\n", ret)
    ret = lib.aclnnMoeTokenUnpermuteWithEp(workspace_addr[0], workspace_size[0], executor[0], stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeTokenUnpermuteWithEp failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())

    # 4. wait for the stream
    ret = lib.aclrtSynchronizeStream(stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtSynchronizeStream failed. ERROR: %d\n", ret)

    # 5. result back to the host, printed and checked
    out_data = ffi.new("float[]", N * H)
    ret = copy_to_host(out_data, out_addr[0], ffi.sizeof(out_data))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    expected_token = ffi.new("float[]", [0.3, 1.2, 1.5])  # the value of each restored token
    mismatches = 0
    for i in range(N * H):
        bad = not (abs(out_data[i] - expected_token[i // H]) <= 1e-6)
        mismatches += bad
        log_print("out[%ld] is: %f%s\n", i, out_data[i], "   <-- MISMATCH" if bad else "")

    # 6. release tensors and arrays
    lib.aclDestroyTensor(permuted[0])
    lib.aclDestroyTensor(sorted_t[0])
    lib.aclDestroyTensor(probs[0])
    lib.aclDestroyTensor(out[0])
    lib.aclDestroyIntArray(range_array)

    # 7. release device memory, stream and device
    lib.aclrtFree(permuted_addr[0])
    lib.aclrtFree(sorted_addr[0])
    lib.aclrtFree(probs_addr[0])
    lib.aclrtFree(out_addr[0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    finalize(device_id, stream[0])
    log_print("moe_token_unpermute_with_ep: %s\n", "MISMATCH" if mismatches else "OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
