/*
 * aclnnMoeTokenUnpermuteWithEp sample, written the way the CANN aclnn samples are: init, device memory, tensors,
 * the two-phase call with a workspace, synchronize, copy back, check, release (the shared steps are in
 * aclnn_sample.h).
 *
 * The reverse of the aclnnMoeTokenPermuteWithEp sample: tokens valued 1, 2, 3 (hidden size 2) were routed to
 * indices = [[1, 2], [3, 1], [2, 3]] (sortedIndices = [0, 2, 4, 1, 3, 5]) and this rank holds the expert outputs
 * of sorted rows [1, 5). Each token sums its rows that fall in the window, weighted by its routing probabilities:
 * token 0 only has (t0,k1) -> 1*0.3; token 1: 2*0.4 + 2*0.2; token 2: 3*0.5. Returns non-zero when a result
 * differs.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_token_unpermute_with_ep.h"

#define N 3    /* tokens */
#define K 2    /* experts per token */
#define H 2    /* hidden size */
#define ROWS 4 /* sorted rows this rank holds */

int main(void)
{
    /* 1. device and stream */
    int32_t deviceId = 0;
    aclrtStream stream;
    int ret = Init(deviceId, &stream);
    CHECK_RET(ret == 0, LOG_PRINT("Init acl failed. ERROR: %d\n", ret); return ret);

    /* 2. inputs and outputs */
    const int64_t permutedShape[2] = {ROWS, H}, sortedShape[1] = {N * K}, probsShape[2] = {N, K};
    const int64_t outShape[2] = {N, H};
    const float permutedHostData[ROWS * H] = {2, 2, 1, 1, 3, 3, 2, 2};
    const int32_t sortedHostData[N * K] = {0, 2, 4, 1, 3, 5};
    const float probsHostData[N * K] = {0.5f, 0.3f, 0.4f, 0.2f, 0.5f, 0.4f};
    const float outHostData[N * H] = {0};
    int64_t rangeHostData[2] = {1, ROWS + 1};
    int64_t numTopk = K;
    bool paddedMode = false;
    void *permutedAddr = NULL, *sortedAddr = NULL, *probsAddr = NULL, *outAddr = NULL;
    aclTensor *permuted = NULL, *sorted = NULL, *probs = NULL, *out = NULL;
    ret = CreateAclTensor(permutedHostData, sizeof(float), permutedShape, 2, &permutedAddr, ACL_FLOAT, &permuted);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(sortedHostData, sizeof(int32_t), sortedShape, 1, &sortedAddr, ACL_INT32, &sorted);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(probsHostData, sizeof(float), probsShape, 2, &probsAddr, ACL_FLOAT, &probs);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(outHostData, sizeof(float), outShape, 2, &outAddr, ACL_FLOAT, &out);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    aclIntArray *range = aclCreateIntArray(rangeHostData, 2);
    CHECK_RET(range != NULL, LOG_PRINT("aclCreateIntArray failed.\n"); return -1);

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream */
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeTokenUnpermuteWithEpGetWorkspaceSize(permuted, sorted, probs, numTopk, range, paddedMode, NULL, out,
                                                       &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclnnMoeTokenUnpermuteWithEpGetWorkspaceSize failed. ERROR: %d (%s)\n",
                                            ret, aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeTokenUnpermuteWithEp(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeTokenUnpermuteWithEp failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. result back to the host, printed and checked */
    float outData[N * H];
    ret = CopyToHost(outData, outAddr, sizeof outData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    static const float expectedToken[N] = {0.3f, 1.2f, 1.5f}; /* the value of each restored token */
    int mismatches = 0;
    for (int64_t i = 0; i < N * H; i++) {
        int bad = !(fabsf(outData[i] - expectedToken[i / H]) <= 1e-6f);
        mismatches += bad;
        LOG_PRINT("out[%ld] is: %f%s\n", (long)i, outData[i], bad ? "   <-- MISMATCH" : "");
    }

    /* 6. release tensors and arrays */
    aclDestroyTensor(permuted);
    aclDestroyTensor(sorted);
    aclDestroyTensor(probs);
    aclDestroyTensor(out);
    aclDestroyIntArray(range);

    /* 7. release device memory, stream and device */
    aclrtFree(permutedAddr);
    aclrtFree(sortedAddr);
    aclrtFree(probsAddr);
    aclrtFree(outAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    Finalize(deviceId, stream);
    LOG_PRINT("moe_token_unpermute_with_ep: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
