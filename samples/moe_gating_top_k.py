"""aclnnMoeGatingTopK sample: a line-by-line port of samples/moe_gating_top_k.c through aclnn_moe.capi.

x [3, 16] fp32, bias [16]: 4 groups of 4 experts, keep the 2 best groups by the sum of their top-2 scores, then
the top 4 experts; sigmoid, renormalised, scaled by 2.5. Exits non-zero when the result differs.
"""
import sys

from aclnn_moe.capi import ffi, lib

ROWS = 3
EXPERTS = 16
K = 4


def check_ret(ret, what):
    if ret != lib.ACL_SUCCESS:
        print(f"{what} failed. ERROR: {ret} ({ffi.string(lib.aclGetRecentErrMsg()).decode()})")
        sys.exit(ret)


def get_shape_size(shape):
    size = 1
    for d in shape:
        size *= d
    return size


def init(device_id):
    # fixed pattern: initialise ACL, select the device, create a stream (returned as an aclrtStream *)
    check_ret(lib.aclInit(ffi.NULL), "aclInit")
    check_ret(lib.aclrtSetDevice(device_id), "aclrtSetDevice")
    stream = ffi.new("aclrtStream *")
    check_ret(lib.aclrtCreateStream(stream), "aclrtCreateStream")
    return stream


def create_acl_tensor(host_data, elem_size, shape, device_addr, data_type, tensor):
    """device copy of host_data (a cffi array) and a contiguous ND tensor over it"""
    size = get_shape_size(shape) * elem_size
    check_ret(lib.aclrtMalloc(device_addr, size, lib.ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc")
    check_ret(lib.aclrtMemcpy(device_addr[0], size, host_data, size, lib.ACL_MEMCPY_HOST_TO_DEVICE), "aclrtMemcpy")
    strides = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        strides[i] = shape[i + 1] * strides[i + 1]
    c_shape = ffi.new("int64_t[]", shape)
    tensor[0] = lib.aclCreateTensor(c_shape, len(shape), data_type, ffi.new("int64_t[]", strides), 0,
                                    lib.ACL_FORMAT_ND, c_shape, len(shape), device_addr[0])
    if tensor[0] == ffi.NULL:
        print("aclCreateTensor failed.")
        sys.exit(1)


def main():
    # 1. device and stream
    device_id = 0
    stream = init(device_id)

    # 2. inputs and outputs
    x_shape = [ROWS, EXPERTS]
    bias_shape = [EXPERTS]
    y_shape = [ROWS, K]
    expert_idx_shape = [ROWS, K]
    norm_out_shape = [ROWS, EXPERTS]
    x_host_data = ffi.new("float[]", ROWS * EXPERTS)
    bias_host_data = ffi.new("float[]", EXPERTS)
    y_host_data = ffi.new("float[]", ROWS * K)
    expert_idx_host_data = ffi.new("int32_t[]", ROWS * K)
    norm_out_host_data = ffi.new("float[]", ROWS * EXPERTS)
    for r in range(ROWS):
        for e in range(EXPERTS):
            x_host_data[r * EXPERTS + e] = ((e * 7 + r * 5) % 16) * 0.25 - 2.0
    for e in range(EXPERTS):
        bias_host_data[e] = ((e * 3) % 8) * 0.125 - 0.5

    x_addr, bias_addr, y_addr, expert_idx_addr, norm_out_addr = (ffi.new("void **") for _ in range(5))
    x, bias, y, expert_idx, norm_out = (ffi.new("aclTensor **") for _ in range(5))
    create_acl_tensor(x_host_data, 4, x_shape, x_addr, lib.ACL_FLOAT, x)
    create_acl_tensor(bias_host_data, 4, bias_shape, bias_addr, lib.ACL_FLOAT, bias)
    create_acl_tensor(y_host_data, 4, y_shape, y_addr, lib.ACL_FLOAT, y)
    create_acl_tensor(expert_idx_host_data, 4, expert_idx_shape, expert_idx_addr, lib.ACL_INT32, expert_idx)
    create_acl_tensor(norm_out_host_data, 4, norm_out_shape, norm_out_addr, lib.ACL_FLOAT, norm_out)

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream
    k, k_group, group_count, group_select_mode, renorm, norm_type = K, 2, 4, 1, 0, 1
    out_flag = False
    routed_scaling_factor, eps = 2.5, 1e-20
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    check_ret(lib.aclnnMoeGatingTopKGetWorkspaceSize(x[0], bias[0], k, k_group, group_count, group_select_mode,
                                                     renorm, norm_type, out_flag, routed_scaling_factor, eps, y[0],
                                                     expert_idx[0], norm_out[0], workspace_size, executor),
              "aclnnMoeGatingTopKGetWorkspaceSize")
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        check_ret(lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST),
                  "allocate workspace")
    check_ret(lib.aclnnMoeGatingTopK(workspace_addr[0], workspace_size[0], executor[0], stream[0]),
              "aclnnMoeGatingTopK")

    # 4. wait for the stream
    check_ret(lib.aclrtSynchronizeStream(stream[0]), "aclrtSynchronizeStream")

    # 5. results back to the host, printed and checked
    y_result = ffi.new("float[]", ROWS * K)
    idx_result = ffi.new("int32_t[]", ROWS * K)
    nbytes = ffi.sizeof(y_result)
    check_ret(lib.aclrtMemcpy(y_result, nbytes, y_addr[0], nbytes, lib.ACL_MEMCPY_DEVICE_TO_HOST), "copy y")
    nbytes = ffi.sizeof(idx_result)
    check_ret(lib.aclrtMemcpy(idx_result, nbytes, expert_idx_addr[0], nbytes, lib.ACL_MEMCPY_DEVICE_TO_HOST),
              "copy expertIdx")
    expected_idx = [2, 13, 15, 1, 15, 5, 6, 12, 5, 12, 7, 13]
    expected_y = [8.186376095e-01, 6.800619364e-01, 5.629075766e-01, 4.383928180e-01,
                  7.482275963e-01, 4.575898945e-01, 7.796899080e-01, 5.144925714e-01,
                  7.488800287e-01, 7.876820564e-01, 6.543464065e-01, 3.090913296e-01]
    mismatches = 0
    for i in range(ROWS * K):
        ok = idx_result[i] == expected_idx[i] and abs(y_result[i] - expected_y[i]) <= 1e-5 * abs(expected_y[i])
        mismatches += not ok
        print(f"row {i // K}: expertIdx {idx_result[i]} y {y_result[i]:f}{'' if ok else '   <-- MISMATCH'}")

    # 6. release tensors
    for t in (x, bias, y, expert_idx, norm_out):
        lib.aclDestroyTensor(t[0])

    # 7. release device memory, stream and device
    for a in (x_addr, bias_addr, y_addr, expert_idx_addr, norm_out_addr):
        lib.aclrtFree(a[0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    lib.aclrtDestroyStream(stream[0])
    lib.aclrtResetDevice(device_id)
    lib.aclFinalize()
    print("moe_gating_top_k: FAILED" if mismatches else "moe_gating_top_k: OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
