/*
 * aclnnMoeGatingTopKSoftmaxV2 sample, written the way the CANN aclnn samples are: init, device memory, tensors,
 * the two-phase call with a workspace, synchronize, copy back, check, release (the shared steps are in
 * aclnn_sample.h).
 *
 * renorm = 1: the top-k of the logits first, then a softmax over those k. Two tokens with logits log([1, 2, 3, 4])
 * and log([4, 3, 2, 1]), k = 2: the chosen logits are log 4 and log 3, whose softmax is [4/7, 3/7]; experts
 * [3, 2] and [0, 1]. Returns non-zero when a result differs.
 */
#include <math.h> /* fabsf */
#include <stdint.h>
#include <stdio.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_gating_top_k_softmax_v2.h"

#define N 2 /* tokens */
#define E 4 /* experts */
#define K 2

int main(void)
{
    /* 1. device and stream */
    int32_t deviceId = 0;
    aclrtStream stream;
    int ret = Init(deviceId, &stream);
    CHECK_RET(ret == 0, LOG_PRINT("Init acl failed. ERROR: %d\n", ret); return ret);

    /* 2. inputs and outputs */
    const int64_t xShape[2] = {N, E}, outShape[2] = {N, K};
    static const float logOf[E] = {0.0f, 0.69314718f, 1.09861229f, 1.38629436f}; /* log 1 .. log 4 */
    float xHostData[N * E];
    for (int e = 0; e < E; e++) {
        xHostData[e] = logOf[e];
        xHostData[E + e] = logOf[E - 1 - e];
    }
    const float yHostData[N * K] = {0};
    const int32_t idxHostData[N * K] = {0};
    int64_t k = K, renorm = 1;
    bool outputSoftmaxResultFlag = false;
    void *xAddr = NULL, *yAddr = NULL, *idxAddr = NULL;
    aclTensor *x = NULL, *y = NULL, *idx = NULL;
    ret = CreateAclTensor(xHostData, sizeof(float), xShape, 2, &xAddr, ACL_FLOAT, &x);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(yHostData, sizeof(float), outShape, 2, &yAddr, ACL_FLOAT, &y);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(idxHostData, sizeof(int32_t), outShape, 2, &idxAddr, ACL_INT32, &idx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream */
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeGatingTopKSoftmaxV2GetWorkspaceSize(x, NULL, k, renorm, outputSoftmaxResultFlag, y, idx, NULL,
                                                      &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclnnMoeGatingTopKSoftmaxV2GetWorkspaceSize failed. ERROR: %d (%s)\n",
                                            ret, aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeGatingTopKSoftmaxV2(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeGatingTopKSoftmaxV2 failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. results back to the host, printed and checked */
    float yData[N * K];
    int32_t idxData[N * K];
    ret = CopyToHost(yData, yAddr, sizeof yData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(idxData, idxAddr, sizeof idxData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    static const float expectedY[N * K] = {4.0f / 7, 3.0f / 7, 4.0f / 7, 3.0f / 7};
    static const int32_t expectedIdx[N * K] = {3, 2, 0, 1};
    int mismatches = 0;
    for (int64_t i = 0; i < N * K; i++) {
        int bad = !(fabsf(yData[i] - expectedY[i]) <= 1e-6f) || idxData[i] != expectedIdx[i];
        mismatches += bad;
        LOG_PRINT("yOut[%ld] is: %f, expertIdxOut[%ld] is: %d%s\n", (long)i, yData[i], (long)i, idxData[i],
                  bad ? "   <-- MISMATCH" : "");
    }

    /* 6. release tensors */
    aclDestroyTensor(x);
    aclDestroyTensor(y);
    aclDestroyTensor(idx);

    /* 7. release device memory, stream and device */
    aclrtFree(xAddr);
    aclrtFree(yAddr);
    aclrtFree(idxAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    Finalize(deviceId, stream);
    LOG_PRINT("moe_gating_top_k_softmax_v2: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
