/*
 * aclnnMoeInitRoutingV3 sample (what torch_npu.npu_moe_init_routing_v2 runs), written the way the CANN aclnn samples
 * are: init, device memory, tensors, the two-phase call with a workspace, synchronize, copy back, check, release
 * (the shared steps are in aclnn_sample.h).
 *
 * Expert parallelism on one rank that owns experts [1, 3) of 4, with dynamic int8 quantisation (quantMode 1):
 * 3 tokens of hidden size 4 pick 2 experts each, expertIdx = [[1, 2], [0, 1], [3, 2]]. The pairs of the local
 * experts, sorted stably, are e1:(t0,k0) (t1,k1) | e2:(t0,k1) (t2,k1): expandedRowIdx (gather form) = [0, 2, -1, 1,
 * -1, 3] (-1: the pair went to another rank), the rows 0..3 are tokens 0, 1, 0, 2 quantised per row with
 * s = max|row| / 127 and q = rint(row / s), rows 4 and 5 are empty; the per-expert counts are [2, 2] (int64).
 * Returns non-zero when a result differs.
 */
#include <stdint.h>
#include <stdio.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_init_routing_v3.h"

#define N 3 /* tokens */
#define K 2 /* experts per token */
#define H 4 /* hidden size */
#define E 4 /* experts */
#define START 1
#define END 3

