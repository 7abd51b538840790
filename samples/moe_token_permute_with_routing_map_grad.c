/*
 * aclnnMoeTokenPermuteWithRoutingMapGrad sample, written the way the CANN aclnn samples are: init, device memory,
 * tensors, the two-phase call with a workspace, synchronize, copy back, check, release (the shared steps are in
 * aclnn_sample.h).
 *
 * The backward of MoeTokenPermuteWithRoutingMap (dropAndPad false) for routingMap [[1, 1, 0], [0, 1, 1], [1, 0, 1]]:
 * the forward listed the rows expert-major (t0, t2 | t0, t1 | t1, t2), so sortedIndices = [0, 2, 3, 4, 1, 5]. The
 * gradient rows (valued 1..6) go back to their tokens, each token summing its 2 rows, and the probs gradient
 * (10..60, one per row) goes back to the routing map's places. Returns non-zero when a result differs.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_token_permute_with_routing_map_grad.h"

#define T 3 /* tokens */
#define E 3 /* experts */
#define K 2 /* experts per token */
#define H 2 /* hidden size */

static int check(const char *name, const void *addr, const float *expected, int64_t n)
{
    float got[T * E];
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
    const int64_t gradShape[2] = {T * K, H}, probsShape[1] = {T * K}, sortedShape[1] = {T * K};
    const int64_t mapShape[2] = {T, E}, outShape[2] = {T, H}, probsOutShape[2] = {T, E};
    const float gradHostData[T * K * H] = {1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6};
    const float probsHostData[T * K] = {10, 20, 30, 40, 50, 60};
    const int32_t sortedHostData[T * K] = {0, 2, 3, 4, 1, 5};
    const int8_t mapHostData[T * E] = {1, 1, 0, 0, 1, 1, 1, 0, 1};
    const float outHostData[T * H] = {0}, probsOutHostData[T * E] = {0};
    void *gradAddr = NULL, *probsAddr = NULL, *sortedAddr = NULL, *mapAddr = NULL, *outAddr = NULL,
         *probsOutAddr = NULL;
    aclTensor *grad = NULL, *probs = NULL, *sorted = NULL, *map = NULL, *out = NULL, *probsOut = NULL;
    ret = CreateAclTensor(gradHostData, sizeof(float), gradShape, 2, &gradAddr, ACL_FLOAT, &grad);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(probsHostData, sizeof(float), probsShape, 1, &probsAddr, ACL_FLOAT, &probs);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(sortedHostData, sizeof(int32_t), sortedShape, 1, &sortedAddr, ACL_INT32, &sorted);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(mapHostData, sizeof(int8_t), mapShape, 2, &mapAddr, ACL_INT8, &map);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(outHostData, sizeof(float), outShape, 2, &outAddr, ACL_FLOAT, &out);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(probsOutHostData, sizeof(float), probsOutShape, 2, &probsOutAddr, ACL_FLOAT, &probsOut);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream */
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeTokenPermuteWithRoutingMapGradGetWorkspaceSize(grad, probs, sorted, map, E, T, false, out, probsOut,
                                                                 &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeTokenPermuteWithRoutingMapGradGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
                        aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeTokenPermuteWithRoutingMapGrad(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeTokenPermuteWithRoutingMapGrad failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. results back to the host, printed and checked */
    static const float expectedOut[T * H] = {4, 4, 9, 9, 8, 8};
    static const float expectedProbs[T * E] = {10, 30, 0, 0, 40, 50, 20, 0, 60};
    int mismatches = check("tokenGradOut", outAddr, expectedOut, T * H);
    mismatches += check("probsGradOut", probsOutAddr, expectedProbs, T * E);

    /* 6. release tensors */
    aclDestroyTensor(grad);
    aclDestroyTensor(probs);
    aclDestroyTensor(sorted);
    aclDestroyTensor(map);
    aclDestroyTensor(out);
    aclDestroyTensor(probsOut);

    /* 7. release device memory, stream and device */
    aclrtFree(gradAddr);
    aclrtFree(probsAddr);
    aclrtFree(sortedAddr);
    aclrtFree(mapAddr);
    aclrtFree(outAddr);
    aclrtFree(probsOutAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    Finalize(deviceId, stream);
    LOG_PRINT("moe_token_permute_with_routing_map_grad: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
