/*
 * aclnnMoeGatingTopK sample, written the way the CANN aclnn samples are: init, device memory, tensors, the
 * two-phase call with a workspace, synchronize, copy back, check, release.
 *
 * x [3, 16] fp32, bias [16], DeepSeek-style grouped selection on a small scale: 4 groups of 4 experts, keep the
 * 2 best groups by the sum of their top-2 scores, then the top 4 experts; sigmoid, renormalised, scaled by 2.5.
 * Returns non-zero when the result differs from the expected values.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "acl/acl.h"
#include "aclnnop/aclnn_moe_gating_top_k.h"

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

#define ROWS 3
#define EXPERTS 16
#define K 4

static int64_t GetShapeSize(const int64_t *shape, int ndim)
{
    int64_t size = 1;
    for (int i = 0; i < ndim; i++) size *= shape[i];
    return size;
}

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

/* device copy of hostData (elemSize bytes per element) and a contiguous ND tensor over it */
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
    CHECK_RET(*tensor != NULL, LOG_PRINT("%s", "aclCreateTensor failed.\n"); return -1);
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
    const int64_t xShape[2] = {ROWS, EXPERTS};
    const int64_t biasShape[1] = {EXPERTS};
    const int64_t yShape[2] = {ROWS, K};
    const int64_t expertIdxShape[2] = {ROWS, K};
    const int64_t normOutShape[2] = {ROWS, EXPERTS};
    float xHostData[ROWS * EXPERTS];
    float biasHostData[EXPERTS];
    float yHostData[ROWS * K] = {0};
    int32_t expertIdxHostData[ROWS * K] = {0};
    float normOutHostData[ROWS * EXPERTS] = {0};
    for (int r = 0; r < ROWS; r++)
        for (int e = 0; e < EXPERTS; e++) xHostData[r * EXPERTS + e] = (float)((e * 7 + r * 5) % 16) * 0.25f - 2.0f;
    for (int e = 0; e < EXPERTS; e++) biasHostData[e] = (float)((e * 3) % 8) * 0.125f - 0.5f;

    void *xAddr = NULL, *biasAddr = NULL, *yAddr = NULL, *expertIdxAddr = NULL, *normOutAddr = NULL;
    aclTensor *x = NULL, *bias = NULL, *y = NULL, *expertIdx = NULL, *normOut = NULL;
    ret = CreateAclTensor(xHostData, sizeof(float), xShape, 2, &xAddr, ACL_FLOAT, &x);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(biasHostData, sizeof(float), biasShape, 1, &biasAddr, ACL_FLOAT, &bias);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(yHostData, sizeof(float), yShape, 2, &yAddr, ACL_FLOAT, &y);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expertIdxHostData, sizeof(int32_t), expertIdxShape, 2, &expertIdxAddr, ACL_INT32,
                          &expertIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(normOutHostData, sizeof(float), normOutShape, 2, &normOutAddr, ACL_FLOAT, &normOut);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream */
    int64_t k = K, kGroup = 2, groupCount = 4, groupSelectMode = 1, renorm = 0, normType = 1;
    bool outFlag = false;
    double routedScalingFactor = 2.5, eps = 1e-20;
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeGatingTopKGetWorkspaceSize(x, bias, k, kGroup, groupCount, groupSelectMode, renorm, normType,
                                             outFlag, routedScalingFactor, eps, y, expertIdx, normOut,
                                             &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeGatingTopKGetWorkspaceSize failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeGatingTopK(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclnnMoeGatingTopK failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. results back to the host, printed and checked */
    float yResult[ROWS * K];
    int32_t idxResult[ROWS * K];
    ret = aclrtMemcpy(yResult, sizeof yResult, yAddr, sizeof yResult, ACL_MEMCPY_DEVICE_TO_HOST);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("copy y from device to host failed. ERROR: %d\n", ret); return ret);
    ret = aclrtMemcpy(idxResult, sizeof idxResult, expertIdxAddr, sizeof idxResult, ACL_MEMCPY_DEVICE_TO_HOST);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("copy expertIdx from device to host failed. ERROR: %d\n", ret);
              return ret);
    static const int32_t expectedIdx[ROWS * K] = {2, 13, 15, 1, 15, 5, 6, 12, 5, 12, 7, 13};
    static const float expectedY[ROWS * K] = {
        8.186376095e-01f, 6.800619364e-01f, 5.629075766e-01f, 4.383928180e-01f,
        7.482275963e-01f, 4.575898945e-01f, 7.796899080e-01f, 5.144925714e-01f,
        7.488800287e-01f, 7.876820564e-01f, 6.543464065e-01f, 3.090913296e-01f};
    int mismatches = 0;
    for (int64_t i = 0; i < ROWS * K; i++) {
        int ok = idxResult[i] == expectedIdx[i] && fabsf(yResult[i] - expectedY[i]) <= 1e-5f * fabsf(expectedY[i]);
        if (!ok) mismatches++;
        LOG_PRINT("row %ld: expertIdx %d y %f%s\n", (long)(i / K), idxResult[i], yResult[i],
                  ok ? "" : "   <-- MISMATCH");
    }

    /* 6. release tensors */
    aclDestroyTensor(x);
    aclDestroyTensor(bias);
    aclDestroyTensor(y);
    aclDestroyTensor(expertIdx);
    aclDestroyTensor(normOut);

    /* 7. release device memory, stream and device */
    aclrtFree(xAddr);
    aclrtFree(biasAddr);
    aclrtFree(yAddr);
    aclrtFree(expertIdxAddr);
    aclrtFree(normOutAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    aclrtDestroyStream(stream);
    aclrtResetDevice(deviceId);
    aclFinalize();
    LOG_PRINT("%s\n", mismatches ? "moe_gating_top_k: FAILED" : "moe_gating_top_k: OK");
    return mismatches ? 1 : 0;
}
