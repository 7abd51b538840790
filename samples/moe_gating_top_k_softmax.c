/*
 * aclnnMoeGatingTopKSoftmax sample, written the way the CANN aclnn samples are: init, device memory, tensors, the
 * two-phase call with a workspace, synchronize, copy back, check, release (the shared steps are in aclnn_sample.h).
 *
 * Three tokens, four experts, k = 2. The logits are logarithms, so the softmax is easy to read: token 0 has
 * log([1, 2, 3, 4]) -> scores [0.1, 0.2, 0.3, 0.4], top-2 experts 3 and 2 with 0.4 and 0.3; token 1 the reverse
 * (experts 0 and 1); token 2 the same as token 0 but finished, so its experts read 4 (the expert count).
 * rowIdxOut is k-major: [[0, 3], [1, 4], [2, 5]]. Returns non-zero when a result differs.
 */
#include <math.h> /* fabsf */
#include <stdint.h>
#include <stdio.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_gating_top_k_softmax.h"

#define N 3 /* tokens */
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
    const int64_t xShape[2] = {N, E}, finishedShape[1] = {N}, outShape[2] = {N, K};
    static const float logOf[E] = {0.0f, 0.69314718f, 1.09861229f, 1.38629436f}; /* log 1 .. log 4 */
    float xHostData[N * E];
    for (int e = 0; e < E; e++) {
        xHostData[0 * E + e] = logOf[e];
        xHostData[1 * E + e] = logOf[E - 1 - e];
        xHostData[2 * E + e] = logOf[e];
    }
    const uint8_t finishedHostData[N] = {0, 0, 1};
    const float yHostData[N * K] = {0};
    const int32_t idxHostData[N * K] = {0}, rowHostData[N * K] = {0};
    int64_t k = K;
    void *xAddr = NULL, *finishedAddr = NULL, *yAddr = NULL, *idxAddr = NULL, *rowAddr = NULL;
    aclTensor *x = NULL, *finished = NULL, *y = NULL, *idx = NULL, *row = NULL;
    ret = CreateAclTensor(xHostData, sizeof(float), xShape, 2, &xAddr, ACL_FLOAT, &x);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(finishedHostData, sizeof(uint8_t), finishedShape, 1, &finishedAddr, ACL_BOOL, &finished);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(yHostData, sizeof(float), outShape, 2, &yAddr, ACL_FLOAT, &y);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(idxHostData, sizeof(int32_t), outShape, 2, &idxAddr, ACL_INT32, &idx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(rowHostData, sizeof(int32_t), outShape, 2, &rowAddr, ACL_INT32, &row);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream */
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeGatingTopKSoftmaxGetWorkspaceSize(x, finished, k, y, idx, row, &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclnnMoeGatingTopKSoftmaxGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
                                            aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeGatingTopKSoftmax(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeGatingTopKSoftmax failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg()); return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. results back to the host, printed and checked */
    float yData[N * K];
    int32_t idxData[N * K], rowData[N * K];
    ret = CopyToHost(yData, yAddr, sizeof yData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(idxData, idxAddr, sizeof idxData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(rowData, rowAddr, sizeof rowData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    static const float expectedY[N * K] = {0.4f, 0.3f, 0.4f, 0.3f, 0.4f, 0.3f};
    static const int32_t expectedIdx[N * K] = {3, 2, 0, 1, E, E};
    static const int32_t expectedRow[N * K] = {0, 3, 1, 4, 2, 5};
    int mismatches = 0;
    for (int64_t i = 0; i < N * K; i++) {
        int bad = !(fabsf(yData[i] - expectedY[i]) <= 1e-6f) || idxData[i] != expectedIdx[i] ||
                  rowData[i] != expectedRow[i];
        mismatches += bad;
        LOG_PRINT("yOut[%ld] is: %f, expertIdxOut[%ld] is: %d, rowIdxOut[%ld] is: %d%s\n", (long)i, yData[i], (long)i,
                  idxData[i], (long)i, rowData[i], bad ? "   <-- MISMATCH" : "");
    }

    /* 6. release tensors */
    aclDestroyTensor(x);
    aclDestroyTensor(finished);
    aclDestroyTensor(y);
    aclDestroyTensor(idx);
    aclDestroyTensor(row);

    /* 7. release device memory, stream and device */
    aclrtFree(xAddr);
    aclrtFree(finishedAddr);
    aclrtFree(yAddr);
    aclrtFree(idxAddr);
    aclrtFree(rowAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    Finalize(deviceId, stream);
    LOG_PRINT("moe_gating_top_k_softmax: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
