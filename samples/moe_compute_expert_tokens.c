/*
 * aclnnMoeComputeExpertTokens sample, written the way the CANN aclnn samples are: init, device memory, tensors,
 * the two-phase call with a workspace, synchronize, copy back, check, release.
 *
 * sortedExperts = [0, 0, 1, 3, 3, 3, 3, 5, 7, 7] (expert of each routed row, sorted), numExperts = 8:
 * out[i] = rows handled by experts 0..i = [2, 3, 3, 7, 7, 8, 8, 10], the cumulative "group list" that a grouped
 * matmul consumes. Returns non-zero when the result differs.
 */
#include <stdint.h>
#include <stdio.h>

#include "acl/acl.h"
#include "aclnnop/aclnn_moe_compute_expert_tokens.h"

#define CHECK_RET(cond, return_expr) \
    do {                             \
        if (!(cond)) {               \
            return_expr;             \
        }                            \
    } while (0)

#define LOG_PRINT(message, ...)         \
    do {                                \
        printf(message, ##__VA_ARGS__); \
    } while (0)

#define ROWS 10
#define NUM_EXPERTS 8

static int Init(int32_t deviceId, aclrtStream *stream)
{
    /* fixed pattern: initialise ACL, select the device, create a stream */
    aclError ret = aclInit(NULL);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclInit failed. ERROR: %d\n", ret); return ret);
    ret = aclrtSetDevice(deviceId);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSetDevice failed. ERROR: %d\n", ret); return ret);
    ret = aclrtCreateStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtCreateStream failed. ERROR: %d\n", ret); return ret);
    return 0;
}

/* device copy of a 1-D int32 host array and a contiguous ND tensor over it */
static int CreateAclTensor(const int32_t *hostData, int64_t count, void **deviceAddr, aclTensor **tensor)
{
    size_t size = (size_t)count * sizeof(int32_t);
    aclError ret = aclrtMalloc(deviceAddr, size, ACL_MEM_MALLOC_HUGE_FIRST);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtMalloc failed. ERROR: %d\n", ret); return ret);
    ret = aclrtMemcpy(*deviceAddr, size, hostData, size, ACL_MEMCPY_HOST_TO_DEVICE);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtMemcpy failed. ERROR: %d\n", ret); return ret);
    const int64_t shape[1] = {count};
    const int64_t strides[1] = {1};
    *tensor = aclCreateTensor(shape, 1, ACL_INT32, strides, 0, ACL_FORMAT_ND, shape, 1, *deviceAddr);
    CHECK_RET(*tensor != NULL, LOG_PRINT("%s", "aclCreateTensor failed.\n"); return -1);
    return 0;
}

int main(void)
{
    /* 1. device and stream */
    int32_t deviceId = 0;
    aclrtStream stream;
    int ret = Init(deviceId, &stream);
    CHECK_RET(ret == 0, LOG_PRINT("Init acl failed. ERROR: %d\n", ret); return ret);

    /* 2. input and output */
    const int32_t sortedExpertsHostData[ROWS] = {0, 0, 1, 3, 3, 3, 3, 5, 7, 7};
    const int32_t outHostData[NUM_EXPERTS] = {0};
    int64_t numExperts = NUM_EXPERTS;
    void *sortedExpertsAddr = NULL, *outAddr = NULL;
    aclTensor *sortedExperts = NULL, *out = NULL;
    ret = CreateAclTensor(sortedExpertsHostData, ROWS, &sortedExpertsAddr, &sortedExperts);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(outHostData, NUM_EXPERTS, &outAddr, &out);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream */
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeComputeExpertTokensGetWorkspaceSize(sortedExperts, numExperts, out, &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeComputeExpertTokensGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
                        aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeComputeExpertTokens(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeComputeExpertTokens failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. result back to the host, printed and checked */
    int32_t result[NUM_EXPERTS];
    ret = aclrtMemcpy(result, sizeof result, outAddr, sizeof result, ACL_MEMCPY_DEVICE_TO_HOST);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("copy result from device to host failed. ERROR: %d\n", ret); return ret);
    static const int32_t expected[NUM_EXPERTS] = {2, 3, 3, 7, 7, 8, 8, 10};
    int mismatches = 0;
    for (int64_t i = 0; i < NUM_EXPERTS; i++) {
        if (result[i] != expected[i]) mismatches++;
        LOG_PRINT("out[%ld] is: %d%s\n", (long)i, result[i], result[i] == expected[i] ? "" : "   <-- MISMATCH");
    }

    /* 6. release tensors */
    aclDestroyTensor(sortedExperts);
    aclDestroyTensor(out);

    /* 7. release device memory, stream and device */
    aclrtFree(sortedExpertsAddr);
    aclrtFree(outAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    aclrtDestroyStream(stream);
    aclrtResetDevice(deviceId);
    aclFinalize();
    LOG_PRINT("%s\n", mismatches ? "moe_compute_expert_tokens: FAILED" : "moe_compute_expert_tokens: OK");
    return mismatches ? 1 : 0;
}
