"""aclnnMoeInitRoutingQuantV2 sample (what torch_npu.npu_moe_init_routing_quant runs): samples/
moe_init_routing_quant_v2.c line by line through aclnn_moe.capi (the shared steps are in _aclnn_sample.py).

The w8a8 dispatch: dropless routing, dynamic int8 with a per-expert smooth scale [E, H]. expertIdx = [[1, 2],
[0, 1], [3, 2]] gives rows (token, expert) = (1, 0) (0, 1) (1, 1) (0, 2) (2, 2) (2, 3), expandedRowIdx =
[1, 3, 0, 2, 5, 4], counts [1, 2, 2, 1]; each row xs = x * smooth, s = max|xs| / 127, q = round(xs / s) with ties
away from zero. Exits non-zero when a result differs.
"""
import sys

import numpy as np

from _aclnn_sample import check_ret, copy_to_host, create_acl_tensor, finalize, init, log_print
from aclnn_moe.capi import ffi, lib

N = 3  # tokens
K = 2  # experts per token
H = 4  # hidden size
E = 4  # experts


def main():
    # 1. device and stream
    device_id = 0
    stream = ffi.new("aclrtStream *")
    ret = init(device_id, stream)
    check_ret(ret == 0, ret, "Init acl failed. ERROR: %d\n", ret)

    # 2. inputs and outputs
    x_shape, idx_shape, smooth_shape, expanded_x_shape = [N, H], [N, K], [E, H], [N * K, H]
    flat_shape, count_shape = [N * K], [E]
    x_values = [0.1, -0.2, 0.3, 0.9, 1.5, -1.1, 0.25, 0.05, -0.7, 0.6, 2.0, -3.0]
    smooth_values = [1, 1, 1, 1, 2, 1, 0.5, 1, 1, 1, 1, 4, 0.5, 0.5, 0.5, 0.5]
    x_host_data = ffi.new("float[]", x_values)
    expert_idx_host_data = ffi.new("int32_t[]", [1, 2, 0, 1, 3, 2])
    smooth_host_data = ffi.new("float[]", smooth_values)
    expanded_x_host_data = ffi.new("int8_t[]", N * K * H)
    zeros, scale_zeros = ffi.new("int32_t[]", N * K), ffi.new("float[]", N * K)
    active_num, expert_capacity, expert_num, drop_pad_mode = 0, 0, E, 0
    expert_tokens_count_or_cumsum_flag = 2  # 0: none, 1: cumsum, 2: count
    expert_tokens_before_capacity_flag = False
    quant_mode = 1  # 0: static, 1: dynamic
    addrs = [ffi.new("void **") for _ in range(7)]
    x_addr, expert_idx_addr, smooth_addr, expanded_x_addr, row_idx_addr, count_addr, scale_addr = addrs
    tensors = [ffi.new("aclTensor **") for _ in range(7)]
    x, expert_idx, smooth, expanded_x, row_idx, count, dynamic_scale = tensors
    for host, size, shape, addr, dtype, t in (
            (x_host_data, ffi.sizeof("float"), x_shape, x_addr, lib.ACL_FLOAT, x),
            (expert_idx_host_data, ffi.sizeof("int32_t"), idx_shape, expert_idx_addr, lib.ACL_INT32, expert_idx),
            (smooth_host_data, ffi.sizeof("float"), smooth_shape, smooth_addr, lib.ACL_FLOAT, smooth),
            (expanded_x_host_data, ffi.sizeof("int8_t"), expanded_x_shape, expanded_x_addr, lib.ACL_INT8, expanded_x),
            (zeros, ffi.sizeof("int32_t"), flat_shape, row_idx_addr, lib.ACL_INT32, row_idx),
            (zeros, ffi.sizeof("int32_t"), count_shape, count_addr, lib.ACL_INT32, count),
            (scale_zeros, ffi.sizeof("float"), flat_shape, scale_addr, lib.ACL_FLOAT, dynamic_scale)):
        ret = create_acl_tensor(host, size, shape, len(shape), addr, dtype, t)
        check_ret(ret == lib.ACL_SUCCESS, ret)

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream (no offset, no before-capacity)
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    ret = lib.aclnnMoeInitRoutingQuantV2GetWorkspaceSize(x[0], expert_idx[0], smooth[0], ffi.NULL, active_num,
                                                         expert_capacity, expert_num, drop_pad_mode,
                                                         expert_tokens_count_or_cumsum_flag,
                                                         expert_tokens_before_capacity_flag, quant_mode,
                                                         expanded_x[0], row_idx[0], count[0], ffi.NULL,
                                                         dynamic_scale[0], workspace_size, executor)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeInitRoutingQuantV2GetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        ret = lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret(ret == lib.ACL_SUCCESS, ret, "allocate workspace failed. ERROR: %d\n", ret)
    ret = lib.aclnnMoeInitRoutingQuantV2(workspace_addr[0], workspace_size[0], executor[0], stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeInitRoutingQuantV2 failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())

    # 4. wait for the stream
    ret = lib.aclrtSynchronizeStream(stream[0])
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtSynchronizeStream failed. ERROR: %d\n", ret)

    # 5. results back to the host, printed and checked
    expanded_x_data = ffi.new("int8_t[]", N * K * H)
    row_idx_data, count_data = ffi.new("int32_t[]", N * K), ffi.new("int32_t[]", E)
    scale_data = ffi.new("float[]", N * K)
    for host, dev in ((expanded_x_data, expanded_x_addr), (row_idx_data, row_idx_addr), (count_data, count_addr),
                      (scale_data, scale_addr)):
        ret = copy_to_host(host, dev[0], ffi.sizeof(host))
        check_ret(ret == lib.ACL_SUCCESS, ret)

    expected_x = [127, -93, 21, 4, 28, -28, 21, 127, 127, -47, 5, 2, 4, -7, 11, 127, -7, 6, 21, -127, -30, 25, 85,
                  -127]
    expected_row_idx = [1, 3, 0, 2, 5, 4]
    expected_count = [1, 2, 2, 1]
    row_token, row_expert = [1, 0, 1, 0, 2, 2], [0, 1, 1, 2, 2, 3]
    xs = np.array(x_values, np.float32).reshape(N, H)
    sm = np.array(smooth_values, np.float32).reshape(E, H)
    mismatches = 0
    for i in range(N * K * H):
        bad = expanded_x_data[i] != expected_x[i]
        mismatches += bad
        log_print("expandedX[%ld] is: %d%s\n", i, expanded_x_data[i], "   <-- MISMATCH" if bad else "")
    for i in range(N * K):
        bad = row_idx_data[i] != expected_row_idx[i]
        mismatches += bad
        log_print("expandedRowIdx[%ld] is: %d%s\n", i, row_idx_data[i], "   <-- MISMATCH" if bad else "")
    for e in range(E):
        bad = count_data[e] != expected_count[e]
        mismatches += bad
        log_print("expertTokensCount[%ld] is: %d%s\n", e, count_data[e], "   <-- MISMATCH" if bad else "")
    for r in range(N * K):
        m = np.max(np.abs(xs[row_token[r]] * sm[row_expert[r]]))  # max|x * smooth| in fp32, as the kernel
        bad = scale_data[r] != m / np.float32(127.0)
        mismatches += bad
        log_print("dynamicQuantScale[%ld] is: %f%s\n", r, scale_data[r], "   <-- MISMATCH" if bad else "")

    # 6. release tensors
    for t in tensors:
        lib.aclDestroyTensor(t[0])

    # 7. release device memory, stream and device
    for a in addrs:
        lib.aclrtFree(a[0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    finalize(device_id, stream[0])
    log_print("moe_init_routing_quant_v2: %s\n", "MISMATCH" if mismatches else "OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
