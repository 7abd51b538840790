/*
 * aclnnMoeGatingTopK sample, written the way the CANN aclnn samples are: init, device memory, tensors, the
 * two-phase call with a workspace, synchronize, copy back, check, release (the shared steps are in aclnn_sample.h).
 *
 * x [3, 16] fp32, bias [16], DeepSeek-style grouped selection on a small scale: 4 groups of 4 experts, keep the
 * 2 best groups by the sum of their top-2 scores, then the top 4 experts; sigmoid, renormalised, scaled by 2.5.
 * Returns non-zero when the result differs from the expected values.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_gating_top_k.h"

#define ROWS 3
#define EXPERTS 16
#define K 4

int main(void)
{
    /* 1. device and stream */
    int32_t deviceId = 0;
    aclrtStream stream;
    int ret = Init(deviceId, &stream);
    CHECK_RET(ret == 0, LOG_PRINT("Init acl failed. ERROR: %d\n", ret); return ret);

    /* 2. inputs and outputs */
    const int64_t xShape[2] = {ROWS, EXPERTS};
    const int64_t biasShape[1] = {EXPERTS};
    const int64_t yShape[2] = {ROWS, K};
    const int64_t expertIdxShape[2] = {ROWS, K};
    const int64_t normOutShape[2] = {ROWS, EXPERTS};
    float xHostData[ROWS * EXPERTS];
    float biasHostData[EXPERTS];
    float yHostData[ROWS * K] = {0};
    int32_t expertIdxHostData[ROWS * K] = {0};
    float normOutHostData[ROWS * EXPERTS] = {0};
    for (int r = 0; r < ROWS; r++)
        for (int e = 0; e < EXPERTS; e++) xHostData[r * EXPERTS + e] = (float)((e * 7 + r * 5) % 16) * 0.25f - 2.0f;
    for (int e = 0; e < EXPERTS; e++) biasHostData[e] = (float)((e * 3) % 8) * 0.125f - 0.5f;

    void *xAddr = NULL, *biasAddr = NULL, *yAddr = NULL, *expertIdxAddr = NULL, *normOutAddr = NULL;
    aclTensor *x = NULL, *bias = NULL, *y = NULL, *expertIdx = NULL, *normOut = NULL;
    ret = CreateAclTensor(xHostData, sizeof(float), xShape, 2, &xAddr, ACL_FLOAT, &x);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(biasHostData, sizeof(float), biasShape, 1, &biasAddr, ACL_FLOAT, &bias);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(yHostData, sizeof(float), yShape, 2, &yAddr, ACL_FLOAT, &y);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expertIdxHostData, sizeof(int32_t), expertIdxShape, 2, &expertIdxAddr, ACL_INT32,
                          &expertIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(normOutHostData, sizeof(float), normOutShape, 2, &normOutAddr, ACL_FLOAT, &normOut);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream */
    int64_t k = K, kGroup = 2, groupCount = 4, groupSelectMode = 1, renorm = 0, normType = 1;
    bool outFlag = false;
    double routedScalingFactor = 2.5, eps = 1e-20;
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeGatingTopKGetWorkspaceSize(x, bias, k, kGroup, groupCount, groupSelectMode, renorm, normType,
                                             outFlag, routedScalingFactor, eps, y, expertIdx, normOut,
                                             &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeGatingTopKGetWorkspaceSize failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeGatingTopK(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclnnMoeGatingTopK failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. results back to the host, printed and checked */
    float yResult[ROWS * K];
    int32_t idxResult[ROWS * K];
    ret = CopyToHost(yResult, yAddr, sizeof yResult);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(idxResult, expertIdxAddr, sizeof idxResult);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    static const int32_t expectedIdx[ROWS * K] = {2, 13, 15, 1, 15, 5, 6, 12, 5, 12, 7, 13};
    static const float expectedY[ROWS * K] = {
        8.186376095e-01f, 6.800619364e-01f, 5.629075766e-01f, 4.383928180e-01f,
        7.482275963e-01f, 4.575898945e-01f, 7.796899080e-01f, 5.144925714e-01f,
        7.488800287e-01f, 7.876820564e-01f, 6.543464065e-01f, 3.090913296e-01f};
    int mismatches = 0;
    for (int64_t i = 0; i < ROWS * K; i++) {
        int bad = idxResult[i] != expectedIdx[i] || !(fabsf(yResult[i] - expectedY[i]) <= 1e-5f * fabsf(expectedY[i]));
        mismatches += bad;
        LOG_PRINT("expertIdx[%ld] is: %d, y[%ld] is: %f%s\n", (long)i, idxResult[i], (long)i, yResult[i],
                  bad ? "   <-- MISMATCH" : "");
    }

    /* 6. release tensors */
    aclDestroyTensor(x);
    aclDestroyTensor(bias);
    aclDestroyTensor(y);
    aclDestroyTensor(expertIdx);
    aclDestroyTensor(normOut);

    /* 7. release device memory, stream and device */
    aclrtFree(xAddr);
    aclrtFree(biasAddr);
    aclrtFree(yAddr);
    aclrtFree(expertIdxAddr);
    aclrtFree(normOutAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    Finalize(deviceId, stream);
    LOG_PRINT("moe_gating_top_k: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
