/*
 * aclnnMoeTokenUnpermuteWithRoutingMap sample, written the way the CANN aclnn samples are: init, device memory,
 * tensors, the two-phase call with a workspace, synchronize, copy back, check, release (the shared steps are in
 * aclnn_sample.h).
 *
 * The reverse of the aclnnMoeTokenPermuteWithRoutingMap sample: its six rows [1, 2, 2, 3, 1, 3] (hidden size 2)
 * and sortedIndices [0, 4, 1, 2, 3, 5] go back to three tokens. Slot t*2 + k takes token t's k-th selected prob
 * (the routing map's entries in row order: [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]), whose weights sum to 1: the
 * tokens come back as 1, 2, 3. Returns non-zero when a result differs.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_token_unpermute_with_routing_map.h"

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
    const int64_t permutedShape[2] = {ROWS, H}, rowsShape[1] = {ROWS}, mapShape[2] = {T, E}, outShape[2] = {T, H};
    const float permutedHostData[ROWS * H] = {1, 1, 2, 2, 2, 2, 3, 3, 1, 1, 3, 3};
    const int32_t sortedHostData[ROWS] = {0, 4, 1, 2, 3, 5};
    const int8_t mapHostData[T * E] = {1, 0, 1, 1, 1, 0, 0, 1, 1};
    const float probsHostData[T * E] = {0.6f, 0.0f, 0.4f, 0.3f, 0.7f, 0.0f, 0.0f, 0.2f, 0.8f};
    const float outHostData[T * H] = {0}, permuteProbsHostData[ROWS] = {0};
    const int32_t outIndexHostData[ROWS] = {0}, tokenIdHostData[ROWS] = {0};
    int64_t restoreShapeHostData[2] = {T, H};
    bool paddedMode = false;
    void *permutedAddr = NULL, *sortedAddr = NULL, *mapAddr = NULL, *probsAddr = NULL, *outAddr = NULL,
         *outIndexAddr = NULL, *tokenIdAddr = NULL, *permuteProbsAddr = NULL;
    aclTensor *permuted = NULL, *sorted = NULL, *map = NULL, *probs = NULL, *out = NULL, *outIndex = NULL,
              *tokenId = NULL, *permuteProbs = NULL;
    ret = CreateAclTensor(permutedHostData, sizeof(float), permutedShape, 2, &permutedAddr, ACL_FLOAT, &permuted);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(sortedHostData, sizeof(int32_t), rowsShape, 1, &sortedAddr, ACL_INT32, &sorted);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(mapHostData, sizeof(int8_t), mapShape, 2, &mapAddr, ACL_INT8, &map);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(probsHostData, sizeof(float), mapShape, 2, &probsAddr, ACL_FLOAT, &probs);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(outHostData, sizeof(float), outShape, 2, &outAddr, ACL_FLOAT, &out);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(outIndexHostData, sizeof(int32_t), rowsShape, 1, &outIndexAddr, ACL_INT32, &outIndex);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(tokenIdHostData, sizeof(int32_t), rowsShape, 1, &tokenIdAddr, ACL_INT32, &tokenId);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(permuteProbsHostData, sizeof(float), rowsShape, 1, &permuteProbsAddr, ACL_FLOAT,
                          &permuteProbs);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    aclIntArray *restoreShape = aclCreateIntArray(restoreShapeHostData, 2);
    CHECK_RET(restoreShape != NULL, LOG_PRINT("aclCreateIntArray failed.\n"); return -1);

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream */
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeTokenUnpermuteWithRoutingMapGetWorkspaceSize(permuted, sorted, map, probs, paddedMode, restoreShape,
                                                               out, outIndex, tokenId, permuteProbs, &workspaceSize,
                                                               &executor);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeTokenUnpermuteWithRoutingMapGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
                        aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeTokenUnpermuteWithRoutingMap(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeTokenUnpermuteWithRoutingMap failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. results back to the host, printed and checked */
    float outData[T * H], permuteProbsData[ROWS];
    ret = CopyToHost(outData, outAddr, sizeof outData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(permuteProbsData, permuteProbsAddr, sizeof permuteProbsData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    static const float expectedProbs[ROWS] = {0.6f, 0.4f, 0.3f, 0.7f, 0.2f, 0.8f};
    int mismatches = 0;
    for (int64_t i = 0; i < T * H; i++) {
        int bad = !(fabsf(outData[i] - (float)(i / H + 1)) <= 1e-6f);
        mismatches += bad;
        LOG_PRINT("unpermutedTokens[%ld] is: %f%s\n", (long)i, outData[i], bad ? "   <-- MISMATCH" : "");
    }
    for (int64_t i = 0; i < ROWS; i++) {
        int bad = permuteProbsData[i] != expectedProbs[i];
        mismatches += bad;
        LOG_PRINT("permuteProbs[%ld] is: %f%s\n", (long)i, permuteProbsData[i], bad ? "   <-- MISMATCH" : "");
    }

    /* 6. release tensors and arrays */
    aclDestroyTensor(permuted);
    aclDestroyTensor(sorted);
    aclDestroyTensor(map);
    aclDestroyTensor(probs);
    aclDestroyTensor(out);
    aclDestroyTensor(outIndex);
    aclDestroyTensor(tokenId);
    aclDestroyTensor(permuteProbs);
    aclDestroyIntArray(restoreShape);

    /* 7. release device memory, stream and device */
    aclrtFree(permutedAddr);
    aclrtFree(sortedAddr);
    aclrtFree(mapAddr);
    aclrtFree(probsAddr);
    aclrtFree(outAddr);
    aclrtFree(outIndexAddr);
    aclrtFree(tokenIdAddr);
    aclrtFree(permuteProbsAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    Finalize(deviceId, stream);
    LOG_PRINT("moe_token_unpermute_with_routing_map: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
