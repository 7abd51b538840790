/*
 * Sample: aclnnMoeTokenPermuteWithEp, written the way the official aclnn examples are (init, device tensors,
 * two-phase call, synchronize, copy back, free). This rank owns sorted rows [1, 5) of the permutation.
 * Self-checking: exits non-zero if a result differs from the expected one.
 */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include "acl/acl.h"
#include "aclnnop/aclnn_moe_token_permute_with_ep.h"

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

    /* 3 tokens of hidden size 4, top-2 experts each, routing probabilities */
    int64_t xShape[] = {3, 4}, idxShape[] = {3, 2}, outShape[] = {4, 4}, sortedShape[] = {6}, probsOutShape[] = {4};
    float xHost[] = {0.1f, 0.1f, 0.1f, 0.1f, 0.2f, 0.2f, 0.2f, 0.2f, 0.3f, 0.3f, 0.3f, 0.3f};
    int32_t idxHost[] = {1, 2, 3, 1, 2, 3};
    float probsHost[] = {0.5f, 0.3f, 0.4f, 0.2f, 0.5f, 0.4f};
    float outHost[16] = {0}, probsOutHost[4] = {0};
    int32_t sortedHost[6] = {0};
    int64_t rangeHost[] = {1, 5}; /* this rank keeps rows [1, 5) of the expert-sorted order */

    void *xDev = NULL, *idxDev = NULL, *probsDev = NULL, *outDev = NULL, *sortedDev = NULL, *probsOutDev = NULL;
    aclTensor *x = NULL, *indices = NULL, *probs = NULL, *out = NULL, *sorted = NULL, *probsOut = NULL;
    ret = CreateAclTensor(xHost, sizeof(float), xShape, 2, &xDev, ACL_FLOAT, &x);
    CHECK_RET(ret == 0, return ret);
    ret = CreateAclTensor(idxHost, sizeof(int32_t), idxShape, 2, &idxDev, ACL_INT32, &indices);
    CHECK_RET(ret == 0, return ret);
    ret = CreateAclTensor(probsHost, sizeof(float), idxShape, 2, &probsDev, ACL_FLOAT, &probs);
    CHECK_RET(ret == 0, return ret);
    ret = CreateAclTensor(outHost, sizeof(float), outShape, 2, &outDev, ACL_FLOAT, &out);
    CHECK_RET(ret == 0, return ret);
    ret = CreateAclTensor(sortedHost, sizeof(int32_t), sortedShape, 1, &sortedDev, ACL_INT32, &sorted);
    CHECK_RET(ret == 0, return ret);
    ret = CreateAclTensor(probsOutHost, sizeof(float), probsOutShape, 1, &probsOutDev, ACL_FLOAT, &probsOut);
    CHECK_RET(ret == 0, return ret);
    aclIntArray *range = aclCreateIntArray(rangeHost, 2);
    CHECK_RET(range != NULL, LOG_PRINT("aclCreateIntArray failed\n"); return 1);

    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeTokenPermuteWithEpGetWorkspaceSize(x, indices, probs, range, 0, false, out, sorted, probsOut,
                                                     &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclnnMoeTokenPermuteWithEpGetWorkspaceSize failed. ERROR: %d (%s)\n",
                                            ret, aclGetRecentErrMsg()); return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeTokenPermuteWithEp(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclnnMoeTokenPermuteWithEp failed. ERROR: %d (%s)\n", ret,
                                            aclGetRecentErrMsg()); return ret);
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    aclrtMemcpy(outHost, sizeof outHost, outDev, sizeof outHost, ACL_MEMCPY_DEVICE_TO_HOST);
    aclrtMemcpy(sortedHost, sizeof sortedHost, sortedDev, sizeof sortedHost, ACL_MEMCPY_DEVICE_TO_HOST);
    aclrtMemcpy(probsOutHost, sizeof probsOutHost, probsOutDev, sizeof probsOutHost, ACL_MEMCPY_DEVICE_TO_HOST);

    /* expert order (stable): e1:(t0,k0) (t1,k1) | e2:(t0,k1) (t2,k0) | e3:(t1,k0) (t2,k1); rows 1..4 are kept */
    const int32_t wantSorted[] = {0, 2, 4, 1, 3, 5};
    const float wantRows[] = {0.2f, 0.1f, 0.3f, 0.2f};
    const float wantProbs[] = {0.2f, 0.3f, 0.5f, 0.4f};
    int bad = 0;
    for (int i = 0; i < 6; i++) {
        LOG_PRINT("sortedIndices[%d] = %d\n", i, sortedHost[i]);
        bad |= sortedHost[i] != wantSorted[i];
    }
    for (int r = 0; r < 4; r++) {
        LOG_PRINT("permuteTokens[%d] = %.2f %.2f %.2f %.2f  permuteProbs[%d] = %.2f\n", r, outHost[r * 4],
                  outHost[r * 4 + 1], outHost[r * 4 + 2], outHost[r * 4 + 3], r, probsOutHost[r]);
        for (int j = 0; j < 4; j++) bad |= outHost[r * 4 + j] != wantRows[r];
        bad |= probsOutHost[r] != wantProbs[r];
    }

    aclDestroyTensor(x);
    aclDestroyTensor(indices);
    aclDestroyTensor(probs);
    aclDestroyTensor(out);
    aclDestroyTensor(sorted);
    aclDestroyTensor(probsOut);
    aclDestroyIntArray(range);
    aclrtFree(xDev);
    aclrtFree(idxDev);
    aclrtFree(probsDev);
    aclrtFree(outDev);
    aclrtFree(sortedDev);
    aclrtFree(probsOutDev);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    aclrtDestroyStream(stream);
    aclrtResetDevice(deviceId);
    aclFinalize();
    LOG_PRINT("%s\n", bad ? "MISMATCH" : "OK");
    return bad;
}
