/*
 * aclnnMoeReRouting sample, written the way the CANN aclnn samples are: init, device memory, tensors, the
 * two-phase call with a workspace, synchronize, copy back, check, release (the shared steps are in aclnn_sample.h).
 *
 * After an expert-parallel all-to-all, 6 int8 tokens arrived grouped by source rank, then local expert:
 *   expertTokenNumPerRank = [[1, 2],    rank 0 sent 1 token for expert 0, then 2 for expert 1
 *                            [2, 1]]    rank 1 sent 2 tokens for expert 0, then 1 for expert 1
 * Re-routing puts them expert-major (expert, then source rank): gather index [0, 3, 4, 1, 2, 5], the per-token
 * scales follow the tokens, and expertTokenNum = [3, 3]. Returns non-zero when a result differs.
 * (aclnnMoeReRouting's prototype is not published by CANN; see include/aclnnop/aclnn_moe_re_routing.h.)
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_re_routing.h"

#define A 6 /* tokens */
#define H 4 /* hidden size */
#define N 2 /* ranks */
#define E 2 /* local experts */

int main(void)
{
    /* 1. device and stream */
    int32_t deviceId = 0;
    aclrtStream stream;
    int ret = Init(deviceId, &stream);
    CHECK_RET(ret == 0, LOG_PRINT("Init acl failed. ERROR: %d\n", ret); return ret);

    /* 2. inputs and outputs: token t holds the values 10*t .. 10*t+3, its scale is t/2 */
    int8_t tokensHostData[A * H];
    float scalesHostData[A];
    for (int t = 0; t < A; t++) {
        for (int j = 0; j < H; j++) tokensHostData[t * H + j] = (int8_t)(10 * t + j);
        scalesHostData[t] = 0.5f * (float)t;
    }
    const int32_t countsHostData[N * E] = {1, 2, 2, 1};
    int8_t permuteTokensHostData[A * H] = {0};
    float permuteScalesHostData[A] = {0};
    int32_t permuteIdxHostData[A] = {0};
    int32_t expertTokenNumHostData[E] = {0};
    const int64_t tokensShape[2] = {A, H}, countsShape[2] = {N, E}, aShape[1] = {A}, eShape[1] = {E};
    void *tokensAddr = NULL, *countsAddr = NULL, *scalesAddr = NULL;
    void *permuteTokensAddr = NULL, *permuteScalesAddr = NULL, *permuteIdxAddr = NULL, *expertTokenNumAddr = NULL;
    aclTensor *tokens = NULL, *counts = NULL, *scales = NULL;
    aclTensor *permuteTokens = NULL, *permuteScales = NULL, *permuteIdx = NULL, *expertTokenNum = NULL;
    ret = CreateAclTensor(tokensHostData, sizeof(int8_t), tokensShape, 2, &tokensAddr, ACL_INT8, &tokens);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(countsHostData, sizeof(int32_t), countsShape, 2, &countsAddr, ACL_INT32, &counts);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(scalesHostData, sizeof(float), aShape, 1, &scalesAddr, ACL_FLOAT, &scales);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(permuteTokensHostData, sizeof(int8_t), tokensShape, 2, &permuteTokensAddr, ACL_INT8,
                          &permuteTokens);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(permuteScalesHostData, sizeof(float), aShape, 1, &permuteScalesAddr, ACL_FLOAT,
                          &permuteScales);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(permuteIdxHostData, sizeof(int32_t), aShape, 1, &permuteIdxAddr, ACL_INT32, &permuteIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expertTokenNumHostData, sizeof(int32_t), eShape, 1, &expertTokenNumAddr, ACL_INT32,
                          &expertTokenNum);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    int64_t expertTokenNumType = 1; /* count mode */
    int64_t idxType = 0;            /* gather index */

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream */
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeReRoutingGetWorkspaceSize(tokens, counts, scales, expertTokenNumType, idxType, permuteTokens,
                                            permuteScales, permuteIdx, expertTokenNum, &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeReRoutingGetWorkspaceSize failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeReRouting(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeReRouting failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg()); return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. results back to the host, printed and checked */
    int8_t outTokens[A * H];
    float outScales[A];
    int32_t outIdx[A], outNum[E];
    ret = CopyToHost(outTokens, permuteTokensAddr, sizeof outTokens);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(outScales, permuteScalesAddr, sizeof outScales);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(outIdx, permuteIdxAddr, sizeof outIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(outNum, expertTokenNumAddr, sizeof outNum);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    static const int32_t expectedIdx[A] = {0, 3, 4, 1, 2, 5};
    static const int32_t expectedNum[E] = {3, 3};
    int mismatches = 0;
    for (int j = 0; j < A; j++) {
        int bad = outIdx[j] != expectedIdx[j] || outScales[j] != scalesHostData[expectedIdx[j]] ||
                  memcmp(&outTokens[j * H], &tokensHostData[expectedIdx[j] * H], H) != 0;
        mismatches += bad;
        LOG_PRINT("permuteTokenIdx[%d] is: %d, permuteTokens[%d] is: [%d, %d, %d, %d], "
                  "permutePerTokenScales[%d] is: %.1f%s\n",
                  j, outIdx[j], j, outTokens[j * H], outTokens[j * H + 1], outTokens[j * H + 2], outTokens[j * H + 3],
                  j, outScales[j], bad ? "   <-- MISMATCH" : "");
    }
    for (int e = 0; e < E; e++) {
        int bad = outNum[e] != expectedNum[e];
        mismatches += bad;
        LOG_PRINT("expertTokenNum[%d] is: %d%s\n", e, outNum[e], bad ? "   <-- MISMATCH" : "");
    }

    /* 6. release tensors */
    aclDestroyTensor(tokens);
    aclDestroyTensor(counts);
    aclDestroyTensor(scales);
    aclDestroyTensor(permuteTokens);
    aclDestroyTensor(permuteScales);
    aclDestroyTensor(permuteIdx);
    aclDestroyTensor(expertTokenNum);

    /* 7. release device memory, stream and device */
    aclrtFree(tokensAddr);
    aclrtFree(countsAddr);
    aclrtFree(scalesAddr);
    aclrtFree(permuteTokensAddr);
    aclrtFree(permuteScalesAddr);
    aclrtFree(permuteIdxAddr);
    aclrtFree(expertTokenNumAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    Finalize(deviceId, stream);
    LOG_PRINT("moe_re_routing: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
