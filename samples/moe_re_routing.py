"""aclnnMoeReRouting sample: a line-by-line port of samples/moe_re_routing.c through aclnn_moe.capi.

6 int8 tokens arrived grouped by source rank, then local expert, expertTokenNumPerRank = [[1, 2], [2, 1]].
Re-routing puts them expert-major: gather index [0, 3, 4, 1, 2, 5], scales follow the tokens, expertTokenNum =
[3, 3]. Exits non-zero when a result differs.
"""
import sys

from aclnn_moe.capi import ffi, lib

A = 6  # tokens
H = 4  # hidden size
N = 2  # ranks
E = 2  # local experts


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
    strides = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        strides[i] = shape[i + 1] * strides[i + 1]
    dims = ffi.new("int64_t[]", shape)
    tensor[0] = lib.aclCreateTensor(dims, len(shape), data_type, ffi.new("int64_t[]", strides), 0,
                                    lib.ACL_FORMAT_ND, dims, len(shape), device_addr[0])
    if tensor[0] == ffi.NULL:
        print("aclCreateTensor failed.")
        sys.exit(1)


def main():
    # 1. device and stream
    device_id = 0
    stream = init(device_id)

    # 2. inputs and outputs: token t holds the values 10*t .. 10*t+3, its scale is t/2
    tokens_host_data = ffi.new("int8_t[]", [10 * t + j for t in range(A) for j in range(H)])
    scales_host_data = ffi.new("float[]", [0.5 * t for t in range(A)])
    counts_host_data = ffi.new("int32_t[]", [1, 2, 2, 1])
    permute_tokens_host_data = ffi.new("int8_t[]", A * H)
    permute_scales_host_data = ffi.new("float[]", A)
    permute_idx_host_data = ffi.new("int32_t[]", A)
    expert_token_num_host_data = ffi.new("int32_t[]", E)
    addrs = {name: ffi.new("void **") for name in ("tokens", "counts", "scales", "permute_tokens", "permute_scales",
                                                   "permute_idx", "expert_token_num")}
    tensors = {name: ffi.new("aclTensor **") for name in addrs}
    create_acl_tensor(tokens_host_data, [A, H], lib.ACL_INT8, addrs["tokens"], tensors["tokens"])
    create_acl_tensor(counts_host_data, [N, E], lib.ACL_INT32, addrs["counts"], tensors["counts"])
    create_acl_tensor(scales_host_data, [A], lib.ACL_FLOAT, addrs["scales"], tensors["scales"])
    create_acl_tensor(permute_tokens_host_data, [A, H], lib.ACL_INT8, addrs["permute_tokens"],
                      tensors["permute_tokens"])
    create_acl_tensor(permute_scales_host_data, [A], lib.ACL_FLOAT, addrs["permute_scales"],
                      tensors["permute_scales"])
    create_acl_tensor(permute_idx_host_data, [A], lib.ACL_INT32, addrs["permute_idx"], tensors["permute_idx"])
    create_acl_tensor(expert_token_num_host_data, [E], lib.ACL_INT32, addrs["expert_token_num"],
                      tensors["expert_token_num"])
    expert_token_num_type = 1  # count mode
    idx_type = 0  # gather index

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    t = tensors
    check_ret(lib.aclnnMoeReRoutingGetWorkspaceSize(t["tokens"][0], t["counts"][0], t["scales"][0],
                                                    expert_token_num_type, idx_type, t["permute_tokens"][0],
                                                    t["permute_scales"][0], t["permute_idx"][0],
                                                    t["expert_token_num"][0], workspace_size, executor),
              "aclnnMoeReRoutingGetWorkspaceSize")
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        check_ret(lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST),
                  "allocate workspace")
    check_ret(lib.aclnnMoeReRouting(workspace_addr[0], workspace_size[0], executor[0], stream[0]), "aclnnMoeReRouting")

    # 4. wait for the stream
    check_ret(lib.aclrtSynchronizeStream(stream[0]), "aclrtSynchronizeStream")

    # 5. results back to the host, printed and checked
    out_tokens = ffi.new("int8_t[]", A * H)
    out_scales = ffi.new("float[]", A)
    out_idx = ffi.new("int32_t[]", A)
    out_num = ffi.new("int32_t[]", E)
    for dst, name in ((out_tokens, "permute_tokens"), (out_scales, "permute_scales"), (out_idx, "permute_idx"),
                      (out_num, "expert_token_num")):
        n = ffi.sizeof(dst)
        check_ret(lib.aclrtMemcpy(dst, n, addrs[name][0], n, lib.ACL_MEMCPY_DEVICE_TO_HOST), "copy result")
    expected_idx = [0, 3, 4, 1, 2, 5]
    expected_num = [3, 3]
    mismatches = 0
    for j in range(A):
        src = expected_idx[j]
        row = [out_tokens[j * H + c] for c in range(H)]
        bad = (out_idx[j] != src or out_scales[j] != scales_host_data[src]
               or row != [tokens_host_data[src * H + c] for c in range(H)])
        mismatches += bad
        print(f"permuteTokenIdx[{j}] is: {out_idx[j]}, permuteTokens[{j}] = {row}, "
              f"permutePerTokenScales[{j}] = {out_scales[j]:.1f}{'   <-- MISMATCH' if bad else ''}")
    for e in range(E):
        mismatches += out_num[e] != expected_num[e]
        print(f"expertTokenNum[{e}] is: {out_num[e]}{'' if out_num[e] == expected_num[e] else '   <-- MISMATCH'}")

    # 6. release tensors
    for name in tensors:
        lib.aclDestroyTensor(tensors[name][0])

    # 7. release device memory, stream and device
    for name in addrs:
        lib.aclrtFree(addrs[name][0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    lib.aclrtDestroyStream(stream[0])
    lib.aclrtResetDevice(device_id)
    lib.aclFinalize()
    print("moe_re_routing: FAILED" if mismatches else "moe_re_routing: OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
