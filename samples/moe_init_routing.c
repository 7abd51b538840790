/*
 * aclnnMoeInitRouting (V1) sample, written the way the CANN aclnn samples are: init, device memory, tensors, the
 * two-phase call with a workspace, synchronize, copy back, check, release.
 *
 * 3 tokens pick K = 2 experts each: expertIdx = [[1, 2], [0, 1], [0, 2]], with the standard
 * rowIdx[i, k] = k*N + i = [[0, 3], [1, 4], [2, 5]] and activeNum = 3. The (token, slot) pairs are sorted by
 * expert, stably: expandedExpertIdx = [0, 0, 1, 1, 2, 2], expandedX = rows of x in that order (tokens
 * 1, 2, 0, 1, 0, 2), and expandedRowIdx[rowIdx value] = destination row = [2, 0, 1, 4, 3, 5] (k-major, the layout
 * aclnnMoeFinalizeRouting reads). Returns non-zero when a result differs.
 */
#include <stdint.h>
#include <stdio.h>

#include "acl/acl.h"
#include "aclnnop/aclnn_moe_init_routing.h"

#define CHECK_RET(cond, return_expr) \
    do {                             \
        if (!(cond)) {               \
            return_expr;             \
        }                            \
    } while (0)

#define LOG_PRINT(message, ...)         \
    do {                                \
        printf(message, ##__VA_ARGS__); \
    } while (0)

#define N 3
#define K 2
#define H 4

static int Init(int32_t deviceId, aclrtStream *stream)
{
    /* fixed pattern: initialise ACL, select the device, create a stream */
    aclError ret = aclInit(NULL);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclInit failed. ERROR: %d\n", ret); return ret);
    ret = aclrtSetDevice(deviceId);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSetDevice failed. ERROR: %d\n", ret); return ret);
    ret = aclrtCreateStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtCreateStream failed. ERROR: %d\n", ret); return ret);
    return 0;
}

/* device copy of a host array (4-byte elements) and a contiguous ND tensor of the given shape over it */
static int CreateAclTensor(const void *hostData, const int64_t *shape, uint64_t ndim, aclDataType dataType,
                           void **deviceAddr, aclTensor **tensor)
{
    int64_t count = 1;
    for (uint64_t i = 0; i < ndim; i++) count *= shape[i];
    size_t size = (size_t)count * 4;
    aclError ret = aclrtMalloc(deviceAddr, size, ACL_MEM_MALLOC_HUGE_FIRST);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtMalloc failed. ERROR: %d\n", ret); return ret);
    ret = aclrtMemcpy(*deviceAddr, size, hostData, size, ACL_MEMCPY_HOST_TO_DEVICE);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtMemcpy failed. ERROR: %d\n", ret); return ret);
    int64_t strides[2] = {ndim == 2 ? shape[1] : 1, 1};
    *tensor = aclCreateTensor(shape, ndim, dataType, strides, 0, ACL_FORMAT_ND, shape, ndim, *deviceAddr);
    CHECK_RET(*tensor != NULL, LOG_PRINT("aclCreateTensor failed.\n"); return -1);
    return 0;
}

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
    ret = CreateAclTensor(xHostData, xShape, 2, ACL_FLOAT, &xAddr, &x);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(rowIdxHostData, idxShape, 2, ACL_INT32, &rowIdxAddr, &rowIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expertIdxHostData, idxShape, 2, ACL_INT32, &expertIdxAddr, &expertIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expandedXOutHostData, expandedXShape, 2, ACL_FLOAT, &expandedXAddr, &expandedXOut);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expandedRowIdxOutHostData, idxOutShape, 1, ACL_INT32, &expandedRowIdxAddr,
                          &expandedRowIdxOut);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expandedExpertIdxOutHostData, idxOutShape, 1, ACL_INT32, &expandedExpertIdxAddr,
                          &expandedExpertIdxOut);
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
    ret = aclrtMemcpy(expandedXData, sizeof expandedXData, expandedXAddr, sizeof expandedXData,
                      ACL_MEMCPY_DEVICE_TO_HOST);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("copy result from device to host failed. ERROR: %d\n", ret); return ret);
    ret = aclrtMemcpy(expandedRowIdxData, sizeof expandedRowIdxData, expandedRowIdxAddr, sizeof expandedRowIdxData,
                      ACL_MEMCPY_DEVICE_TO_HOST);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("copy result from device to host failed. ERROR: %d\n", ret); return ret);
    ret = aclrtMemcpy(expandedExpertIdxData, sizeof expandedExpertIdxData, expandedExpertIdxAddr,
                      sizeof expandedExpertIdxData, ACL_MEMCPY_DEVICE_TO_HOST);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("copy result from device to host failed. ERROR: %d\n", ret); return ret);

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
    aclrtDestroyStream(stream);
    aclrtResetDevice(deviceId);
    aclFinalize();
    LOG_PRINT("%s\n", mismatches ? "moe_init_routing: FAILED" : "moe_init_routing: OK");
    return mismatches ? 1 : 0;
}
