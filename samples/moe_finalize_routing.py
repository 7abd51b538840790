"""aclnnMoeFinalizeRoutingV2 / aclnnMoeFinalizeRouting (V1) sample: samples/moe_finalize_routing.c line by line
through aclnn_moe.capi (the shared steps are in _aclnn_sample.py, the port of aclnn_sample.h).

N = 3 tokens, K = 2, H = 4, E = 2 (the aclnn doc example data), computed with V2 dropPadMode 0 (k-major index),
V2 dropPadMode 2 (the same routing row-major) and V1; all must match the formula evaluated here (to 1e-5
relative). Exits non-zero when a result differs.
"""
import sys

from _aclnn_sample import check_ret, copy_to_host, create_acl_tensor, finalize, init, log_print
from aclnn_moe.capi import ffi, lib

N = 3
K = 2
H = 4
E = 2


def run_phase2(name, fn, workspace_size, executor, stream):
    """phase 2 of this sample's three calls: allocate the workspace phase 1 asked for, run, wait for the stream"""
    workspace_addr = ffi.new("void **")
    if workspace_size > 0:
        ret = lib.aclrtMalloc(workspace_addr, workspace_size, lib.ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret(ret == lib.ACL_SUCCESS, ret, "allocate workspace failed. ERROR: %d\n", ret)
    ret = fn(workspace_addr[0], workspace_size, executor, stream)
    check_ret(ret == lib.ACL_SUCCESS, ret, "%s failed. ERROR: %d (%s)\n", name, ret, lib.aclGetRecentErrMsg())
    ret = lib.aclrtSynchronizeStream(stream)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclrtSynchronizeStream failed. ERROR: %d\n", ret)
    if workspace_size > 0:
        lib.aclrtFree(workspace_addr[0])
    return 0


def check_out(what, out_addr, expected):
    """out back to the host, printed and checked against expected; returns the number of mismatches"""
    result = ffi.new("float[]", N * H)
    ret = copy_to_host(result, out_addr, ffi.sizeof(result))
    check_ret(ret == lib.ACL_SUCCESS, N * H)
    mismatches = 0
    for i in range(N * H):
        diff, mag = result[i] - expected[i], abs(expected[i])
        bad = not (diff <= 1e-5 * (mag + 1.0) and -diff <= 1e-5 * (mag + 1.0))
        mismatches += bad
        log_print("%s result[%ld] is: %f%s\n", what, i, result[i], "   <-- MISMATCH" if bad else "")
    return mismatches


def main():
    # 1. device and stream
    device_id = 0
    stream = ffi.new("aclrtStream *")
    ret = init(device_id, stream)
    check_ret(ret == 0, ret, "Init acl failed. ERROR: %d\n", ret)

    # 2. inputs and outputs
    expanded_x_host_data = ffi.new("float[]", [0.1, 1.1, 2.1, 3.1, 4.1, 5.1, 6.1, 7.1,
                                               8.1, 9.1, 10.1, 11.1, 0.1, 1.1, 2.1, 3.1,
                                               4.1, 5.1, 6.1, 7.1, 8.1, 9.1, 10.1, 11.1])
    x1_host_data = ffi.new("float[]", [0.2, 1.2, 2.2, 3.2, 4.2, 5.2, 6.2, 7.2, 8.2, 9.2, 10.2, 11.2])
    x2_host_data = ffi.new("float[]", [0.2, 1.2, 2.2, 3.2, 4.2, 5.2, 6.2, 7.2, 8.2, 9.2, 10.2, 11.2])
    bias_host_data = ffi.new("float[]", [0.2, 0.4, 0.2, 0.4, 0.2, 0.4, 0.2, 0.4])
    scales_host_data = ffi.new("float[]", [1.3, 1.6, 1.2, 1.8, 1.2, 2.3])
    expert_idx_host_data = ffi.new("int32_t[]", [0, 1, 0, 1, 0, 1])
    row_idx_k_major_host_data = ffi.new("int32_t[]", [2, 1, 4, 3, 0, 5])  # position k*N + i
    row_idx_row_major_host_data = ffi.new("int32_t[]", N * K)  # the same routing at position i*K + k
    for i in range(N):
        for k in range(K):
            row_idx_row_major_host_data[i * K + k] = row_idx_k_major_host_data[k * N + i]
    out_host_data = ffi.new("float[]", N * H)

    # the expected result, in the operator's order: t = x + bias; t = t * scale; acc = acc + t
    expected = ffi.new("float[]", N * H)
    for i in range(N):
        for j in range(H):
            acc = x1_host_data[i * H + j] + x2_host_data[i * H + j]
            for k in range(K):
                row = row_idx_k_major_host_data[k * N + i]
                t = expanded_x_host_data[row * H + j] + bias_host_data[expert_idx_host_data[i * K + k] * H + j]
                t = t * scales_host_data[i * K + k]
                acc = acc + t
            expected[i * H + j] = acc

    expanded_x_shape, nh_shape, bias_shape = [N * K, H], [N, H], [E, H]
    nk_shape, row_idx_shape = [N, K], [N * K]
    expanded_x_addr, x1_addr, x2_addr, bias_addr, scales_addr = (ffi.new("void **") for _ in range(5))
    expert_idx_addr, row_idx_k_addr, row_idx_r_addr, out_addr = (ffi.new("void **") for _ in range(4))
    expanded_x, x1, x2, bias, scales, expert_idx = (ffi.new("aclTensor **") for _ in range(6))
    row_idx_k, row_idx_r, out = (ffi.new("aclTensor **") for _ in range(3))
    ret = create_acl_tensor(expanded_x_host_data, ffi.sizeof("float"), expanded_x_shape, 2, expanded_x_addr,
                            lib.ACL_FLOAT, expanded_x)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(x1_host_data, ffi.sizeof("float"), nh_shape, 2, x1_addr, lib.ACL_FLOAT, x1)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(x2_host_data, ffi.sizeof("float"), nh_shape, 2, x2_addr, lib.ACL_FLOAT, x2)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(bias_host_data, ffi.sizeof("float"), bias_shape, 2, bias_addr, lib.ACL_FLOAT, bias)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(scales_host_data, ffi.sizeof("float"), nk_shape, 2, scales_addr, lib.ACL_FLOAT, scales)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(expert_idx_host_data, ffi.sizeof("int32_t"), nk_shape, 2, expert_idx_addr, lib.ACL_INT32,
                            expert_idx)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(row_idx_k_major_host_data, ffi.sizeof("int32_t"), row_idx_shape, 1, row_idx_k_addr,
                            lib.ACL_INT32, row_idx_k)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(row_idx_row_major_host_data, ffi.sizeof("int32_t"), row_idx_shape, 1, row_idx_r_addr,
                            lib.ACL_INT32, row_idx_r)
    check_ret(ret == lib.ACL_SUCCESS, ret)
    ret = create_acl_tensor(out_host_data, ffi.sizeof("float"), nh_shape, 2, out_addr, lib.ACL_FLOAT, out)
    check_ret(ret == lib.ACL_SUCCESS, ret)

    # 3. the operator, three ways; each executor is consumed by its phase 2, each result checked
    mismatches = 0
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    drop_pad_modes = [0, 2]
    for m in range(2):
        ret = lib.aclnnMoeFinalizeRoutingV2GetWorkspaceSize(expanded_x[0], row_idx_k[0] if m == 0 else row_idx_r[0],
                                                            x1[0], x2[0], bias[0], scales[0], expert_idx[0],
                                                            drop_pad_modes[m], out[0], workspace_size, executor)
        check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeFinalizeRoutingV2GetWorkspaceSize failed. ERROR: %d (%s)\n",
                  ret, lib.aclGetRecentErrMsg())
        ret = run_phase2("aclnnMoeFinalizeRoutingV2", lib.aclnnMoeFinalizeRoutingV2, workspace_size[0], executor[0],
                         stream[0])
        check_ret(ret == 0, ret)
        mismatches += check_out("V2 dropPadMode 0" if m == 0 else "V2 dropPadMode 2", out_addr[0], expected)
    ret = lib.aclnnMoeFinalizeRoutingGetWorkspaceSize(expanded_x[0], x1[0], x2[0], bias[0], scales[0], row_idx_k[0],
                                                      expert_idx[0], out[0], workspace_size, executor)
    check_ret(ret == lib.ACL_SUCCESS, ret, "aclnnMoeFinalizeRoutingGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
              lib.aclGetRecentErrMsg())
    ret = run_phase2("aclnnMoeFinalizeRouting", lib.aclnnMoeFinalizeRouting, workspace_size[0], executor[0], stream[0])
    check_ret(ret == 0, ret)
    mismatches += check_out("V1", out_addr[0], expected)

    # 4. release tensors
    lib.aclDestroyTensor(expanded_x[0])
    lib.aclDestroyTensor(x1[0])
    lib.aclDestroyTensor(x2[0])
    lib.aclDestroyTensor(bias[0])
    lib.aclDestroyTensor(scales[0])
    lib.aclDestroyTensor(expert_idx[0])
    lib.aclDestroyTensor(row_idx_k[0])
    lib.aclDestroyTensor(row_idx_r[0])
    lib.aclDestroyTensor(out[0])

    # 5. release device memory, stream and device
    lib.aclrtFree(expanded_x_addr[0])
    lib.aclrtFree(x1_addr[0])
    lib.aclrtFree(x2_addr[0])
    lib.aclrtFree(bias_addr[0])
    lib.aclrtFree(scales_addr[0])
    lib.aclrtFree(expert_idx_addr[0])
    lib.aclrtFree(row_idx_k_addr[0])
    lib.aclrtFree(row_idx_r_addr[0])
    lib.aclrtFree(out_addr[0])
    finalize(device_id, stream[0])
    log_print("moe_finalize_routing: %s\n", "MISMATCH" if mismatches else "OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
