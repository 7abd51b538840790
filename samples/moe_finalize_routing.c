/*
 * aclnnMoeFinalizeRoutingV2 and aclnnMoeFinalizeRouting (V1) sample, written the way the CANN aclnn samples are:
 * init, device memory, tensors, the two-phase call with a workspace, synchronize, copy back, check, release.
 *
 * N = 3 tokens, K = 2 experts each, H = 4, E = 2 experts (the data of the aclnn doc example):
 *   out[i] = x1[i] + x2[i] + sum_k scales[i, k] * (expandedX[expandedRowIdx[k*N + i]] + bias[expertIdx[i, k]])
 * computed three times: V2 with dropPadMode 0 (k-major index, the layout aclnnMoeInitRouting produces), V2 with
 * dropPadMode 2 and the same routing in row-major layout (i*K + k), and V1. All three must match the formula
 * evaluated here in fp32 (to 1e-5 relative: a device may fuse the multiply-add). Returns non-zero when a result
 * differs.
 */
#include <stdint.h>
#include <stdio.h>

#include "acl/acl.h"
#include "aclnnop/aclnn_moe_finalize_routing.h"
#include "aclnnop/aclnn_moe_finalize_routing_v2.h"

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
#define E 2

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

/* allocate the workspace phase 1 asked for, run phase 2, wait for the stream */
typedef aclnnStatus (*Phase2)(void *, uint64_t, aclOpExecutor *, aclrtStream);
static int RunPhase2(const char *name, Phase2 fn, uint64_t workspaceSize, aclOpExecutor *executor, aclrtStream stream)
{
    void *workspaceAddr = NULL;
    int ret;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = fn(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("%s failed. ERROR: %d (%s)\n", name, ret, aclGetRecentErrMsg());
              return ret);
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    return 0;
}

static int CheckOut(const char *what, void *outAddr, const float *expected)
{
    float result[N * H];
    int ret = aclrtMemcpy(result, sizeof result, outAddr, sizeof result, ACL_MEMCPY_DEVICE_TO_HOST);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("copy result from device to host failed. ERROR: %d\n", ret); return -1);
    int mismatches = 0;
    for (int64_t i = 0; i < N * H; i++) {
        float diff = result[i] - expected[i], mag = expected[i] < 0 ? -expected[i] : expected[i];
        int bad = !(diff <= 1e-5f * (mag + 1.0f) && -diff <= 1e-5f * (mag + 1.0f));
        mismatches += bad;
        LOG_PRINT("%s result[%ld] is: %f%s\n", what, (long)i, result[i], bad ? "   <-- MISMATCH" : "");
    }
    return mismatches;
}

