/*
 * aclnnMoeInitRouting (V1) sample, written the way the CANN aclnn samples are: init, device memory, tensors, the
 * two-phase call with a workspace, synchronize, copy back, check, release (the shared steps are in aclnn_sample.h).
 *
 * 3 tokens pick K = 2 experts each: expertIdx = [[1, 2], [0, 1], [0, 2]], with the standard
 * rowIdx[i, k] = k*N + i = [[0, 3], [1, 4], [2, 5]] and activeNum = 3. The (token, slot) pairs are sorted by
 * expert, stably: expandedExpertIdx = [0, 0, 1, 1, 2, 2], expandedX = rows of x in that order (tokens
 * 1, 2, 0, 1, 0, 2), and expandedRowIdx[rowIdx value] = destination row = [2, 0, 1, 4, 3, 5] (k-major, the layout
 * aclnnMoeFinalizeRouting reads). Returns non-zero when a result differs.
 */
#include <stdint.h>
#include <stdio.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_init_routing.h"

#define N 3
#define K 2
#define H 4

int main(void)
{
    /* 1. device and stream */
    int32_t deviceId = 0;
    aclrtStream stream;
    int ret = Init(deviceId, &stream);
    CHECK_RET(ret == 0, LOG_PRINT("Init acl failed. ERROR: %d\n", ret); return ret);

    /* 2. inputs and outputs */
    const float xHostData[N * H] = {0.1f, 0.1f, 0.1f, 0.1f, 0.2f, 0.2f, 0.2f, 0.2f, 0.3f, 0.3f, 0.3f, 0.3f};
    const int32_t expertIdxHostData[N * K] = {1, 2, 0, 1, 0, 2};
    const int32_t rowIdxHostData[N * K] = {0, 3, 1, 4, 2, 5};
    int64_t activeNum = N;
    const float expandedXOutHostData[N * K * H] = {0};
    const int32_t expandedRowIdxOutHostData[N * K] = {0};
    const int32_t expandedExpertIdxOutHostData[N * K] = {0};
    const int64_t xShape[2] = {N, H}, idxShape[2] = {N, K}, expandedXShape[2] = {N * K, H}, idxOutShape[1] = {N * K};
    void *xAddr = NULL, *rowIdxAddr = NULL, *expertIdxAddr = NULL;
    void *expandedXAddr = NULL, *expandedRowIdxAddr = NULL, *expandedExpertIdxAddr = NULL;
    aclTensor *x = NULL, *rowIdx = NULL, *expertIdx = NULL;
    aclTensor *expandedXOut = NULL, *expandedRowIdxOut = NULL, *expandedExpertIdxOut = NULL;
    ret = CreateAclTensor(xHostData, sizeof(float), xShape, 2, &xAddr, ACL_FLOAT, &x);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(rowIdxHostData, sizeof(int32_t), idxShape, 2, &rowIdxAddr, ACL_INT32, &rowIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expertIdxHostData, sizeof(int32_t), idxShape, 2, &expertIdxAddr, ACL_INT32, &expertIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expandedXOutHostData, sizeof(float), expandedXShape, 2, &expandedXAddr, ACL_FLOAT,
                          &expandedXOut);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expandedRowIdxOutHostData, sizeof(int32_t), idxOutShape, 1, &expandedRowIdxAddr, ACL_INT32,
                          &expandedRowIdxOut);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expandedExpertIdxOutHostData, sizeof(int32_t), idxOutShape, 1, &expandedExpertIdxAddr,
                          ACL_INT32, &expandedExpertIdxOut);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream */
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeInitRoutingGetWorkspaceSize(x, rowIdx, expertIdx, activeNum, expandedXOut, expandedRowIdxOut,
                                              expandedExpertIdxOut, &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeInitRoutingGetWorkspaceSize failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeInitRouting(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeInitRouting failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg()); return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. results back to the host, printed and checked */
    float expandedXData[N * K * H];
    int32_t expandedRowIdxData[N * K], expandedExpertIdxData[N * K];
    ret = CopyToHost(expandedXData, expandedXAddr, sizeof expandedXData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(expandedRowIdxData, expandedRowIdxAddr, sizeof expandedRowIdxData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(expandedExpertIdxData, expandedExpertIdxAddr, sizeof expandedExpertIdxData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    static const int32_t expectedRowIdx[N * K] = {2, 0, 1, 4, 3, 5};
    static const int32_t expectedExpertIdx[N * K] = {0, 0, 1, 1, 2, 2};
    static const int expectedToken[N * K] = {1, 2, 0, 1, 0, 2}; /* source token of each expanded row */
    int mismatches = 0;
    for (int64_t i = 0; i < N * K * H; i++) {
        int bad = expandedXData[i] != xHostData[expectedToken[i / H] * H + i % H];
        mismatches += bad;
        LOG_PRINT("expandedXData[%ld] is: %f%s\n", (long)i, expandedXData[i], bad ? "   <-- MISMATCH" : "");
    }
    for (int64_t i = 0; i < N * K; i++) {
        int bad = expandedRowIdxData[i] != expectedRowIdx[i];
        mismatches += bad;
        LOG_PRINT("expandedRowIdxData[%ld] is: %d%s\n", (long)i, expandedRowIdxData[i], bad ? "   <-- MISMATCH" : "");
    }
    for (int64_t i = 0; i < N * K; i++) {
        int bad = expandedExpertIdxData[i] != expectedExpertIdx[i];
        mismatches += bad;
        LOG_PRINT("expandedExpertIdxData[%ld] is: %d%s\n", (long)i, expandedExpertIdxData[i],
                  bad ? "   <-- MISMATCH" : "");
    }

    /* 6. release tensors */
    aclDestroyTensor(x);
    aclDestroyTensor(rowIdx);
    aclDestroyTensor(expertIdx);
    aclDestroyTensor(expandedXOut);
    aclDestroyTensor(expandedRowIdxOut);
    aclDestroyTensor(expandedExpertIdxOut);

    /* 7. release device memory, stream and device */
    aclrtFree(xAddr);
    aclrtFree(rowIdxAddr);
    aclrtFree(expertIdxAddr);
    aclrtFree(expandedXAddr);
    aclrtFree(expandedRowIdxAddr);
    aclrtFree(expandedExpertIdxAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    Finalize(deviceId, stream);
    LOG_PRINT("moe_init_routing: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
