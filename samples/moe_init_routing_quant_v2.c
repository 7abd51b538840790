/*
 * aclnnMoeInitRoutingQuantV2 sample (what torch_npu.npu_moe_init_routing_quant runs), written the way the CANN aclnn
 * samples are: init, device memory, tensors, the two-phase call with a workspace, synchronize, copy back, check,
 * release (the shared steps are in aclnn_sample.h).
 *
 * The w8a8 dispatch: dropless routing with dynamic int8 quantisation and a per-expert smooth scale [E, H].
 * 3 tokens of hidden size 4 pick 2 of 4 experts, expertIdx = [[1, 2], [0, 1], [3, 2]]: the rows, sorted stably by
 * expert, are (token, expert) = (1, 0) (0, 1) (1, 1) (0, 2) (2, 2) (2, 3), expandedRowIdx = [1, 3, 0, 2, 5, 4] and
 * the per-expert counts (flag 2) are [1, 2, 2, 1]. Each row is xs = x[token] * smooth[expert], s = max|xs| / 127,
 * q = round(xs / s) with ties away from zero (the NPU kernel's rounding). Returns non-zero when a result differs.
 */
#include <stdint.h>
#include <stdio.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_init_routing_quant_v2.h"

#define N 3 /* tokens */
#define K 2 /* experts per token */
#define H 4 /* hidden size */
#define E 4 /* experts */

int main(void)
{
    /* 1. device and stream */
    int32_t deviceId = 0;
    aclrtStream stream;
    int ret = Init(deviceId, &stream);
    CHECK_RET(ret == 0, LOG_PRINT("Init acl failed. ERROR: %d\n", ret); return ret);

    /* 2. inputs and outputs */
    const int64_t xShape[2] = {N, H}, idxShape[2] = {N, K}, smoothShape[2] = {E, H}, expandedXShape[2] = {N * K, H};
    const int64_t flatShape[1] = {N * K}, countShape[1] = {E};
    const float xHostData[N * H] = {0.1f, -0.2f, 0.3f, 0.9f, 1.5f, -1.1f, 0.25f, 0.05f, -0.7f, 0.6f, 2.0f, -3.0f};
    const int32_t expertIdxHostData[N * K] = {1, 2, 0, 1, 3, 2};
    const float smoothHostData[E * H] = {1, 1, 1, 1, 2, 1, 0.5f, 1, 1, 1, 1, 4, 0.5f, 0.5f, 0.5f, 0.5f};
    const int8_t expandedXHostData[N * K * H] = {0};
    const int32_t zeros[N * K] = {0};
    const float scaleZeros[N * K] = {0};
    int64_t activeNum = 0, expertCapacity = 0, expertNum = E, dropPadMode = 0;
    int64_t expertTokensCountOrCumsumFlag = 2; /* 0: none, 1: cumsum, 2: count */
    bool expertTokensBeforeCapacityFlag = false;
    int64_t quantMode = 1; /* 0: static, 1: dynamic */
    void *xAddr = NULL, *expertIdxAddr = NULL, *smoothAddr = NULL, *expandedXAddr = NULL, *rowIdxAddr = NULL;
    void *countAddr = NULL, *scaleAddr = NULL;
    aclTensor *x = NULL, *expertIdx = NULL, *smooth = NULL, *expandedX = NULL, *rowIdx = NULL, *count = NULL;
    aclTensor *dynamicScale = NULL;
    ret = CreateAclTensor(xHostData, sizeof(float), xShape, 2, &xAddr, ACL_FLOAT, &x);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expertIdxHostData, sizeof(int32_t), idxShape, 2, &expertIdxAddr, ACL_INT32, &expertIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(smoothHostData, sizeof(float), smoothShape, 2, &smoothAddr, ACL_FLOAT, &smooth);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expandedXHostData, sizeof(int8_t), expandedXShape, 2, &expandedXAddr, ACL_INT8, &expandedX);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(zeros, sizeof(int32_t), flatShape, 1, &rowIdxAddr, ACL_INT32, &rowIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(zeros, sizeof(int32_t), countShape, 1, &countAddr, ACL_INT32, &count);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(scaleZeros, sizeof(float), flatShape, 1, &scaleAddr, ACL_FLOAT, &dynamicScale);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream (no offset, no before-capacity) */
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeInitRoutingQuantV2GetWorkspaceSize(x, expertIdx, smooth, NULL, activeNum, expertCapacity, expertNum,
                                                     dropPadMode, expertTokensCountOrCumsumFlag,
                                                     expertTokensBeforeCapacityFlag, quantMode, expandedX, rowIdx,
                                                     count, NULL, dynamicScale, &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeInitRoutingQuantV2GetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
                        aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeInitRoutingQuantV2(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeInitRoutingQuantV2 failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. results back to the host, printed and checked */
    int8_t expandedXData[N * K * H];
    int32_t rowIdxData[N * K], countData[E];
    float scaleData[N * K];
    ret = CopyToHost(expandedXData, expandedXAddr, sizeof expandedXData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(rowIdxData, rowIdxAddr, sizeof rowIdxData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(countData, countAddr, sizeof countData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(scaleData, scaleAddr, sizeof scaleData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    static const int8_t expectedX[N * K * H] = {127, -93, 21, 4,   28, -28, 21, 127, 127, -47, 5,  2,
                                                4,   -7,  11, 127, -7, 6,   21, -127, -30, 25, 85, -127};
    static const int32_t expectedRowIdx[N * K] = {1, 3, 0, 2, 5, 4};
    static const int32_t expectedCount[E] = {1, 2, 2, 1};
    static const int rowToken[N * K] = {1, 0, 1, 0, 2, 2}, rowExpert[N * K] = {0, 1, 1, 2, 2, 3};
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
    for (int64_t e = 0; e < E; e++) {
        int bad = countData[e] != expectedCount[e];
        mismatches += bad;
        LOG_PRINT("expertTokensCount[%ld] is: %d%s\n", (long)e, countData[e], bad ? "   <-- MISMATCH" : "");
    }
    for (int64_t r = 0; r < N * K; r++) {
        float m = 0.0f; /* max|x * smooth| of the row, in fp32 as the kernel */
        for (int64_t j = 0; j < H; j++) {
            float v = xHostData[rowToken[r] * H + j] * smoothHostData[rowExpert[r] * H + j];
            v = v < 0 ? -v : v;
            m = v > m ? v : m;
        }
        int bad = scaleData[r] != m / 127.0f;
        mismatches += bad;
        LOG_PRINT("dynamicQuantScale[%ld] is: %f%s\n", (long)r, scaleData[r], bad ? "   <-- MISMATCH" : "");
    }

    /* 6. release tensors */
    aclDestroyTensor(x);
    aclDestroyTensor(expertIdx);
    aclDestroyTensor(smooth);
    aclDestroyTensor(expandedX);
    aclDestroyTensor(rowIdx);
    aclDestroyTensor(count);
    aclDestroyTensor(dynamicScale);

    /* 7. release device memory, stream and device */
    aclrtFree(xAddr);
    aclrtFree(expertIdxAddr);
    aclrtFree(smoothAddr);
    aclrtFree(expandedXAddr);
    aclrtFree(rowIdxAddr);
    aclrtFree(countAddr);
    aclrtFree(scaleAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    Finalize(deviceId, stream);
    LOG_PRINT("moe_init_routing_quant_v2: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
