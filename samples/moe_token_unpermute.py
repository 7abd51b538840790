"""aclnnMoeTokenUnpermute sample: samples/moe_token_unpermute.c line by line through aclnn_moe.capi (the shared
steps are in _aclnn_sample.py, the port of aclnn_sample.h).

The reverse of the permute sample: six permuted rows [1, 3, 2, 3, 1, 2] (hidden size 2) and sortedIndices
[4, 0, 2, 5, 1, 3, 6, 7] go back to four tokens weighted by [[0.5, 0.5], [0.25, 0.75], [1, 0], [0.5, 0.5]]:
[1, 2, 3, 0] (the last token's rows were dropped). Exits non-zero when a result differs.
"""
import sys

from _aclnn_sample import check_ret, copy_to_host, create_acl_tensor, finalize, init, log_print
from aclnn_moe.capi import ffi, lib

T = 4  # tokens
K = 2  # experts per token
H = 2  # hidden size
ROWS = 6  # permuted rows (two were dropped)


def main():
    # 1. device and stream
    device_id = 0
    stream = ffi.new("aclrtStream *")
    ret = init(device_id, stream)
    check_ret(ret == 0, ret, "Init acl failed. ERROR: %d\n", ret)

    # 2. inputs and outputs
    permuted_shape, sorted_shape, probs_shape, out_shape = [ROWS, H], [T * K], [T, K], [T, H]
    permuted_host_data = ffi.new("float[]", [1, 1, 3, 3, 2, 2, 3, 3, 1, 1, 2, 2])
    sorted_host_data = ffi.new("int32_t[]", [4, 0, 2, 5, 1, 3, 6, 7])
    probs_host_data = ffi.new("float[]", [0.5, 0.5, 0.25, 0.75, 1.0, 0.0, 0.5, 0.5])
    out_host_data = ffi.new("float[]", T * H)
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

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeTokenUnpermuteGetWorkspaceSize(permuted[0], sorted_t[0], probs[0], padded_mode, ffi.NULL, out[0],
                                                     workspace_size, executor)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeTokenUnpermuteGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        ret = lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret(ret == lib.ACL_SUCCESS, ret, "allocate workspace failed. ERROR: %d\n", ret)
    ret = lib.aclnnMoeTokenUnpermute(workspace_addr[0], workspace_size[0], executor[0], stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeTokenUnpermute failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())

    # 4. wait for the stream
    ret = lib.aclrtSynchronizeStream(stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtSynchronizeStream failed. ERROR: %d\n", ret)

    # 5. result back to the host, printed and checked
    out_data = ffi.new("float[]", T * H)
    ret = copy_to_host(out_data, out_addr[0], ffi.sizeof(out_data))
    check_ret(ret == lib.ACL_SUCCESS, ret)
    expected_token = [1, 2, 3, 0]  # the value of each restored token
    mismatches = 0
    for i in range(T * H):
        bad = not (abs(out_data[i] - expected_token[i // H]) <= 1e-6)
        mismatches += bad
        log_print("out[%ld] is: %f%s\n", i, out_data[i], "   <-- MISMATCH" if bad else "")

    # 6. release tensors
    lib.aclDestroyTensor(permuted[0])
    lib.aclDestroyTensor(sorted_t[0])
    lib.aclDestroyTensor(probs[0])
    lib.aclDestroyTensor(out[0])

    # 7. release device memory, stream and device
    lib.aclrtFree(permuted_addr[0])
    lib.aclrtFree(sorted_addr[0])
    lib.aclrtFree(probs_addr[0])
    lib.aclrtFree(out_addr[0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    finalize(device_id, stream[0])
    log_print("moe_token_unpermute: %s\n", "MISMATCH" if mismatches else "OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
