/*
 * aclnnMoeInitRoutingV2 sample in dropless mode, written the way the CANN aclnn samples are: init, device memory,
 * tensors, the two-phase call with a workspace, synchronize, copy back, check, release (the shared steps are in
 * aclnn_sample.h).
 *
 * 3 tokens of hidden size 4 pick 2 of 3 experts each: expertIdx = [[1, 2], [0, 1], [0, 2]]. The (token, slot)
 * pairs are sorted by expert, stably: e0:(t1,k0) (t2,k0) | e1:(t0,k0) (t1,k1) | e2:(t0,k1) (t2,k1); with
 * activeNum = 4 the first 4 rows are gathered (tokens 1, 2, 0, 1), expandedRowIdx = [2, 4, 0, 3, 1, 5] and the
 * per-expert cumulative counts (the group list a grouped matmul consumes) are [2, 4, 6]. Returns non-zero when a
 * result differs.
 */
#include <stdint.h>
#include <stdio.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_init_routing_v2.h"

#define N 3 /* tokens */
#define K 2 /* experts per token */
#define H 4 /* hidden size */
#define E 3 /* experts */
#define ACTIVE 4

int main(void)
{
    /* 1. device and stream */
    int32_t deviceId = 0;
    aclrtStream stream;
    int ret = Init(deviceId, &stream);
    CHECK_RET(ret == 0, LOG_PRINT("Init acl failed. ERROR: %d\n", ret); return ret);

    /* 2. inputs and outputs */
    const int64_t xShape[2] = {N, H}, idxShape[2] = {N, K}, expandedXShape[2] = {ACTIVE, H};
    const int64_t rowIdxShape[1] = {N * K}, countShape[1] = {E};
    const float xHostData[N * H] = {0.1f, 0.1f, 0.1f, 0.1f, 0.2f, 0.2f, 0.2f, 0.2f, 0.3f, 0.3f, 0.3f, 0.3f};
    const int32_t expertIdxHostData[N * K] = {1, 2, 0, 1, 0, 2};
    const float expandedXHostData[ACTIVE * H] = {0};
    const int32_t rowIdxHostData[N * K] = {0}, countHostData[E] = {0};
    int64_t activeNum = ACTIVE, expertCapacity = 0, expertNum = E, dropPadMode = 0;
    int64_t expertTokensCountOrCumsumFlag = 1; /* 1: cumsum, 2: count */
    bool expertTokensBeforeCapacityFlag = false;
    void *xAddr = NULL, *expertIdxAddr = NULL, *expandedXAddr = NULL, *rowIdxAddr = NULL, *countAddr = NULL;
    aclTensor *x = NULL, *expertIdx = NULL, *expandedX = NULL, *rowIdx = NULL, *count = NULL;
    ret = CreateAclTensor(xHostData, sizeof(float), xShape, 2, &xAddr, ACL_FLOAT, &x);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expertIdxHostData, sizeof(int32_t), idxShape, 2, &expertIdxAddr, ACL_INT32, &expertIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expandedXHostData, sizeof(float), expandedXShape, 2, &expandedXAddr, ACL_FLOAT, &expandedX);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(rowIdxHostData, sizeof(int32_t), rowIdxShape, 1, &rowIdxAddr, ACL_INT32, &rowIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(countHostData, sizeof(int32_t), countShape, 1, &countAddr, ACL_INT32, &count);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream */
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeInitRoutingV2GetWorkspaceSize(x, expertIdx, activeNum, expertCapacity, expertNum, dropPadMode,
                                                expertTokensCountOrCumsumFlag, expertTokensBeforeCapacityFlag,
                                                expandedX, rowIdx, count, NULL, &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeInitRoutingV2GetWorkspaceSize failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeInitRoutingV2(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeInitRoutingV2 failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg()); return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. results back to the host, printed and checked */
    float expandedXData[ACTIVE * H];
    int32_t rowIdxData[N * K], cumsumData[E];
    ret = CopyToHost(expandedXData, expandedXAddr, sizeof expandedXData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(rowIdxData, rowIdxAddr, sizeof rowIdxData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CopyToHost(cumsumData, countAddr, sizeof cumsumData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    static const float expectedRow[ACTIVE] = {0.2f, 0.3f, 0.1f, 0.2f}; /* the value of each gathered row */
    static const int32_t expectedRowIdx[N * K] = {2, 4, 0, 3, 1, 5};
    static const int32_t expectedCumsum[E] = {2, 4, 6};
    int mismatches = 0;
    for (int64_t i = 0; i < ACTIVE * H; i++) {
        int bad = expandedXData[i] != expectedRow[i / H];
        mismatches += bad;
        LOG_PRINT("expandedX[%ld] is: %f%s\n", (long)i, expandedXData[i], bad ? "   <-- MISMATCH" : "");
    }
    for (int64_t i = 0; i < N * K; i++) {
        int bad = rowIdxData[i] != expectedRowIdx[i];
        mismatches += bad;
        LOG_PRINT("expandedRowIdx[%ld] is: %d%s\n", (long)i, rowIdxData[i], bad ? "   <-- MISMATCH" : "");
    }
    for (int64_t e = 0; e < E; e++) {
        int bad = cumsumData[e] != expectedCumsum[e];
        mismatches += bad;
        LOG_PRINT("expertTokensCumsum[%ld] is: %d%s\n", (long)e, cumsumData[e], bad ? "   <-- MISMATCH" : "");
    }

    /* 6. release tensors */
    aclDestroyTensor(x);
    aclDestroyTensor(expertIdx);
    aclDestroyTensor(expandedX);
    aclDestroyTensor(rowIdx);
    aclDestroyTensor(count);

    /* 7. release device memory, stream and device */
    aclrtFree(xAddr);
    aclrtFree(expertIdxAddr);
    aclrtFree(expandedXAddr);
    aclrtFree(rowIdxAddr);
    aclrtFree(countAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    Finalize(deviceId, stream);
    LOG_PRINT("moe_init_routing_v2: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
