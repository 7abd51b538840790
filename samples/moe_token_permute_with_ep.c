/*
 * aclnnMoeTokenPermuteWithEp sample, written the way the CANN aclnn samples are: init, device memory, tensors, the
 * two-phase call with a workspace, synchronize, copy back, check, release (the shared steps are in aclnn_sample.h).
 *
 * 3 tokens of hidden size 4 (valued 0.1, 0.2, 0.3) pick 2 experts each: indices = [[1, 2], [3, 1], [2, 3]], with
 * routing probabilities. Sorted by expert, stably: e1:(t0,k0) (t1,k1) | e2:(t0,k1) (t2,k0) | e3:(t1,k0) (t2,k1),
 * so sortedIndices = [0, 2, 4, 1, 3, 5]; this rank owns sorted rows [1, 5) of the permutation: tokens 1, 0, 2, 1
 * with probabilities 0.2, 0.3, 0.5, 0.4. Returns non-zero when a result differs.
 */
#include <stdint.h>
#include <stdio.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_token_permute_with_ep.h"

#define N 3    /* tokens */
#define K 2    /* experts per token */
#define H 4    /* hidden size */
#define ROWS 4 /* sorted rows this rank owns */

int main(void)
{
    /* 1. device and stream */
    int32_t deviceId = 0;
    aclrtStream stream;
    int ret = Init(deviceId, &stream);
    CHECK_RET(ret == 0, LOG_PRINT("Init acl failed. ERROR: %d\n", ret); return ret);

    /* 2. inputs and outputs */
    const int64_t xShape[2] = {N, H}, idxShape[2] = {N, K}, outShape[2] = {ROWS, H};
    const int64_t sortedShape[1] = {N * K}, probsOutShape[1] = {ROWS};
    const float xHostData[N * H] = {0.1f, 0.1f, 0.1f, 0.1f, 0.2f, 0.2f, 0.2f, 0.2f, 0.3f, 0.3f, 0.3f, 0.3f};
    const int32_t indicesHostData[N * K] = {1, 2, 3, 1, 2, 3};
    const float probsHostData[N * K] = {0.5f, 0.3f, 0.4f, 0.2f, 0.5f, 0.4f};
    const float outHostData[ROWS * H] = {0}, probsOutHostData[ROWS] = {0};
    const int32_t sortedHostData[N * K] = {0};
    int64_t rangeHostData[2] = {1, ROWS + 1}; /* this rank keeps rows [1, 5) of the expert-sorted order */
    void *xAddr = NULL, *indicesAddr = NULL, *probsAddr = NULL, *outAddr = NULL, *sortedAddr = NULL;
    void *probsOutAddr = NULL;
    aclTensor *x = NULL, *indices = NULL, *probs = NULL, *out = NULL, *sorted = NULL, *probsOut = NULL;
    ret = CreateAclTensor(xHostData, sizeof(float), xShape, 2, &xAddr, ACL_FLOAT, &x);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(indicesHostData, sizeof(int32_t), idxShape, 2, &indicesAddr, ACL_INT32, &indices);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(probsHostData, sizeof(float), idxShape, 2, &probsAddr, ACL_FLOAT, &probs);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(outHostData, sizeof(float), outShape, 2, &outAddr, ACL_FLOAT, &out);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(sortedHostData, sizeof(int32_t), sortedShape, 1, &sortedAddr, ACL_INT32, &sorted);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(probsOutHostData, sizeof(float), probsOutShape, 1, &probsOutAddr, ACL_FLOAT, &probsOut);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    aclIntArray *range = aclCreateIntArray(rangeHostData, 2);
    CHECK_RET(range != NULL, LOG_PRINT("aclCreateIntArray failed.\n"); return -1);
    int64_t numOutTokens = 0;
    bool paddedMode = false;

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream */
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeTokenPermuteWithEpGetWorkspaceSize(x, indices, probs, range, numOutTokens, paddedMode, out, sorted,
                                                     probsOut, &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclnnMoeTokenPermuteWithEpGetWorkspaceSize failed. ERROR: %d (%s)\n",
                                            ret, aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeTokenPermuteWithEp(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeTokenPermuteWithEp failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. results back to the host, printed and checked */
    float outData[ROWS * H], probsOutData[ROWS];
    int32_t sortedData[N * K];
    ret = CopyToHost(outData, outAddr, sizeof outData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(sortedData, sortedAddr, sizeof sortedData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(probsOutData, probsOutAddr, sizeof probsOutData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    static const int32_t expectedSorted[N * K] = {0, 2, 4, 1, 3, 5};
    static const float expectedRow[ROWS] = {0.2f, 0.1f, 0.3f, 0.2f}; /* the value of each kept row */
    static const float expectedProbs[ROWS] = {0.2f, 0.3f, 0.5f, 0.4f};
    int mismatches = 0;
    for (int64_t i = 0; i < N * K; i++) {
        int bad = sortedData[i] != expectedSorted[i];
        mismatches += bad;
        LOG_PRINT("sortedIndices[%ld] is: %d%s\n", (long)i, sortedData[i], bad ? "   <-- MISMATCH" : "");
    }
    for (int64_t i = 0; i < ROWS * H; i++) {
        int bad = outData[i] != expectedRow[i / H];
        mismatches += bad;
        LOG_PRINT("permuteTokens[%ld] is: %f%s\n", (long)i, outData[i], bad ? "   <-- MISMATCH" : "");
    }
    for (int64_t r = 0; r < ROWS; r++) {
        int bad = probsOutData[r] != expectedProbs[r];
        mismatches += bad;
        LOG_PRINT("permuteProbs[%ld] is: %f%s\n", (long)r, probsOutData[r], bad ? "   <-- MISMATCH" : "");
    }

    /* 6. release tensors and arrays */
    aclDestroyTensor(x);
    aclDestroyTensor(indices);
    aclDestroyTensor(probs);
    aclDestroyTensor(out);
    aclDestroyTensor(sorted);
    aclDestroyTensor(probsOut);
    aclDestroyIntArray(range);

    /* 7. release device memory, stream and device */
    aclrtFree(xAddr);
    aclrtFree(indicesAddr);
    aclrtFree(probsAddr);
    aclrtFree(outAddr);
    aclrtFree(sortedAddr);
    aclrtFree(probsOutAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    Finalize(deviceId, stream);
    LOG_PRINT("moe_token_permute_with_ep: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
