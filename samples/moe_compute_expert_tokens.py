"""aclnnMoeComputeExpertTokens sample: a line-by-line port of samples/moe_compute_expert_tokens.c through
aclnn_moe.capi.

sortedExperts = [0, 0, 1, 3, 3, 3, 3, 5, 7, 7], numExperts = 8: out[i] = rows handled by experts 0..i =
[2, 3, 3, 7, 7, 8, 8, 10]. Exits non-zero when the result differs.
"""
import sys

from aclnn_moe.capi import ffi, lib

ROWS = 10
NUM_EXPERTS = 8


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


def create_acl_tensor(host_data, count, device_addr, tensor):
    """device copy of a 1-D int32 host array and a contiguous ND tensor over it"""
    size = count * ffi.sizeof("int32_t")
    check_ret(lib.aclrtMalloc(device_addr, size, lib.ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc")
    check_ret(lib.aclrtMemcpy(device_addr[0], size, host_data, size, lib.ACL_MEMCPY_HOST_TO_DEVICE), "aclrtMemcpy")
    shape = ffi.new("int64_t[1]", [count])
    strides = ffi.new("int64_t[1]", [1])
    tensor[0] = lib.aclCreateTensor(shape, 1, lib.ACL_INT32, strides, 0, lib.ACL_FORMAT_ND, shape, 1, device_addr[0])
    if tensor[0] == ffi.NULL:
        print("aclCreateTensor failed.")
        sys.exit(1)


def main():
    # 1. device and stream
    device_id = 0
    stream = init(device_id)

    # 2. input and output
    sorted_experts_host_data = ffi.new("int32_t[]", [0, 0, 1, 3, 3, 3, 3, 5, 7, 7])
    out_host_data = ffi.new("int32_t[]", NUM_EXPERTS)
    num_experts = NUM_EXPERTS
    sorted_experts_addr, out_addr = ffi.new("void **"), ffi.new("void **")
    sorted_experts, out = ffi.new("aclTensor **"), ffi.new("aclTensor **")
    create_acl_tensor(sorted_experts_host_data, ROWS, sorted_experts_addr, sorted_experts)
    create_acl_tensor(out_host_data, NUM_EXPERTS, out_addr, out)

    # 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream
    workspace_size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    check_ret(lib.aclnnMoeComputeExpertTokensGetWorkspaceSize(sorted_experts[0], num_experts, out[0], workspace_size,
                                                              executor),
              "aclnnMoeComputeExpertTokensGetWorkspaceSize")
    workspace_addr = ffi.new("void **")
    if workspace_size[0] > 0:
        check_ret(lib.aclrtMalloc(workspace_addr, workspace_size[0], lib.ACL_MEM_MALLOC_HUGE_FIRST),
                  "allocate workspace")
    check_ret(lib.aclnnMoeComputeExpertTokens(workspace_addr[0], workspace_size[0], executor[0], stream[0]),
              "aclnnMoeComputeExpertTokens")

    # 4. wait for the stream
    check_ret(lib.aclrtSynchronizeStream(stream[0]), "aclrtSynchronizeStream")

    # 5. result back to the host, printed and checked
    result = ffi.new("int32_t[]", NUM_EXPERTS)
    nbytes = ffi.sizeof(result)
    check_ret(lib.aclrtMemcpy(result, nbytes, out_addr[0], nbytes, lib.ACL_MEMCPY_DEVICE_TO_HOST), "copy result")
    expected = [2, 3, 3, 7, 7, 8, 8, 10]
    mismatches = 0
    for i in range(NUM_EXPERTS):
        mismatches += result[i] != expected[i]
        print(f"out[{i}] is: {result[i]}{'' if result[i] == expected[i] else '   <-- MISMATCH'}")

    # 6. release tensors
    lib.aclDestroyTensor(sorted_experts[0])
    lib.aclDestroyTensor(out[0])

    # 7. release device memory, stream and device
    lib.aclrtFree(sorted_experts_addr[0])
    lib.aclrtFree(out_addr[0])
    if workspace_size[0] > 0:
        lib.aclrtFree(workspace_addr[0])
    lib.aclrtDestroyStream(stream[0])
    lib.aclrtResetDevice(device_id)
    lib.aclFinalize()
    print("moe_compute_expert_tokens: FAILED" if mismatches else "moe_compute_expert_tokens: OK")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
