/*
 * aclnnMoeTokenUnpermuteWithRoutingMapGrad sample, written the way the CANN aclnn samples are: init, device memory,
 * tensors, the two-phase call with a workspace, synchronize, copy back, check, release (the shared steps are in
 * aclnn_sample.h).
 *
 * The backward of MoeTokenUnpermuteWithRoutingMap (dropAndPad false, with probs) for routingMap
 * [[1, 1, 0], [0, 1, 1], [1, 0, 1]]: the permute listed the rows expert-major (t0, t2 | t0, t1 | t1, t2), so its
 * sortedIndices [0, 2, 3, 4, 1, 5] (token t's K = 2 rows at slots 2t, 2t + 1) is passed as outIndex and as
 * permuteTokenId, as MindSpeed does. Each token's gradient, times the prob of the slot, goes back to the slot's row;
 * the probs gradient is the dot product of the token's gradient with that row of permutedTokens, at the routing
 * map's place. Returns non-zero when a result differs.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_token_unpermute_with_routing_map_grad.h"

#define T 3 /* tokens */
#define E 3 /* experts */
#define K 2 /* experts per token */
#define H 2 /* hidden size */

static int check(const char *name, const void *addr, const float *expected, int64_t n)
{
    float got[T * K * H];
    int mismatches = 0;
    if (CopyToHost(got, addr, (size_t)n * sizeof(float)) != ACL_SUCCESS) return 1;
    for (int64_t i = 0; i < n; i++) {
        int bad = !(fabsf(got[i] - expected[i]) <= 1e-6f);
        mismatches += bad;
        LOG_PRINT("%s[%ld] is: %f%s\n", name, (long)i, got[i], bad ? "   <-- MISMATCH" : "");
    }
    return mismatches;
}

int main(void)
{
    /* 1. device and stream */
    int32_t deviceId = 0;
    aclrtStream stream;
    int ret = Init(deviceId, &stream);
    CHECK_RET(ret == 0, LOG_PRINT("Init acl failed. ERROR: %d\n", ret); return ret);

    /* 2. inputs and outputs */
    const int64_t gradShape[2] = {T, H}, indexShape[1] = {T * K}, mapShape[2] = {T, E};
    const int64_t permutedShape[2] = {T * K, H}, probsShape[2] = {T, E};
    const float gradHostData[T * H] = {1, 2, 3, 4, 5, 6};
    const int32_t indexHostData[T * K] = {0, 2, 3, 4, 1, 5};
    const int8_t mapHostData[T * E] = {1, 1, 0, 0, 1, 1, 1, 0, 1};
    const float permutedHostData[T * K * H] = {1, 0, 0, 1, 1, 1, 2, 0, 0, 2, 1, -1};
    const float probsHostData[T * E] = {0.5f, 0.25f, 0, 0, 1, 2, 3, 0, 0.5f};
    const float outHostData[T * K * H] = {0}, probsOutHostData[T * E] = {0};
    void *gradAddr = NULL, *outIndexAddr = NULL, *tokenIdAddr = NULL, *mapAddr = NULL, *permutedAddr = NULL,
         *probsAddr = NULL, *outAddr = NULL, *probsOutAddr = NULL;
    aclTensor *grad = NULL, *outIndex = NULL, *tokenId = NULL, *map = NULL, *permuted = NULL, *probs = NULL,
              *out = NULL, *probsOut = NULL;
    ret = CreateAclTensor(gradHostData, sizeof(float), gradShape, 2, &gradAddr, ACL_FLOAT, &grad);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(indexHostData, sizeof(int32_t), indexShape, 1, &outIndexAddr, ACL_INT32, &outIndex);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(indexHostData, sizeof(int32_t), indexShape, 1, &tokenIdAddr, ACL_INT32, &tokenId);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(mapHostData, sizeof(int8_t), mapShape, 2, &mapAddr, ACL_INT8, &map);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(permutedHostData, sizeof(float), permutedShape, 2, &permutedAddr, ACL_FLOAT, &permuted);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(probsHostData, sizeof(float), probsShape, 2, &probsAddr, ACL_FLOAT, &probs);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(outHostData, sizeof(float), permutedShape, 2, &outAddr, ACL_FLOAT, &out);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(probsOutHostData, sizeof(float), probsShape, 2, &probsOutAddr, ACL_FLOAT, &probsOut);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream */
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeTokenUnpermuteWithRoutingMapGradGetWorkspaceSize(grad, outIndex, tokenId, map, permuted, probs, false,
                                                                   NULL, out, probsOut, &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeTokenUnpermuteWithRoutingMapGradGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
                        aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeTokenUnpermuteWithRoutingMapGrad(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeTokenUnpermuteWithRoutingMapGrad failed. ERROR: %d (%s)\n", ret,
                        aclGetRecentErrMsg());
              return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. results back to the host, printed and checked: row outIndex[i] = grad[i / K] * (the i-th selected prob) */
    static const float expectedOut[T * K * H] = {0.5f, 1, 15, 18, 0.25f, 0.5f, 3, 4, 6, 8, 2.5f, 3};
    static const float expectedProbs[T * E] = {1, 3, 0, 0, 6, 8, 6, 0, -1};
    int mismatches = check("permutedTokensGradOut", outAddr, expectedOut, T * K * H);
    mismatches += check("probsGradOutOptional", probsOutAddr, expectedProbs, T * E);

    /* 6. release tensors */
    aclDestroyTensor(grad);
    aclDestroyTensor(outIndex);
    aclDestroyTensor(tokenId);
    aclDestroyTensor(map);
    aclDestroyTensor(permuted);
    aclDestroyTensor(probs);
    aclDestroyTensor(out);
    aclDestroyTensor(probsOut);

    /* 7. release device memory, stream and device */
    aclrtFree(gradAddr);
    aclrtFree(outIndexAddr);
    aclrtFree(tokenIdAddr);
    aclrtFree(mapAddr);
    aclrtFree(permutedAddr);
    aclrtFree(probsAddr);
    aclrtFree(outAddr);
    aclrtFree(probsOutAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    Finalize(deviceId, stream);
    LOG_PRINT("moe_token_unpermute_with_routing_map_grad: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
