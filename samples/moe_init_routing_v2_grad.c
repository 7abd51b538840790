/*
 * aclnnMoeInitRoutingV2Grad sample, written the way the CANN aclnn samples are: init, device memory, tensors, the
 * two-phase call with a workspace, synchronize, copy back, check, release (the shared steps are in aclnn_sample.h).
 *
 * Two tokens routed to two experts each in drop/pad mode with 2 experts of capacity 1: the forward kept (t0, k0)
 * in slot 1, (t1, k0) in slot 0 and dropped the other pairs (expandedRowIdx = [1, -1, 0, -1]). The gradient of x
 * sums each token's slots; a dropped pair adds nothing.
 * Returns non-zero when a result differs.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_init_routing_v2_grad.h"

#define N 2 /* tokens */
#define K 2 /* experts per token */
#define H 3 /* hidden size */
#define E 2 /* experts */
#define C 1 /* capacity */

int main(void)
{
    /* 1. device and stream */
    int32_t deviceId = 0;
    aclrtStream stream;
    int ret = Init(deviceId, &stream);
    CHECK_RET(ret == 0, LOG_PRINT("Init acl failed. ERROR: %d\n", ret); return ret);

    /* 2. inputs and outputs */
    const int64_t gradExpandedXShape[3] = {E, C, H};
    const float gradExpandedXHostData[E * C * H] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f};
    const int64_t rowIdxShape[1] = {N * K};
    const int32_t rowIdxHostData[N * K] = {1, -1, 0, -1};
    const int64_t gradXShape[2] = {N, H};
    const float gradXHostData[N * H] = {0};
    void *gradExpandedXAddr = NULL, *rowIdxAddr = NULL, *gradXAddr = NULL;
    aclTensor *gradExpandedX = NULL, *rowIdx = NULL, *gradX = NULL;
    ret = CreateAclTensor(gradExpandedXHostData, sizeof(float), gradExpandedXShape, 3, &gradExpandedXAddr, ACL_FLOAT, &gradExpandedX);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(rowIdxHostData, sizeof(int32_t), rowIdxShape, 1, &rowIdxAddr, ACL_INT32, &rowIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(gradXHostData, sizeof(float), gradXShape, 2, &gradXAddr, ACL_FLOAT, &gradX);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream */
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeInitRoutingV2GradGetWorkspaceSize(gradExpandedX, rowIdx, K, 1, 0, gradX, &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeInitRoutingV2GradGetWorkspaceSize failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeInitRoutingV2Grad(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclnnMoeInitRoutingV2Grad failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. results back to the host, printed and checked */
    int mismatches = 0;
    {
        float got[N * H];
        static const float expected[N * H] = {4.0f, 5.0f, 6.0f, 1.0f, 2.0f, 3.0f};
        ret = CopyToHost(got, gradXAddr, sizeof got);
        CHECK_RET(ret == ACL_SUCCESS, return ret);
        for (int64_t i = 0; i < N * H; i++) {
            int bad = !(fabsf(got[i] - expected[i]) <= 1e-6f);
            mismatches += bad;
            LOG_PRINT("gradX[%ld] is: %f%s\n", (long)i, got[i], bad ? "   <-- MISMATCH" : "");
        }
    }

    /* 6. release tensors and arrays */
    aclDestroyTensor(gradExpandedX);
    aclDestroyTensor(rowIdx);
    aclDestroyTensor(gradX);

    /* 7. release device memory, stream and device */
    aclrtFree(gradExpandedXAddr);
    aclrtFree(rowIdxAddr);
    aclrtFree(gradXAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    Finalize(deviceId, stream);
    LOG_PRINT("moe_init_routing_v2_grad: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
