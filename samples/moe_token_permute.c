/*
 * aclnnMoeTokenPermute sample, written the way the CANN aclnn samples are: init, device memory, tensors, the
 * two-phase call with a workspace, synchronize, copy back, check, release (the shared steps are in aclnn_sample.h).
 *
 * Four tokens valued 1..4 (hidden size 2) each pick K = 2 experts, indices = [[2, 0], [1, 2], [0, 1], [2, 2]].
 * Sorting the eight (token, slot) pairs by expert (ties keep their order) gives the source tokens
 * [0, 2, 1, 2, 0, 1, 3, 3]; numOutTokens = -2 drops the last two rows. sortedIndices tells where each pair
 * landed: [4, 0, 2, 5, 1, 3, 6, 7]. Returns non-zero when a result differs.
 */
#include <stdint.h>
#include <stdio.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_token_permute.h"

#define T 4    /* tokens */
#define K 2    /* experts per token */
#define H 2    /* hidden size */
#define ROWS 6 /* T*K - 2 rows kept */

int main(void)
{
    /* 1. device and stream */
    int32_t deviceId = 0;
    aclrtStream stream;
    int ret = Init(deviceId, &stream);
    CHECK_RET(ret == 0, LOG_PRINT("Init acl failed. ERROR: %d\n", ret); return ret);

    /* 2. inputs and outputs */
    const int64_t tokensShape[2] = {T, H}, indicesShape[2] = {T, K}, permutedShape[2] = {ROWS, H};
    const int64_t sortedShape[1] = {T * K};
    const float tokensHostData[T * H] = {1, 1, 2, 2, 3, 3, 4, 4};
    const int32_t indicesHostData[T * K] = {2, 0, 1, 2, 0, 1, 2, 2};
    const float permutedHostData[ROWS * H] = {0};
    const int32_t sortedHostData[T * K] = {0};
    int64_t numOutTokens = -2;
    bool paddedMode = false;
    void *tokensAddr = NULL, *indicesAddr = NULL, *permutedAddr = NULL, *sortedAddr = NULL;
    aclTensor *tokens = NULL, *indices = NULL, *permuted = NULL, *sorted = NULL;
    ret = CreateAclTensor(tokensHostData, sizeof(float), tokensShape, 2, &tokensAddr, ACL_FLOAT, &tokens);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(indicesHostData, sizeof(int32_t), indicesShape, 2, &indicesAddr, ACL_INT32, &indices);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(permutedHostData, sizeof(float), permutedShape, 2, &permutedAddr, ACL_FLOAT, &permuted);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(sortedHostData, sizeof(int32_t), sortedShape, 1, &sortedAddr, ACL_INT32, &sorted);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream */
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeTokenPermuteGetWorkspaceSize(tokens, indices, numOutTokens, paddedMode, permuted, sorted,
                                               &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclnnMoeTokenPermuteGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
                                            aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeTokenPermute(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclnnMoeTokenPermute failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. results back to the host, printed and checked */
    float permutedData[ROWS * H];
    int32_t sortedData[T * K];
    ret = CopyToHost(permutedData, permutedAddr, sizeof permutedData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(sortedData, sortedAddr, sizeof sortedData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    static const float expectedRow[ROWS] = {1, 3, 2, 3, 1, 2}; /* the value of each permuted row */
    static const int32_t expectedSorted[T * K] = {4, 0, 2, 5, 1, 3, 6, 7};
    int mismatches = 0;
    for (int64_t i = 0; i < ROWS * H; i++) {
        int bad = permutedData[i] != expectedRow[i / H];
        mismatches += bad;
        LOG_PRINT("permuteTokensOut[%ld] is: %f%s\n", (long)i, permutedData[i], bad ? "   <-- MISMATCH" : "");
    }
    for (int64_t i = 0; i < T * K; i++) {
        int bad = sortedData[i] != expectedSorted[i];
        mismatches += bad;
        LOG_PRINT("sortedIndicesOut[%ld] is: %d%s\n", (long)i, sortedData[i], bad ? "   <-- MISMATCH" : "");
    }

    /* 6. release tensors */
    aclDestroyTensor(tokens);
    aclDestroyTensor(indices);
    aclDestroyTensor(permuted);
    aclDestroyTensor(sorted);

    /* 7. release device memory, stream and device */
    aclrtFree(tokensAddr);
    aclrtFree(indicesAddr);
    aclrtFree(permutedAddr);
    aclrtFree(sortedAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    Finalize(deviceId, stream);
    LOG_PRINT("moe_token_permute: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
