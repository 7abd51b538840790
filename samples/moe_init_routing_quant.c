/*
 * aclnnMoeInitRoutingQuant sample, written the way the CANN aclnn samples are: init, device memory, tensors, the
 * two-phase call with a workspace, synchronize, copy back, check, release (the shared steps are in aclnn_sample.h).
 *
 * MoeInitRouting's V1 routing with static int8 quantisation: 3 tokens of hidden size 4 pick 2 of 4 experts,
 * expertIdx = [[1, 2], [0, 1], [3, 2]], with the usual k-major rowIdx[i, k] = k*N + i = [[0, 3], [1, 4], [2, 5]].
 * The pairs sorted stably by expert give expandedExpertIdx = [0, 1, 1, 2, 2, 3] and expandedRowIdx =
 * [1, 0, 5, 3, 2, 4]; activeNum = 2 keeps min(N, 2) * K = 4 rows, from tokens 1, 0, 1, 0, quantised as
 * int8(rint(fp16(x) * fp16(20) + fp16(0.5))) in fp16 arithmetic: -1.1 is -1.0996 in fp16, times 20 rounds to -22.0,
 * plus 0.5 is -21.5, which rounds to the even -22 (fp32 arithmetic would give -21). Returns non-zero when a result
 * differs.
 */
#include <stdint.h>
#include <stdio.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_init_routing_quant.h"

#define N 3 /* tokens */
#define K 2 /* experts per token */
#define H 4 /* hidden size */
#define ACTIVE 2
#define ROWS (ACTIVE * K)

int main(void)
{
    /* 1. device and stream */
    int32_t deviceId = 0;
    aclrtStream stream;
    int ret = Init(deviceId, &stream);
    CHECK_RET(ret == 0, LOG_PRINT("Init acl failed. ERROR: %d\n", ret); return ret);

    /* 2. inputs and outputs */
    const int64_t xShape[2] = {N, H}, idxShape[2] = {N, K}, expandedXShape[2] = {ROWS, H}, flatShape[1] = {N * K};
    const float xHostData[N * H] = {0.1f, -0.2f, 0.3f, 0.9f, 1.5f, -1.1f, 0.25f, 0.05f, -0.7f, 0.6f, 2.0f, -3.0f};
    const int32_t rowIdxHostData[N * K] = {0, 3, 1, 4, 2, 5};
    const int32_t expertIdxHostData[N * K] = {1, 2, 0, 1, 3, 2};
    const int8_t expandedXHostData[ROWS * H] = {0};
    const int32_t zeros[N * K] = {0};
    int64_t activeNum = ACTIVE;
    double scale = 20.0, offset = 0.5;
    void *xAddr = NULL, *rowIdxAddr = NULL, *expertIdxAddr = NULL, *expandedXAddr = NULL;
    void *expandedRowIdxAddr = NULL, *expandedExpertIdxAddr = NULL;
    aclTensor *x = NULL, *rowIdx = NULL, *expertIdx = NULL, *expandedX = NULL, *expandedRowIdx = NULL;
    aclTensor *expandedExpertIdx = NULL;
    ret = CreateAclTensor(xHostData, sizeof(float), xShape, 2, &xAddr, ACL_FLOAT, &x);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(rowIdxHostData, sizeof(int32_t), idxShape, 2, &rowIdxAddr, ACL_INT32, &rowIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expertIdxHostData, sizeof(int32_t), idxShape, 2, &expertIdxAddr, ACL_INT32, &expertIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expandedXHostData, sizeof(int8_t), expandedXShape, 2, &expandedXAddr, ACL_INT8, &expandedX);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(zeros, sizeof(int32_t), flatShape, 1, &expandedRowIdxAddr, ACL_INT32, &expandedRowIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(zeros, sizeof(int32_t), flatShape, 1, &expandedExpertIdxAddr, ACL_INT32, &expandedExpertIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream */
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeInitRoutingQuantGetWorkspaceSize(x, rowIdx, expertIdx, activeNum, scale, offset, expandedX,
                                                   expandedRowIdx, expandedExpertIdx, &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeInitRoutingQuantGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
                        aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeInitRoutingQuant(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeInitRoutingQuant failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg()); return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. results back to the host, printed and checked */
    int8_t expandedXData[ROWS * H];
    int32_t expandedRowIdxData[N * K], expandedExpertIdxData[N * K];
    ret = CopyToHost(expandedXData, expandedXAddr, sizeof expandedXData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(expandedRowIdxData, expandedRowIdxAddr, sizeof expandedRowIdxData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(expandedExpertIdxData, expandedExpertIdxAddr, sizeof expandedExpertIdxData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    static const int8_t expectedX[ROWS * H] = {30, -22, 6, 2, 2, -4, 6, 18, 30, -22, 6, 2, 2, -4, 6, 18};
    static const int32_t expectedRowIdx[N * K] = {1, 0, 5, 3, 2, 4};
    static const int32_t expectedExpertIdx[N * K] = {0, 1, 1, 2, 2, 3};
    int mismatches = 0;
    for (int64_t i = 0; i < ROWS * H; i++) {
        int bad = expandedXData[i] != expectedX[i];
        mismatches += bad;
        LOG_PRINT("expandedX[%ld] is: %d%s\n", (long)i, expandedXData[i], bad ? "   <-- MISMATCH" : "");
    }
    for (int64_t i = 0; i < N * K; i++) {
        int bad = expandedRowIdxData[i] != expectedRowIdx[i];
        mismatches += bad;
        LOG_PRINT("expandedRowIdx[%ld] is: %d%s\n", (long)i, expandedRowIdxData[i], bad ? "   <-- MISMATCH" : "");
    }
    for (int64_t i = 0; i < N * K; i++) {
        int bad = expandedExpertIdxData[i] != expectedExpertIdx[i];
        mismatches += bad;
        LOG_PRINT("expandedExpertIdx[%ld] is: %d%s\n", (long)i, expandedExpertIdxData[i],
                  bad ? "   <-- MISMATCH" : "");
    }

    /* 6. release tensors */
    aclDestroyTensor(x);
    aclDestroyTensor(rowIdx);
    aclDestroyTensor(expertIdx);
    aclDestroyTensor(expandedX);
    aclDestroyTensor(expandedRowIdx);
    aclDestroyTensor(expandedExpertIdx);

    /* 7. release device memory, stream and device */
    aclrtFree(xAddr);
    aclrtFree(rowIdxAddr);
    aclrtFree(expertIdxAddr);
    aclrtFree(expandedXAddr);
    aclrtFree(expandedRowIdxAddr);
    aclrtFree(expandedExpertIdxAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    Finalize(deviceId, stream);
    LOG_PRINT("moe_init_routing_quant: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