int main(void)
{
    /* 1. device and stream */
    int32_t deviceId = 0;
    aclrtStream stream;
    int ret = Init(deviceId, &stream);
    CHECK_RET(ret == 0, LOG_PRINT("Init acl failed. ERROR: %d\n", ret); return ret);

    /* 2. inputs and outputs */
    const int64_t xShape[2] = {N, H}, idxShape[2] = {N, K}, expandedXShape[2] = {N * K, H};
    const int64_t rowIdxShape[1] = {N * K}, countShape[1] = {END - START}, scaleShape[1] = {N * K};
    const float xHostData[N * H] = {1.0f, 3.0f, -2.0f, 5.0f, -8.0f, 5.0f, 2.0f, 0.0f, 0.3f, 0.6f, 1.0f, -0.2f};
    const int32_t expertIdxHostData[N * K] = {1, 2, 0, 1, 3, 2};
    const int8_t expandedXHostData[N * K * H] = {0};
    const int32_t rowIdxHostData[N * K] = {0};
    const int64_t countHostData[END - START] = {0};
    const float scaleHostData[N * K] = {0};
    const int64_t range[2] = {START, END};
    int64_t activeNum = -1, expertCapacity = 0, expertNum = E, dropPadMode = 0;
    int64_t expertTokensNumType = 1; /* 0: cumsum, 1: count, 2: key_value */
    bool expertTokensNumFlag = true;
    int64_t quantMode = 1; /* -1: none, 0: static, 1: dynamic int8 */
    int64_t rowIdxType = 0; /* 0: gather form, 1: scatter form */
    aclIntArray *activeExpertRange = aclCreateIntArray(range, 2);
    CHECK_RET(activeExpertRange != NULL, LOG_PRINT("aclCreateIntArray failed.\n"); return -1);
    void *xAddr = NULL, *expertIdxAddr = NULL, *expandedXAddr = NULL, *rowIdxAddr = NULL, *countAddr = NULL;
    void *scaleAddr = NULL;
    aclTensor *x = NULL, *expertIdx = NULL, *expandedX = NULL, *rowIdx = NULL, *count = NULL, *expandedScale = NULL;
    ret = CreateAclTensor(xHostData, sizeof(float), xShape, 2, &xAddr, ACL_FLOAT, &x);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expertIdxHostData, sizeof(int32_t), idxShape, 2, &expertIdxAddr, ACL_INT32, &expertIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expandedXHostData, sizeof(int8_t), expandedXShape, 2, &expandedXAddr, ACL_INT8, &expandedX);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(rowIdxHostData, sizeof(int32_t), rowIdxShape, 1, &rowIdxAddr, ACL_INT32, &rowIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(countHostData, sizeof(int64_t), countShape, 1, &countAddr, ACL_INT64, &count);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(scaleHostData, sizeof(float), scaleShape, 1, &scaleAddr, ACL_FLOAT, &expandedScale);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream (no smooth scale, no offset) */
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeInitRoutingV3GetWorkspaceSize(x, expertIdx, NULL, NULL, activeNum, expertCapacity, expertNum,
                                                dropPadMode, expertTokensNumType, expertTokensNumFlag, quantMode,
                                                activeExpertRange, rowIdxType, expandedX, rowIdx, count,
                                                expandedScale, &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeInitRoutingV3GetWorkspaceSize failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeInitRoutingV3(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeInitRoutingV3 failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg()); return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. results back to the host, printed and checked */
    int8_t expandedXData[N * K * H];
    int32_t rowIdxData[N * K];
    int64_t countData[END - START];
    float scaleData[N * K];
    ret = CopyToHost(expandedXData, expandedXAddr, sizeof expandedXData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(rowIdxData, rowIdxAddr, sizeof rowIdxData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(countData, countAddr, sizeof countData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(scaleData, scaleAddr, sizeof scaleData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    static const int8_t expectedX[N * K * H] = {25, 76, -51, 127, -127, 79, 32, 0, 25, 76, -51, 127,
                                                38, 76, 127, -25, 0, 0, 0, 0, 0, 0, 0, 0};
    static const int32_t expectedRowIdx[N * K] = {0, 2, -1, 1, -1, 3};
    static const int64_t expectedCount[END - START] = {2, 2};
    static const float rowMax[N * K] = {5.0f, 8.0f, 5.0f, 1.0f, 0.0f, 0.0f}; /* max|row| of tokens 0, 1, 0, 2 */
    int mismatches = 0;
    for (int64_t i = 0; i < N * K * H; i++) {
        int bad = expandedXData[i] != expectedX[i];
        mismatches += bad;
        LOG_PRINT("expandedX[%ld] is: %d%s\n", (long)i, expandedXData[i], bad ? "   <-- MISMATCH" : "");
    }
    for (int64_t i = 0; i < N * K; i++) {
        int bad = rowIdxData[i] != expectedRowIdx[i];
        mismatches += bad;
        LOG_PRINT("expandedRowIdx[%ld] is: %d%s\n", (long)i, rowIdxData[i], bad ? "   <-- MISMATCH" : "");
    }
    for (int64_t e = 0; e < END - START; e++) {
        int bad = countData[e] != expectedCount[e];
        mismatches += bad;
        LOG_PRINT("expertTokensCount[%ld] is: %ld%s\n", (long)e, (long)countData[e], bad ? "   <-- MISMATCH" : "");
    }
    for (int64_t i = 0; i < N * K; i++) {
        int bad = scaleData[i] != rowMax[i] / 127.0f;
        mismatches += bad;
        LOG_PRINT("expandedScale[%ld] is: %f%s\n", (long)i, scaleData[i], bad ? "   <-- MISMATCH" : "");
    }

    /* 6. release tensors and the range */
    aclDestroyTensor(x);
    aclDestroyTensor(expertIdx);
    aclDestroyTensor(expandedX);
    aclDestroyTensor(rowIdx);
    aclDestroyTensor(count);
    aclDestroyTensor(expandedScale);
    aclDestroyIntArray(activeExpertRange);

    /* 7. release device memory, stream and device */
    aclrtFree(xAddr);
    aclrtFree(expertIdxAddr);
    aclrtFree(expandedXAddr);
    aclrtFree(rowIdxAddr);
    aclrtFree(countAddr);
    aclrtFree(scaleAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    Finalize(deviceId, stream);
    LOG_PRINT("moe_init_routing_v3: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
