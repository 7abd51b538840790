/*
 * aclnnMoeTokenUnpermuteGrad sample, written the way the CANN aclnn samples are: init, device memory, tensors, the
 * two-phase call with a workspace, synchronize, copy back, check, release (the shared steps are in aclnn_sample.h).
 *
 * The backward of MoeTokenUnpermute (out[t] = sum_k probs[t, k] * permuted[sortedIndices[t*K + k]]): each
 * permuted row gets its token's gradient times the pair's probability, each probability the dot product of its
 * row with the token's gradient.
 * Returns non-zero when a result differs.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_token_unpermute_grad.h"

#define N 2 /* tokens */
#define K 2 /* experts per token */
#define H 2 /* hidden size */

int main(void)
{
    /* 1. device and stream */
    int32_t deviceId = 0;
    aclrtStream stream;
    int ret = Init(deviceId, &stream);
    CHECK_RET(ret == 0, LOG_PRINT("Init acl failed. ERROR: %d\n", ret); return ret);

    /* 2. inputs and outputs */
    const int64_t permutedShape[2] = {N * K, H};
    const float permutedHostData[(N * K) * H] = {1.0f, 0.0f, 0.0f, 1.0f, 1.0f, 1.0f, 2.0f, 2.0f};
    const int64_t gradShape[2] = {N, H};
    const float gradHostData[N * H] = {1.0f, 2.0f, 3.0f, 4.0f};
    const int64_t sortedShape[1] = {N * K};
    const int32_t sortedHostData[N * K] = {3, 0, 2, 1};
    const int64_t probsShape[2] = {N, K};
    const float probsHostData[N * K] = {0.5f, 0.25f, 1.0f, 2.0f};
    const int64_t permutedGradShape[2] = {N * K, H};
    const float permutedGradHostData[(N * K) * H] = {0};
    const int64_t probsGradShape[2] = {N, K};
    const float probsGradHostData[N * K] = {0};
    void *permutedAddr = NULL, *gradAddr = NULL, *sortedAddr = NULL, *probsAddr = NULL, *permutedGradAddr = NULL, *probsGradAddr = NULL;
    aclTensor *permuted = NULL, *grad = NULL, *sorted = NULL, *probs = NULL, *permutedGrad = NULL, *probsGrad = NULL;
    ret = CreateAclTensor(permutedHostData, sizeof(float), permutedShape, 2, &permutedAddr, ACL_FLOAT, &permuted);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(gradHostData, sizeof(float), gradShape, 2, &gradAddr, ACL_FLOAT, &grad);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(sortedHostData, sizeof(int32_t), sortedShape, 1, &sortedAddr, ACL_INT32, &sorted);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(probsHostData, sizeof(float), probsShape, 2, &probsAddr, ACL_FLOAT, &probs);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(permutedGradHostData, sizeof(float), permutedGradShape, 2, &permutedGradAddr, ACL_FLOAT, &permutedGrad);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(probsGradHostData, sizeof(float), probsGradShape, 2, &probsGradAddr, ACL_FLOAT, &probsGrad);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream */
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeTokenUnpermuteGradGetWorkspaceSize(permuted, grad, sorted, probs, false, NULL, permutedGrad, probsGrad, &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeTokenUnpermuteGradGetWorkspaceSize failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeTokenUnpermuteGrad(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclnnMoeTokenUnpermuteGrad failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. results back to the host, printed and checked */
    int mismatches = 0;
    {
        float got[(N * K) * H];
        static const float expected[(N * K) * H] = {0.25f, 0.5f, 6.0f, 8.0f, 3.0f, 4.0f, 0.5f, 1.0f};
        ret = CopyToHost(got, permutedGradAddr, sizeof got);
        CHECK_RET(ret == ACL_SUCCESS, return ret);
        for (int64_t i = 0; i < (N * K) * H; i++) {
            int bad = !(fabsf(got[i] - expected[i]) <= 1e-6f);
            mismatches += bad;
            LOG_PRINT("permutedGrad[%ld] is: %f%s\n", (long)i, got[i], bad ? "   <-- MISMATCH" : "");
        }
    }
    {
        float got[N * K];
        static const float expected[N * K] = {6.0f, 1.0f, 7.0f, 4.0f};
        ret = CopyToHost(got, probsGradAddr, sizeof got);
        CHECK_RET(ret == ACL_SUCCESS, return ret);
        for (int64_t i = 0; i < N * K; i++) {
            int bad = !(fabsf(got[i] - expected[i]) <= 1e-6f);
            mismatches += bad;
            LOG_PRINT("probsGrad[%ld] is: %f%s\n", (long)i, got[i], bad ? "   <-- MISMATCH" : "");
        }
    }

    /* 6. release tensors and arrays */
    aclDestroyTensor(permuted);
    aclDestroyTensor(grad);
    aclDestroyTensor(sorted);
    aclDestroyTensor(probs);
    aclDestroyTensor(permutedGrad);
    aclDestroyTensor(probsGrad);

    /* 7. release device memory, stream and device */
    aclrtFree(permutedAddr);
    aclrtFree(gradAddr);
    aclrtFree(sortedAddr);
    aclrtFree(probsAddr);
    aclrtFree(permutedGradAddr);
    aclrtFree(probsGradAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    Finalize(deviceId, stream);
    LOG_PRINT("moe_token_unpermute_grad: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
