"""aclnnMoeFinalizeRoutingV2 / aclnnMoeFinalizeRouting (V1) sample: a line-by-line port of
samples/moe_finalize_routing.c through aclnn_moe.capi.

N = 3 tokens, K = 2, H = 4, E = 2 (the aclnn doc example data), computed with V2 dropPadMode 0 (k-major index),
V2 dropPadMode 2 (the same routing row-major) and V1; all must match the formula evaluated here in fp32 (to 1e-5
relative). Exits non-zero when a result differs.
"""
import sys

from aclnn_moe.capi import ffi, lib

N = 3
K = 2
H = 4
E = 2


def check_ret(ret, what):
    if ret != lib.ACL_SUCCESS:
        print(f"{what} failed. ERROR: {ret} ({ffi.string(lib.aclGetRecentErrMsg()).decode()})")
        sys.exit(ret)


def init(device_id):
    # fixed pattern: initialise ACL, select the device, create a stream (returned as an aclrtStream *)
    check_ret(lib.aclInit(ffi.NULL), "aclInit")
    check_ret(lib.aclrtSetDevice(device_id), "aclrtSetDevice")
    stream = ffi.new("aclrtStream *")
    check_ret(lib.aclrtCreateStream(stream), "aclrtCreateStream")
    return stream


def create_acl_tensor(host_data, shape, data_type, device_addr, tensor):
    """device copy of a host array and a contiguous ND tensor of the given shape over it"""
    size = ffi.sizeof(host_data)
    check_ret(lib.aclrtMalloc(device_addr, size, lib.ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc")
    check_ret(lib.aclrtMemcpy(device_addr[0], size, host_data, size, lib.ACL_MEMCPY_HOST_TO_DEVICE), "aclrtMemcpy")
    strides = [shape[1], 1] if len(shape) == 2 else [1]
    dims = ffi.new("int64_t[]", shape)
    tensor[0] = lib.aclCreateTensor(dims, len(shape), data_type, ffi.new("int64_t[]", strides), 0,
                                    lib.ACL_FORMAT_ND, dims, len(shape), device_addr[0])
    if tensor[0] == ffi.NULL:
        print("aclCreateTensor failed.")
        sys.exit(1)


def run_phase2(name, fn, workspace_size, executor, stream):
    """allocate the workspace phase 1 asked for, run phase 2, wait for the stream"""
    workspace_addr = ffi.new("void **")
    if workspace_size > 0:
        check_ret(lib.aclrtMalloc(workspace_addr, workspace_size, lib.ACL_MEM_MALLOC_HUGE_FIRST), "allocate workspace")
    check_ret(fn(workspace_addr[0], workspace_size, executor, stream), name)
    check_ret(lib.aclrtSynchronizeStream(stream), "aclrtSynchronizeStream")
    if workspace_size > 0:
        lib.aclrtFree(workspace_addr[0])


def check_out(what, out_addr, expected):
    result = ffi.new("float[]", N * H)
    n = ffi.sizeof(result)
    check_ret(lib.aclrtMemcpy(result, n, out_addr, n, lib.ACL_MEMCPY_DEVICE_TO_HOST), "copy result")
    mismatches = 0
    for i in range(N * H):
        bad = abs(result[i] - expected[i]) > 1e-5 * (abs(expected[i]) + 1)
        mismatches += bad
        print(f"{what} result[{i}] is: {result[i]:f}{'   <-- MISMATCH' if bad else ''}")
    return mismatches


def main():
    # 1. device and stream
    device_id = 0
    stream = init(device_id)

    # 2. inputs and outputs
    expanded_x = [0.1, 1.1, 2.1, 3.1, 4.1, 5.1, 6.1, 7.1, 8.1, 9.1, 10.1, 11.1] * 2
    x1 = [0.2, 1.2, 2.2, 3.2, 4.2, 5.2, 6.2, 7.2, 8.2, 9.2, 10.2, 11.2]
    x2 = list(x1)
    bias = [0.2, 0.4] * 4
    scales = [1.3, 1.6, 1.2, 1.8, 1.2, 2.3]
    expert_idx = [0, 1, 0, 1, 0, 1]
    row_idx_k_major = [2, 1, 4, 3, 0, 5]  # position k*N + i
    row_idx_row_major = [row_idx_k_major[k * N + i] for i in range(N) for k in range(K)]  # position i*K + k
    host = {
        "expanded_x": (ffi.new("float[]", expanded_x), [N * K, H], lib.ACL_FLOAT),
        "x1": (ffi.new("float[]", x1), [N, H], lib.ACL_FLOAT),
        "x2": (ffi.new("float[]", x2), [N, H], lib.ACL_FLOAT),
        "bias": (ffi.new("float[]", bias), [E, H], lib.ACL_FLOAT),
        "scales": (ffi.new("float[]", scales), [N, K], lib.ACL_FLOAT),
        "expert_idx": (ffi.new("int32_t[]", expert_idx), [N, K], lib.ACL_INT32),
        "row_idx_k": (ffi.new("int32_t[]", row_idx_k_major), [N * K], lib.ACL_INT32),
        "row_idx_r": (ffi.new("int32_t[]", row_idx_row_major), [N * K], lib.ACL_INT32),
        "out": (ffi.new("float[]", N * H), [N, H], lib.ACL_FLOAT),
    }

    # the expected result, in the operator's fp32 order: t = x + bias; t = t * scale; acc = acc + t
    f32 = host["expanded_x"][0]  # reuse the float32 copies so the arithmetic below sees the same inputs
    expected = []
    for i in range(N):
        for j in range(H):
            acc = host["x1"][0][i * H + j] + host["x2"][0][i * H + j]
            for k in range(K):
                row = row_idx_k_major[k * N + i]
                t = f32[row * H + j] + host["bias"][0][expert_idx[i * K + k] * H + j]
                acc += t * host["scales"][0][i * K + k]
            expected.append(acc)

    addrs = {name: ffi.new("void **") for name in host}
    tensors = {name: ffi.new("aclTensor **") for name in host}
    for name, (data, shape, dtype) in host.items():
        create_acl_tensor(data, shape, dtype, addrs[name], tensors[name])
    t = {name: tensors[name][0] for name in tensors}

    # 3. the operator, three ways; each executor is consumed by its phase 2
    mismatches = 0
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    for drop_pad_mode, rows in ((0, t["row_idx_k"]), (2, t["row_idx_r"])):
        check_ret(lib.aclnnMoeFinalizeRoutingV2GetWorkspaceSize(t["expanded_x"], rows, t["x1"], t["x2"], t["bias"],
                                                                t["scales"], t["expert_idx"], drop_pad_mode, t["out"],
                                                                workspace_size, executor),
                  "aclnnMoeFinalizeRoutingV2GetWorkspaceSize")
        run_phase2("aclnnMoeFinalizeRoutingV2", lib.aclnnMoeFinalizeRoutingV2, workspace_size[0], executor[0],
                   stream[0])
        mismatches += check_out(f"V2 dropPadMode {drop_pad_mode}", addrs["out"][0], expected)
    check_ret(lib.aclnnMoeFinalizeRoutingGetWorkspaceSize(t["expanded_x"], t["x1"], t["x2"], t["bias"], t["scales"],
                                                          t["row_idx_k"], t["expert_idx"], t["out"], workspace_size,
                                                          executor),
              "aclnnMoeFinalizeRoutingGetWorkspaceSize")
    run_phase2("aclnnMoeFinalizeRouting", lib.aclnnMoeFinalizeRouting, workspace_size[0], executor[0], stream[0])
    mismatches += check_out("V1", addrs["out"][0], expected)

    # 4. release tensors
    for name in tensors:
        lib.aclDestroyTensor(tensors[name][0])

    # 5. release device memory, stream and device
    for name in addrs:
        lib.aclrtFree(addrs[name][0])
    lib.aclrtDestroyStream(stream[0])
    lib.aclrtResetDevice(device_id)
    lib.aclFinalize()
    print("moe_finalize_routing: FAILED" if mismatches else "moe_finalize_routing: OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
