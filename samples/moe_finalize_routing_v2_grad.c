/*
 * aclnnMoeFinalizeRoutingV2Grad sample, written the way the CANN aclnn samples are: init, device memory, tensors, the
 * two-phase call with a workspace, synchronize, copy back, check, release (the shared steps are in aclnn_sample.h).
 *
 * The backward of y[i] = sum_k scales[i, k] * (expandedX[row] + bias[expert]) with row = expandedRowIdx[i*K + k]
 * (dropless, row-major): each expanded row gets its token's gradient times the scale, each scale gets
 * (expandedX[row] + bias[expert]) . gradY[i].
 * Returns non-zero when a result differs.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_finalize_routing_v2_grad.h"

#define R 2 /* tokens */
#define K 2 /* experts per token */
#define H 2 /* hidden size */
#define E 2 /* experts */

int main(void)
{
    /* 1. device and stream */
    int32_t deviceId = 0;
    aclrtStream stream;
    int ret = Init(deviceId, &stream);
    CHECK_RET(ret == 0, LOG_PRINT("Init acl failed. ERROR: %d\n", ret); return ret);

    /* 2. inputs and outputs */
    const int64_t gradYShape[2] = {R, H};
    const float gradYHostData[R * H] = {1.0f, 2.0f, 3.0f, 4.0f};
    const int64_t rowIdxShape[1] = {R * K};
    const int32_t rowIdxHostData[R * K] = {1, 3, 0, 2};
    const int64_t expandedXShape[2] = {R * K, H};
    const float expandedXHostData[(R * K) * H] = {1.0f, 0.0f, 0.0f, 1.0f, 1.0f, 1.0f, 2.0f, 0.0f};
    const int64_t scalesShape[2] = {R, K};
    const float scalesHostData[R * K] = {0.5f, 0.25f, 1.0f, 2.0f};
    const int64_t expertIdxShape[2] = {R, K};
    const int32_t expertIdxHostData[R * K] = {0, 1, 1, 0};
    const int64_t biasShape[2] = {E, H};
    const float biasHostData[E * H] = {0.5f, 0.5f, 1.0f, 0.0f};
    const int64_t gradExpandedXShape[2] = {R * K, H};
    const float gradExpandedXHostData[(R * K) * H] = {0};
    const int64_t gradScalesShape[2] = {R, K};
    const float gradScalesHostData[R * K] = {0};
    void *gradYAddr = NULL, *rowIdxAddr = NULL, *expandedXAddr = NULL, *scalesAddr = NULL, *expertIdxAddr = NULL, *biasAddr = NULL, *gradExpandedXAddr = NULL, *gradScalesAddr = NULL;
    aclTensor *gradY = NULL, *rowIdx = NULL, *expandedX = NULL, *scales = NULL, *expertIdx = NULL, *bias = NULL, *gradExpandedX = NULL, *gradScales = NULL;
    ret = CreateAclTensor(gradYHostData, sizeof(float), gradYShape, 2, &gradYAddr, ACL_FLOAT, &gradY);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(rowIdxHostData, sizeof(int32_t), rowIdxShape, 1, &rowIdxAddr, ACL_INT32, &rowIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expandedXHostData, sizeof(float), expandedXShape, 2, &expandedXAddr, ACL_FLOAT, &expandedX);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(scalesHostData, sizeof(float), scalesShape, 2, &scalesAddr, ACL_FLOAT, &scales);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expertIdxHostData, sizeof(int32_t), expertIdxShape, 2, &expertIdxAddr, ACL_INT32, &expertIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(biasHostData, sizeof(float), biasShape, 2, &biasAddr, ACL_FLOAT, &bias);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(gradExpandedXHostData, sizeof(float), gradExpandedXShape, 2, &gradExpandedXAddr, ACL_FLOAT, &gradExpandedX);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(gradScalesHostData, sizeof(float), gradScalesShape, 2, &gradScalesAddr, ACL_FLOAT, &gradScales);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream */
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeFinalizeRoutingV2GradGetWorkspaceSize(gradY, rowIdx, expandedX, scales, expertIdx, bias, 0, 0, 0, 0, gradExpandedX, gradScales, &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeFinalizeRoutingV2GradGetWorkspaceSize failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeFinalizeRoutingV2Grad(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclnnMoeFinalizeRoutingV2Grad failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. results back to the host, printed and checked */
    int mismatches = 0;
    {
        float got[(R * K) * H];
        static const float expected[(R * K) * H] = {3.0f, 4.0f, 0.5f, 1.0f, 6.0f, 8.0f, 0.25f, 0.5f};
        ret = CopyToHost(got, gradExpandedXAddr, sizeof got);
        CHECK_RET(ret == ACL_SUCCESS, return ret);
        for (int64_t i = 0; i < (R * K) * H; i++) {
            int bad = !(fabsf(got[i] - expected[i]) <= 1e-6f);
            mismatches += bad;
            LOG_PRINT("gradExpandedX[%ld] is: %f%s\n", (long)i, got[i], bad ? "   <-- MISMATCH" : "");
        }
    }
    {
        float got[R * K];
        static const float expected[R * K] = {3.5f, 3.0f, 6.0f, 10.5f};
        ret = CopyToHost(got, gradScalesAddr, sizeof got);
        CHECK_RET(ret == ACL_SUCCESS, return ret);
        for (int64_t i = 0; i < R * K; i++) {
            int bad = !(fabsf(got[i] - expected[i]) <= 1e-6f);
            mismatches += bad;
            LOG_PRINT("gradScales[%ld] is: %f%s\n", (long)i, got[i], bad ? "   <-- MISMATCH" : "");
        }
    }

    /* 6. release tensors and arrays */
    aclDestroyTensor(gradY);
    aclDestroyTensor(rowIdx);
    aclDestroyTensor(expandedX);
    aclDestroyTensor(scales);
    aclDestroyTensor(expertIdx);
    aclDestroyTensor(bias);
    aclDestroyTensor(gradExpandedX);
    aclDestroyTensor(gradScales);

    /* 7. release device memory, stream and device */
    aclrtFree(gradYAddr);
    aclrtFree(rowIdxAddr);
    aclrtFree(expandedXAddr);
    aclrtFree(scalesAddr);
    aclrtFree(expertIdxAddr);
    aclrtFree(biasAddr);
    aclrtFree(gradExpandedXAddr);
    aclrtFree(gradScalesAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    Finalize(deviceId, stream);
    LOG_PRINT("moe_finalize_routing_v2_grad: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
