/*
 * Sample: aclnnMoeInitRoutingV2 in dropless mode, written the way the official aclnn examples are: sort the
 * (token, slot) pairs by expert, gather the first activeNum rows and output the per-expert cumulative counts
 * (the group list a grouped matmul consumes). Self-checking.
 */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include "acl/acl.h"
#include "aclnnop/aclnn_moe_init_routing_v2.h"

#define CHECK_RET(cond, return_expr) \
    do {                             \
        if (!(cond)) {               \
            return_expr;             \
        }                            \
    } while (0)
#define LOG_PRINT(message, ...) printf(message, ##__VA_ARGS__)

static int64_t GetShapeSize(const int64_t *shape, int n)
{
    int64_t size = 1;
    for (int i = 0; i < n; i++) size *= shape[i];
    return size;
}

static int Init(int32_t deviceId, aclrtStream *stream)
{
    aclError ret = aclInit(NULL);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclInit failed. ERROR: %d\n", ret); return ret);
    ret = aclrtSetDevice(deviceId);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSetDevice failed. ERROR: %d\n", ret); return ret);
    ret = aclrtCreateStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtCreateStream failed. ERROR: %d\n", ret); return ret);
    return 0;
}

/* device buffer + contiguous ND aclTensor over it */
static int CreateAclTensor(const void *hostData, size_t elemSize, const int64_t *shape, int ndim, void **deviceAddr,
                           aclDataType dataType, aclTensor **tensor)
{
    size_t size = (size_t)GetShapeSize(shape, ndim) * elemSize;
    aclError ret = aclrtMalloc(deviceAddr, size, ACL_MEM_MALLOC_HUGE_FIRST);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtMalloc failed. ERROR: %d\n", ret); return ret);
    ret = aclrtMemcpy(*deviceAddr, size, hostData, size, ACL_MEMCPY_HOST_TO_DEVICE);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtMemcpy failed. ERROR: %d\n", ret); return ret);
    int64_t strides[8];
    strides[ndim - 1] = 1;
    for (int i = ndim - 2; i >= 0; i--) strides[i] = shape[i + 1] * strides[i + 1];
    *tensor = aclCreateTensor(shape, (uint64_t)ndim, dataType, strides, 0, ACL_FORMAT_ND, shape, (uint64_t)ndim,
                              *deviceAddr);
    return *tensor == NULL;
}
int main(void)
{
    int32_t deviceId = 0;
    aclrtStream stream;
    int ret = Init(deviceId, &stream);
    CHECK_RET(ret == 0, LOG_PRINT("Init acl failed. ERROR: %d\n", ret); return ret);

    int64_t xShape[] = {3, 4}, idxShape[] = {3, 2}, expandedXShape[] = {4, 4}, rowIdxShape[] = {6}, countShape[] = {3};
    float xHost[] = {0.1f, 0.1f, 0.1f, 0.1f, 0.2f, 0.2f, 0.2f, 0.2f, 0.3f, 0.3f, 0.3f, 0.3f};
    int32_t expertIdxHost[] = {1, 2, 0, 1, 0, 2};
    float expandedXHost[16] = {0};
    int32_t rowIdxHost[6] = {0}, countHost[3] = {0};
    int64_t activeNum = 4, expertCapacity = 0, expertNum = 3, dropPadMode = 0;
    int64_t expertTokensCountOrCumsumFlag = 1; /* 1: cumsum, 2: count */
    bool expertTokensBeforeCapacityFlag = false;

    void *xDev = NULL, *idxDev = NULL, *expandedXDev = NULL, *rowIdxDev = NULL, *countDev = NULL;
    aclTensor *x = NULL, *expertIdx = NULL, *expandedX = NULL, *rowIdx = NULL, *count = NULL;
    ret = CreateAclTensor(xHost, sizeof(float), xShape, 2, &xDev, ACL_FLOAT, &x);
    CHECK_RET(ret == 0, return ret);
    ret = CreateAclTensor(expertIdxHost, sizeof(int32_t), idxShape, 2, &idxDev, ACL_INT32, &expertIdx);
    CHECK_RET(ret == 0, return ret);
    ret = CreateAclTensor(expandedXHost, sizeof(float), expandedXShape, 2, &expandedXDev, ACL_FLOAT, &expandedX);
    CHECK_RET(ret == 0, return ret);
    ret = CreateAclTensor(rowIdxHost, sizeof(int32_t), rowIdxShape, 1, &rowIdxDev, ACL_INT32, &rowIdx);
    CHECK_RET(ret == 0, return ret);
    ret = CreateAclTensor(countHost, sizeof(int32_t), countShape, 1, &countDev, ACL_INT32, &count);
    CHECK_RET(ret == 0, return ret);

    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeInitRoutingV2GetWorkspaceSize(x, expertIdx, activeNum, expertCapacity, expertNum, dropPadMode,
                                                expertTokensCountOrCumsumFlag, expertTokensBeforeCapacityFlag,
                                                expandedX, rowIdx, count, NULL, &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclnnMoeInitRoutingV2GetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
                                            aclGetRecentErrMsg()); return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeInitRoutingV2(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclnnMoeInitRoutingV2 failed. ERROR: %d (%s)\n", ret,
                                            aclGetRecentErrMsg()); return ret);
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);
    aclrtMemcpy(expandedXHost, sizeof expandedXHost, expandedXDev, sizeof expandedXHost, ACL_MEMCPY_DEVICE_TO_HOST);
    aclrtMemcpy(rowIdxHost, sizeof rowIdxHost, rowIdxDev, sizeof rowIdxHost, ACL_MEMCPY_DEVICE_TO_HOST);
    aclrtMemcpy(countHost, sizeof countHost, countDev, sizeof countHost, ACL_MEMCPY_DEVICE_TO_HOST);

    /* sorted pairs: e0:(t1,k0) (t2,k0) | e1:(t0,k0) (t1,k1) | e2:(t0,k1) (t2,k1); the first 4 rows are gathered */
    const float wantRows[] = {0.2f, 0.3f, 0.1f, 0.2f};
    const int32_t wantRowIdx[] = {2, 4, 0, 3, 1, 5}, wantCumsum[] = {2, 4, 6};
    int bad = 0;
    for (int r = 0; r < 4; r++) {
        LOG_PRINT("expandedX[%d] = %.2f %.2f %.2f %.2f\n", r, expandedXHost[r * 4], expandedXHost[r * 4 + 1],
                  expandedXHost[r * 4 + 2], expandedXHost[r * 4 + 3]);
        for (int j = 0; j < 4; j++) bad |= expandedXHost[r * 4 + j] != wantRows[r];
    }
    for (int i = 0; i < 6; i++) {
        LOG_PRINT("expandedRowIdx[%d] = %d\n", i, rowIdxHost[i]);
        bad |= rowIdxHost[i] != wantRowIdx[i];
    }
    for (int e = 0; e < 3; e++) {
        LOG_PRINT("expertTokensCumsum[%d] = %d\n", e, countHost[e]);
        bad |= countHost[e] != wantCumsum[e];
    }

    aclDestroyTensor(x);
    aclDestroyTensor(expertIdx);
    aclDestroyTensor(expandedX);
    aclDestroyTensor(rowIdx);
    aclDestroyTensor(count);
    aclrtFree(xDev);
    aclrtFree(idxDev);
    aclrtFree(expandedXDev);
    aclrtFree(rowIdxDev);
    aclrtFree(countDev);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    aclrtDestroyStream(stream);
    aclrtResetDevice(deviceId);
    aclFinalize();
    LOG_PRINT("%s\n", bad ? "MISMATCH" : "OK");
    return bad;
}
