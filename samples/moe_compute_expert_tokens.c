/*
 * aclnnMoeComputeExpertTokens sample, written the way the CANN aclnn samples are: init, device memory, tensors,
 * the two-phase call with a workspace, synchronize, copy back, check, release (the shared steps are in
 * aclnn_sample.h).
 *
 * sortedExperts = [0, 0, 1, 3, 3, 3, 3, 5, 7, 7] (expert of each routed row, sorted), numExperts = 8:
 * out[i] = rows handled by experts 0..i = [2, 3, 3, 7, 7, 8, 8, 10], the cumulative "group list" that a grouped
 * matmul consumes. Returns non-zero when the result differs.
 */
#include <stdint.h>
#include <stdio.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_compute_expert_tokens.h"

#define ROWS 10
#define NUM_EXPERTS 8

int main(void)
{
    /* 1. device and stream */
    int32_t deviceId = 0;
    aclrtStream stream;
    int ret = Init(deviceId, &stream);
    CHECK_RET(ret == 0, LOG_PRINT("Init acl failed. ERROR: %d\n", ret); return ret);

    /* 2. input and output */
    const int64_t sortedExpertsShape[1] = {ROWS}, outShape[1] = {NUM_EXPERTS};
    const int32_t sortedExpertsHostData[ROWS] = {0, 0, 1, 3, 3, 3, 3, 5, 7, 7};
    const int32_t outHostData[NUM_EXPERTS] = {0};
    int64_t numExperts = NUM_EXPERTS;
    void *sortedExpertsAddr = NULL, *outAddr = NULL;
    aclTensor *sortedExperts = NULL, *out = NULL;
    ret = CreateAclTensor(sortedExpertsHostData, sizeof(int32_t), sortedExpertsShape, 1, &sortedExpertsAddr,
                          ACL_INT32, &sortedExperts);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(outHostData, sizeof(int32_t), outShape, 1, &outAddr, ACL_INT32, &out);
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
    ret = CopyToHost(result, outAddr, sizeof result);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    static const int32_t expected[NUM_EXPERTS] = {2, 3, 3, 7, 7, 8, 8, 10};
    int mismatches = 0;
    for (int64_t i = 0; i < NUM_EXPERTS; i++) {
        int bad = result[i] != expected[i];
        mismatches += bad;
        LOG_PRINT("out[%ld] is: %d%s\n", (long)i, result[i], bad ? "   <-- MISMATCH" : "");
    }

    /* 6. release tensors */
    aclDestroyTensor(sortedExperts);
    aclDestroyTensor(out);

    /* 7. release device memory, stream and device */
    aclrtFree(sortedExpertsAddr);
    aclrtFree(outAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    Finalize(deviceId, stream);
    LOG_PRINT("moe_compute_expert_tokens: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
