/*
 * aclnnMoeTokenPermuteWithEpGrad sample, written the way the CANN aclnn samples are: init, device memory, tensors, the
 * two-phase call with a workspace, synchronize, copy back, check, release (the shared steps are in aclnn_sample.h).
 *
 * The backward of the aclnnMoeTokenPermuteWithEp sample: tokens routed to indices = [[1, 2], [3, 1], [2, 3]]
 * (sortedIndices = [0, 2, 4, 1, 3, 5]) and this rank holds sorted rows [1, 5). The gradient rows of the window
 * (valued 1, 2, 3, 4) go back to their tokens and each token sums its copies: token 0 gets window row 1 (its pair (t0, k1)
 * sits at sorted row 2), token 1 rows 3 and 0, token 2 row 2; the probs gradient of each pair is gathered the same way, 0 outside the window.
 * Returns non-zero when a result differs.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_token_permute_with_ep_grad.h"

#define N 3 /* tokens */
#define K 2 /* experts per token */
#define H 2 /* hidden size */
#define ROWS 4 /* rows of the window */

int main(void)
{
    /* 1. device and stream */
    int32_t deviceId = 0;
    aclrtStream stream;
    int ret = Init(deviceId, &stream);
    CHECK_RET(ret == 0, LOG_PRINT("Init acl failed. ERROR: %d\n", ret); return ret);

    /* 2. inputs and outputs */
    const int64_t gradShape[2] = {ROWS, H};
    const float gradHostData[ROWS * H] = {1.0f, 1.0f, 2.0f, 2.0f, 3.0f, 3.0f, 4.0f, 4.0f};
    const int64_t sortedShape[1] = {N * K};
    const int32_t sortedHostData[N * K] = {0, 2, 4, 1, 3, 5};
    const int64_t probsGradShape[1] = {ROWS};
    const float probsGradHostData[ROWS] = {0.1f, 0.2f, 0.3f, 0.4f};
    const int64_t tokenGradShape[2] = {N, H};
    const float tokenGradHostData[N * H] = {0};
    const int64_t probsGradOutShape[2] = {N, K};
    const float probsGradOutHostData[N * K] = {0};
    int64_t rangeHostData[2] = {1, 5};
    void *gradAddr = NULL, *sortedAddr = NULL, *probsGradAddr = NULL, *tokenGradAddr = NULL, *probsGradOutAddr = NULL;
    aclTensor *grad = NULL, *sorted = NULL, *probsGrad = NULL, *tokenGrad = NULL, *probsGradOut = NULL;
    ret = CreateAclTensor(gradHostData, sizeof(float), gradShape, 2, &gradAddr, ACL_FLOAT, &grad);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(sortedHostData, sizeof(int32_t), sortedShape, 1, &sortedAddr, ACL_INT32, &sorted);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(probsGradHostData, sizeof(float), probsGradShape, 1, &probsGradAddr, ACL_FLOAT, &probsGrad);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(tokenGradHostData, sizeof(float), tokenGradShape, 2, &tokenGradAddr, ACL_FLOAT, &tokenGrad);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(probsGradOutHostData, sizeof(float), probsGradOutShape, 2, &probsGradOutAddr, ACL_FLOAT, &probsGradOut);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    aclIntArray *range = aclCreateIntArray(rangeHostData, 2);
    CHECK_RET(range != NULL, LOG_PRINT("aclCreateIntArray failed.\n"); return -1);

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream */
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeTokenPermuteWithEpGradGetWorkspaceSize(grad, sorted, probsGrad, K, range, false, tokenGrad, probsGradOut, &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeTokenPermuteWithEpGradGetWorkspaceSize failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeTokenPermuteWithEpGrad(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclnnMoeTokenPermuteWithEpGrad failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. results back to the host, printed and checked */
    int mismatches = 0;
    {
        float got[N * H];
        static const float expected[N * H] = {2.0f, 2.0f, 5.0f, 5.0f, 3.0f, 3.0f};
        ret = CopyToHost(got, tokenGradAddr, sizeof got);
        CHECK_RET(ret == ACL_SUCCESS, return ret);
        for (int64_t i = 0; i < N * H; i++) {
            int bad = !(fabsf(got[i] - expected[i]) <= 1e-6f);
            mismatches += bad;
            LOG_PRINT("tokenGrad[%ld] is: %f%s\n", (long)i, got[i], bad ? "   <-- MISMATCH" : "");
        }
    }
    {
        float got[N * K];
        static const float expected[N * K] = {0.0f, 0.2f, 0.4f, 0.1f, 0.3f, 0.0f};
        ret = CopyToHost(got, probsGradOutAddr, sizeof got);
        CHECK_RET(ret == ACL_SUCCESS, return ret);
        for (int64_t i = 0; i < N * K; i++) {
            int bad = !(fabsf(got[i] - expected[i]) <= 1e-6f);
            mismatches += bad;
            LOG_PRINT("probsGradOut[%ld] is: %f%s\n", (long)i, got[i], bad ? "   <-- MISMATCH" : "");
        }
    }

    /* 6. release tensors and arrays */
    aclDestroyTensor(grad);
    aclDestroyTensor(sorted);
    aclDestroyTensor(probsGrad);
    aclDestroyTensor(tokenGrad);
    aclDestroyTensor(probsGradOut);
    aclDestroyIntArray(range);

    /* 7. release device memory, stream and device */
    aclrtFree(gradAddr);
    aclrtFree(sortedAddr);
    aclrtFree(probsGradAddr);
    aclrtFree(tokenGradAddr);
    aclrtFree(probsGradOutAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    Finalize(deviceId, stream);
    LOG_PRINT("moe_token_permute_with_ep_grad: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