int main(void)
{
    /* 1. device and stream */
    int32_t deviceId = 0;
    aclrtStream stream;
    int ret = Init(deviceId, &stream);
    CHECK_RET(ret == 0, LOG_PRINT("Init acl failed. ERROR: %d\n", ret); return ret);

    /* 2. inputs and outputs */
    const float expandedXHostData[N * K * H] = {0.1f, 1.1f, 2.1f, 3.1f, 4.1f, 5.1f, 6.1f, 7.1f,
                                                8.1f, 9.1f, 10.1f, 11.1f, 0.1f, 1.1f, 2.1f, 3.1f,
                                                4.1f, 5.1f, 6.1f, 7.1f, 8.1f, 9.1f, 10.1f, 11.1f};
    const float x1HostData[N * H] = {0.2f, 1.2f, 2.2f, 3.2f, 4.2f, 5.2f, 6.2f, 7.2f, 8.2f, 9.2f, 10.2f, 11.2f};
    const float x2HostData[N * H] = {0.2f, 1.2f, 2.2f, 3.2f, 4.2f, 5.2f, 6.2f, 7.2f, 8.2f, 9.2f, 10.2f, 11.2f};
    const float biasHostData[E * H] = {0.2f, 0.4f, 0.2f, 0.4f, 0.2f, 0.4f, 0.2f, 0.4f};
    const float scalesHostData[N * K] = {1.3f, 1.6f, 1.2f, 1.8f, 1.2f, 2.3f};
    const int32_t expertIdxHostData[N * K] = {0, 1, 0, 1, 0, 1};
    const int32_t rowIdxKMajorHostData[N * K] = {2, 1, 4, 3, 0, 5}; /* position k*N + i */
    int32_t rowIdxRowMajorHostData[N * K];                          /* the same routing at position i*K + k */
    for (int i = 0; i < N; i++)
        for (int k = 0; k < K; k++) rowIdxRowMajorHostData[i * K + k] = rowIdxKMajorHostData[k * N + i];
    const float outHostData[N * H] = {0};

    /* the expected result, in the operator's fp32 order: t = x + bias; t = t * scale; acc = acc + t */
    float expected[N * H];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < H; j++) {
            float acc = x1HostData[i * H + j] + x2HostData[i * H + j];
            for (int k = 0; k < K; k++) {
                int32_t row = rowIdxKMajorHostData[k * N + i];
                float t = expandedXHostData[row * H + j] + biasHostData[expertIdxHostData[i * K + k] * H + j];
                t = t * scalesHostData[i * K + k];
                acc = acc + t;
            }
            expected[i * H + j] = acc;
        }

    const int64_t expandedXShape[2] = {N * K, H}, nhShape[2] = {N, H}, biasShape[2] = {E, H};
    const int64_t nkShape[2] = {N, K}, rowIdxShape[1] = {N * K};
    void *expandedXAddr = NULL, *x1Addr = NULL, *x2Addr = NULL, *biasAddr = NULL, *scalesAddr = NULL;
    void *expertIdxAddr = NULL, *rowIdxKAddr = NULL, *rowIdxRAddr = NULL, *outAddr = NULL;
    aclTensor *expandedX = NULL, *x1 = NULL, *x2 = NULL, *bias = NULL, *scales = NULL, *expertIdx = NULL;
    aclTensor *rowIdxK = NULL, *rowIdxR = NULL, *out = NULL;
    ret = CreateAclTensor(expandedXHostData, expandedXShape, 2, ACL_FLOAT, &expandedXAddr, &expandedX);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(x1HostData, nhShape, 2, ACL_FLOAT, &x1Addr, &x1);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(x2HostData, nhShape, 2, ACL_FLOAT, &x2Addr, &x2);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(biasHostData, biasShape, 2, ACL_FLOAT, &biasAddr, &bias);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(scalesHostData, nkShape, 2, ACL_FLOAT, &scalesAddr, &scales);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expertIdxHostData, nkShape, 2, ACL_INT32, &expertIdxAddr, &expertIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(rowIdxKMajorHostData, rowIdxShape, 1, ACL_INT32, &rowIdxKAddr, &rowIdxK);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(rowIdxRowMajorHostData, rowIdxShape, 1, ACL_INT32, &rowIdxRAddr, &rowIdxR);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(outHostData, nhShape, 2, ACL_FLOAT, &outAddr, &out);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    /* 3. the operator, three ways; each executor is consumed by its phase 2 */
    int mismatches = 0;
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    const int64_t dropPadModes[2] = {0, 2};
    for (int m = 0; m < 2; m++) {
        ret = aclnnMoeFinalizeRoutingV2GetWorkspaceSize(expandedX, m == 0 ? rowIdxK : rowIdxR, x1, x2, bias, scales,
                                                        expertIdx, dropPadModes[m], out, &workspaceSize, &executor);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclnnMoeFinalizeRoutingV2GetWorkspaceSize failed. ERROR: %d (%s)\n",
                                                ret, aclGetRecentErrMsg());
                  return ret);
        ret = RunPhase2("aclnnMoeFinalizeRoutingV2", aclnnMoeFinalizeRoutingV2, workspaceSize, executor, stream);
        CHECK_RET(ret == 0, return ret);
        mismatches += CheckOut(m == 0 ? "V2 dropPadMode 0" : "V2 dropPadMode 2", outAddr, expected);
    }
    ret = aclnnMoeFinalizeRoutingGetWorkspaceSize(expandedX, x1, x2, bias, scales, rowIdxK, expertIdx, out,
                                                  &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclnnMoeFinalizeRoutingGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
                                            aclGetRecentErrMsg());
              return ret);
    ret = RunPhase2("aclnnMoeFinalizeRouting", aclnnMoeFinalizeRouting, workspaceSize, executor, stream);
    CHECK_RET(ret == 0, return ret);
    mismatches += CheckOut("V1", outAddr, expected);

    /* 4. release tensors */
    aclDestroyTensor(expandedX);
    aclDestroyTensor(x1);
    aclDestroyTensor(x2);
    aclDestroyTensor(bias);
    aclDestroyTensor(scales);
    aclDestroyTensor(expertIdx);
    aclDestroyTensor(rowIdxK);
    aclDestroyTensor(rowIdxR);
    aclDestroyTensor(out);

    /* 5. release device memory, stream and device */
    aclrtFree(expandedXAddr);
    aclrtFree(x1Addr);
    aclrtFree(x2Addr);
    aclrtFree(biasAddr);
    aclrtFree(scalesAddr);
    aclrtFree(expertIdxAddr);
    aclrtFree(rowIdxKAddr);
    aclrtFree(rowIdxRAddr);
    aclrtFree(outAddr);
    aclrtDestroyStream(stream);
    aclrtResetDevice(deviceId);
    aclFinalize();
    LOG_PRINT("%s\n", mismatches ? "moe_finalize_routing: FAILED" : "moe_finalize_routing: OK");
    return mismatches ? 1 : 0;
}
