/*
 * aclnnMoeReRouting sample, written the way the CANN aclnn samples are: init, device memory, tensors, the
 * two-phase call with a workspace, synchronize, copy back, check, release.
 *
 * After an expert-parallel all-to-all, 6 int8 tokens arrived grouped by source rank, then local expert:
 *   expertTokenNumPerRank = [[1, 2],    rank 0 sent 1 token for expert 0, then 2 for expert 1
 *                            [2, 1]]    rank 1 sent 2 tokens for expert 0, then 1 for expert 1
 * Re-routing puts them expert-major (expert, then source rank): gather index [0, 3, 4, 1, 2, 5], the per-token
 * scales follow the tokens, and expertTokenNum = [3, 3]. Returns non-zero when a result differs.
 * (aclnnMoeReRouting's prototype is not published by CANN; see include/aclnnop/aclnn_moe_re_routing.h.)
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "acl/acl.h"
#include "aclnnop/aclnn_moe_re_routing.h"

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

#define A 6 /* tokens */
#define H 4 /* hidden size */
#define N 2 /* ranks */
#define E 2 /* local experts */

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

/* device copy of a host array and a contiguous ND tensor of the given shape over it */
static int CreateAclTensor(const void *hostData, size_t elemSize, const int64_t *shape, uint64_t ndim,
                           aclDataType dataType, void **deviceAddr, aclTensor **tensor)
{
    int64_t count = 1;
    for (uint64_t i = 0; i < ndim; i++) count *= shape[i];
    size_t size = (size_t)count * elemSize;
    aclError ret = aclrtMalloc(deviceAddr, size, ACL_MEM_MALLOC_HUGE_FIRST);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtMalloc failed. ERROR: %d\n", ret); return ret);
    ret = aclrtMemcpy(*deviceAddr, size, hostData, size, ACL_MEMCPY_HOST_TO_DEVICE);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtMemcpy failed. ERROR: %d\n", ret); return ret);
    int64_t strides[8];
    strides[ndim - 1] = 1;
    for (int64_t i = (int64_t)ndim - 2; i >= 0; i--) strides[i] = shape[i + 1] * strides[i + 1];
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

    /* 2. inputs and outputs: token t holds the values 10*t .. 10*t+3, its scale is t/2 */
    int8_t tokensHostData[A * H];
    float scalesHostData[A];
    for (int t = 0; t < A; t++) {
        for (int j = 0; j < H; j++) tokensHostData[t * H + j] = (int8_t)(10 * t + j);
        scalesHostData[t] = 0.5f * (float)t;
    }
    const int32_t countsHostData[N * E] = {1, 2, 2, 1};
    int8_t permuteTokensHostData[A * H] = {0};
    float permuteScalesHostData[A] = {0};
    int32_t permuteIdxHostData[A] = {0};
    int32_t expertTokenNumHostData[E] = {0};
    const int64_t tokensShape[2] = {A, H}, countsShape[2] = {N, E}, aShape[1] = {A}, eShape[1] = {E};
    void *tokensAddr = NULL, *countsAddr = NULL, *scalesAddr = NULL;
    void *permuteTokensAddr = NULL, *permuteScalesAddr = NULL, *permuteIdxAddr = NULL, *expertTokenNumAddr = NULL;
    aclTensor *tokens = NULL, *counts = NULL, *scales = NULL;
    aclTensor *permuteTokens = NULL, *permuteScales = NULL, *permuteIdx = NULL, *expertTokenNum = NULL;
    ret = CreateAclTensor(tokensHostData, 1, tokensShape, 2, ACL_INT8, &tokensAddr, &tokens);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(countsHostData, 4, countsShape, 2, ACL_INT32, &countsAddr, &counts);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(scalesHostData, 4, aShape, 1, ACL_FLOAT, &scalesAddr, &scales);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(permuteTokensHostData, 1, tokensShape, 2, ACL_INT8, &permuteTokensAddr, &permuteTokens);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(permuteScalesHostData, 4, aShape, 1, ACL_FLOAT, &permuteScalesAddr, &permuteScales);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(permuteIdxHostData, 4, aShape, 1, ACL_INT32, &permuteIdxAddr, &permuteIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expertTokenNumHostData, 4, eShape, 1, ACL_INT32, &expertTokenNumAddr, &expertTokenNum);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    int64_t expertTokenNumType = 1; /* count mode */
    int64_t idxType = 0;            /* gather index */

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream */
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeReRoutingGetWorkspaceSize(tokens, counts, scales, expertTokenNumType, idxType, permuteTokens,
                                            permuteScales, permuteIdx, expertTokenNum, &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeReRoutingGetWorkspaceSize failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeReRouting(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeReRouting failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg()); return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. results back to the host, printed and checked */
    int8_t outTokens[A * H];
    float outScales[A];
    int32_t outIdx[A], outNum[E];
    ret = aclrtMemcpy(outTokens, sizeof outTokens, permuteTokensAddr, sizeof outTokens, ACL_MEMCPY_DEVICE_TO_HOST);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("copy result from device to host failed. ERROR: %d\n", ret); return ret);
    ret = aclrtMemcpy(outScales, sizeof outScales, permuteScalesAddr, sizeof outScales, ACL_MEMCPY_DEVICE_TO_HOST);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("copy result from device to host failed. ERROR: %d\n", ret); return ret);
    ret = aclrtMemcpy(outIdx, sizeof outIdx, permuteIdxAddr, sizeof outIdx, ACL_MEMCPY_DEVICE_TO_HOST);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("copy result from device to host failed. ERROR: %d\n", ret); return ret);
    ret = aclrtMemcpy(outNum, sizeof outNum, expertTokenNumAddr, sizeof outNum, ACL_MEMCPY_DEVICE_TO_HOST);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("copy result from device to host failed. ERROR: %d\n", ret); return ret);

    static const int32_t expectedIdx[A] = {0, 3, 4, 1, 2, 5};
    static const int32_t expectedNum[E] = {3, 3};
    int mismatches = 0;
    for (int j = 0; j < A; j++) {
        int bad = outIdx[j] != expectedIdx[j] || outScales[j] != scalesHostData[expectedIdx[j]] ||
                  memcmp(&outTokens[j * H], &tokensHostData[expectedIdx[j] * H], H) != 0;
        mismatches += bad;
        LOG_PRINT("permuteTokenIdx[%d] is: %d, permuteTokens[%d] = [%d, %d, %d, %d], "
                  "permutePerTokenScales[%d] = %.1f%s\n",
                  j, outIdx[j], j, outTokens[j * H], outTokens[j * H + 1], outTokens[j * H + 2], outTokens[j * H + 3],
                  j, outScales[j], bad ? "   <-- MISMATCH" : "");
    }
    for (int e = 0; e < E; e++) {
        mismatches += outNum[e] != expectedNum[e];
        LOG_PRINT("expertTokenNum[%d] is: %d%s\n", e, outNum[e], outNum[e] == expectedNum[e] ? "" : "   <-- MISMATCH");
    }

    /* 6. release tensors */
    aclDestroyTensor(tokens);
    aclDestroyTensor(counts);
    aclDestroyTensor(scales);
    aclDestroyTensor(permuteTokens);
    aclDestroyTensor(permuteScales);
    aclDestroyTensor(permuteIdx);
    aclDestroyTensor(expertTokenNum);

    /* 7. release device memory, stream and device */
    aclrtFree(tokensAddr);
    aclrtFree(countsAddr);
    aclrtFree(scalesAddr);
    aclrtFree(permuteTokensAddr);
    aclrtFree(permuteScalesAddr);
    aclrtFree(permuteIdxAddr);
    aclrtFree(expertTokenNumAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    aclrtDestroyStream(stream);
    aclrtResetDevice(deviceId);
    aclFinalize();
    LOG_PRINT("%s\n", mismatches ? "moe_re_routing: FAILED" : "moe_re_routing: OK");
    return mismatches ? 1 : 0;
}
