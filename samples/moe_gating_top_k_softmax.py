"""aclnnMoeGatingTopKSoftmax sample: samples/moe_gating_top_k_softmax.c line by line through aclnn_moe.capi (the
shared steps are in _aclnn_sample.py, the port of aclnn_sample.h).

Three tokens, four experts, k = 2; logits log([1, 2, 3, 4]) score [0.1, 0.2, 0.3, 0.4]: token 0 picks experts
3, 2 (0.4, 0.3), token 1 (reversed logits) 0, 1, token 2 is finished (experts read 4). rowIdxOut = [[0, 3],
[1, 4], [2, 5]]. Exits non-zero when a result differs.
"""
import sys

from _aclnn_sample import check_ret, copy_to_host, create_acl_tensor, finalize, init, log_print
from aclnn_moe.capi import ffi, lib

N = 3  # tokens
E = 4  # experts
K = 2


def main():
    # 1. device and stream
    device_id = 0
    stream = ffi.new("aclrtStream *")
    ret = init(device_id, stream)
    check_ret(ret == 0, ret, "Init acl failed. ERROR: %d\n", ret)

    # 2. inputs and outputs
    x_shape, finished_shape, out_shape = [N, E], [N], [N, K]
    log_of = [0.0, 0.69314718, 1.09861229, 1.38629436]  # log 1 .. log 4
    logits = [log_of[e] for e in range(E)] + [log_of[E - 1 - e] for e in range(E)] + [log_of[e] for e in range(E)]
    x_host_data = ffi.new("float[]", logits)
    finished_host_data = ffi.new("uint8_t[]", [0, 0, 1])
    y_host_data = ffi.new("float[]", N * K)
    idx_host_data = ffi.new("int32_t[]", N * K)
    row_host_data = ffi.new("int32_t[]", N * K)
    k = K
    x_addr, finished_addr, y_addr, idx_addr, row_addr = (ffi.new("void **") for _ in range(5))
    x, finished, y, idx, row = (ffi.new("aclTensor **") for _ in range(5))
    ret = create_acl_tensor(x_host_data, ffi.sizeof("float"), x_shape, 2, x_addr, lib.ACL_FLOAT, x)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(finished_host_data, ffi.sizeof("uint8_t"), finished_shape, 1, finished_addr, lib.ACL_BOOL,
                            finished)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(y_host_data, ffi.sizeof("float"), out_shape, 2, y_addr, lib.ACL_FLOAT, y)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(idx_host_data, ffi.sizeof("int32_t"), out_shape, 2, idx_addr, lib.ACL_INT32, idx)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(row_host_data, ffi.sizeof("int32_t"), out_shape, 2, row_addr, lib.ACL_INT32, row)
    check_ret(ret == lib.ACL_SUCCESS, ret)

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeGatingTopKSoftmaxGetWorkspaceSize(x[0], finished[0], k, y[0], idx[0], row[0], workspace_size,
                                                        executor)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeGatingTopKSoftmaxGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        ret = lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret(ret == lib.ACL_SUCCESS, ret, "allocate workspace failed. ERROR: %d\n", ret)
    ret = lib.aclnnMoeGatingTopKSoftmax(workspace_addr[0], workspace_size[0], executor[0], stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeGatingTopKSoftmax failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())

    # 4. wait for the stream
    ret = lib.aclrtSynchronizeStream(stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtSynchronizeStream failed. ERROR: %d\n", ret)

    # 5. results back to the host, printed and checked
    y_data = ffi.new("float[]", N * K)
    idx_data = ffi.new("int32_t[]", N * K)
    row_data = ffi.new("int32_t[]", N * K)
    for dst, src in ((y_data, y_addr), (idx_data, idx_addr), (row_data, row_addr)):
        ret = copy_to_host(dst, src[0], ffi.sizeof(dst))
        check_ret(ret == lib.ACL_SUCCESS, ret)
    expected_y = [0.4, 0.3, 0.4, 0.3, 0.4, 0.3]
    expected_idx = [3, 2, 0, 1, E, E]
    expected_row = [0, 3, 1, 4, 2, 5]
    mismatches = 0
    for i in range(N * K):
        bad = not (abs(y_data[i] - expected_y[i]) <= 1e-6) or idx_data[i] != expected_idx[i] or \
            row_data[i] != expected_row[i]
        mismatches += bad
        log_print("yOut[%ld] is: %f, expertIdxOut[%ld] is: %d, rowIdxOut[%ld] is: %d%s\n", i, y_data[i], i,
                  idx_data[i], i, row_data[i], "   <-- MISMATCH" if bad else "")

    # 6. release tensors
    for t in (x, finished, y, idx, row):
        lib.aclDestroyTensor(t[0])

    # 7. release device memory, stream and device
    for a in (x_addr, finished_addr, y_addr, idx_addr, row_addr):
        lib.aclrtFree(a[0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    finalize(device_id, stream[0])
    log_print("moe_gating_top_k_softmax: %s\n", "MISMATCH" if mismatches else "OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
