/*
 * aclnnMoeTokenPermuteWithRoutingMap sample, written the way the CANN aclnn samples are: init, device memory,
 * tensors, the two-phase call with a workspace, synchronize, copy back, check, release (the shared steps are in
 * aclnn_sample.h).
 *
 * Three tokens valued 1, 2, 3 (hidden size 2) and a [3, 3] routing map [[1, 0, 1], [1, 1, 0], [0, 1, 1]]: two
 * experts per token, numOutTokens = 6. Rows are listed expert by expert (tokens ascending): tokens
 * [0, 1, 1, 2, 0, 2], their probs [0.6, 0.3, 0.7, 0.2, 0.4, 0.8], and sortedIndices gives each token's rows in
 * token order: [0, 4, 1, 2, 3, 5]. Returns non-zero when a result differs.
 */
#include <stdint.h>
#include <stdio.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_token_permute_with_routing_map.h"

#define T 3 /* tokens */
#define E 3 /* experts */
#define H 2 /* hidden size */
#define ROWS 6

int main(void)
{
    /* 1. device and stream */
    int32_t deviceId = 0;
    aclrtStream stream;
    int ret = Init(deviceId, &stream);
    CHECK_RET(ret == 0, LOG_PRINT("Init acl failed. ERROR: %d\n", ret); return ret);

    /* 2. inputs and outputs */
    const int64_t tokensShape[2] = {T, H}, mapShape[2] = {T, E}, permutedShape[2] = {ROWS, H}, rowsShape[1] = {ROWS};
    const float tokensHostData[T * H] = {1, 1, 2, 2, 3, 3};
    const int8_t mapHostData[T * E] = {1, 0, 1, 1, 1, 0, 0, 1, 1};
    const float probsHostData[T * E] = {0.6f, 0.0f, 0.4f, 0.3f, 0.7f, 0.0f, 0.0f, 0.2f, 0.8f};
    const float permutedHostData[ROWS * H] = {0}, permutedProbsHostData[ROWS] = {0};
    const int32_t sortedHostData[ROWS] = {0};
    int64_t numOutTokens = ROWS;
    bool dropAndPad = false;
    void *tokensAddr = NULL, *mapAddr = NULL, *probsAddr = NULL, *permutedAddr = NULL, *permutedProbsAddr = NULL,
         *sortedAddr = NULL;
    aclTensor *tokens = NULL, *map = NULL, *probs = NULL, *permuted = NULL, *permutedProbs = NULL, *sorted = NULL;
    ret = CreateAclTensor(tokensHostData, sizeof(float), tokensShape, 2, &tokensAddr, ACL_FLOAT, &tokens);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(mapHostData, sizeof(int8_t), mapShape, 2, &mapAddr, ACL_INT8, &map);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(probsHostData, sizeof(float), mapShape, 2, &probsAddr, ACL_FLOAT, &probs);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(permutedHostData, sizeof(float), permutedShape, 2, &permutedAddr, ACL_FLOAT, &permuted);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(permutedProbsHostData, sizeof(float), rowsShape, 1, &permutedProbsAddr, ACL_FLOAT,
                          &permutedProbs);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(sortedHostData, sizeof(int32_t), rowsShape, 1, &sortedAddr, ACL_INT32, &sorted);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream */
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeTokenPermuteWithRoutingMapGetWorkspaceSize(tokens, map, probs, numOutTokens, dropAndPad, permuted,
                                                             permutedProbs, sorted, &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclnnMoeTokenPermuteWithRoutingMapGetWorkspaceSize failed. ERROR: %d (%s)\n",
                                            ret, aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeTokenPermuteWithRoutingMap(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeTokenPermuteWithRoutingMap failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. results back to the host, printed and checked */
    float permutedData[ROWS * H], permutedProbsData[ROWS];
    int32_t sortedData[ROWS];
    ret = CopyToHost(permutedData, permutedAddr, sizeof permutedData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(permutedProbsData, permutedProbsAddr, sizeof permutedProbsData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(sortedData, sortedAddr, sizeof sortedData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    static const float expectedRow[ROWS] = {1, 2, 2, 3, 1, 3};
    static const float expectedProbs[ROWS] = {0.6f, 0.3f, 0.7f, 0.2f, 0.4f, 0.8f};
    static const int32_t expectedSorted[ROWS] = {0, 4, 1, 2, 3, 5};
    int mismatches = 0;
    for (int64_t i = 0; i < ROWS * H; i++) {
        int bad = permutedData[i] != expectedRow[i / H];
        mismatches += bad;
        LOG_PRINT("permuteTokensOut[%ld] is: %f%s\n", (long)i, permutedData[i], bad ? "   <-- MISMATCH" : "");
    }
    for (int64_t i = 0; i < ROWS; i++) {
        int bad = permutedProbsData[i] != expectedProbs[i] || sortedData[i] != expectedSorted[i];
        mismatches += bad;
        LOG_PRINT("permuteProbsOut[%ld] is: %f, sortedIndicesOut[%ld] is: %d%s\n", (long)i, permutedProbsData[i],
                  (long)i, sortedData[i], bad ? "   <-- MISMATCH" : "");
    }

    /* 6. release tensors */
    aclDestroyTensor(tokens);
    aclDestroyTensor(map);
    aclDestroyTensor(probs);
    aclDestroyTensor(permuted);
    aclDestroyTensor(permutedProbs);
    aclDestroyTensor(sorted);

    /* 7. release device memory, stream and device */
    aclrtFree(tokensAddr);
    aclrtFree(mapAddr);
    aclrtFree(probsAddr);
    aclrtFree(permutedAddr);
    aclrtFree(permutedProbsAddr);
    aclrtFree(sortedAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    Finalize(deviceId, stream);
    LOG_PRINT("moe_token_permute_with_routing_map: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
