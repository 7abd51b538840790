/*
 * Sample: aclnnMoeTokenUnpermuteWithEp, written the way the official aclnn examples are. This rank holds the
 * expert outputs of sorted rows [1, 5) (the rows aclnnMoeTokenPermuteWithEp gave it); each token sums its rows
 * that fall in the window, weighted by its routing probabilities. Self-checking.
 */
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include "acl/acl.h"
#include "aclnnop/aclnn_moe_token_unpermute_with_ep.h"

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

    /* rows 1..4 of the sorted order of indices [[1,2],[3,1],[2,3]] for tokens valued 1, 2, 3 */
    int64_t permutedShape[] = {4, 2}, sortedShape[] = {6}, probsShape[] = {3, 2}, outShape[] = {3, 2};
    float permutedHost[] = {2, 2, 1, 1, 3, 3, 2, 2};
    int32_t sortedHost[] = {0, 2, 4, 1, 3, 5};
    float probsHost[] = {0.5f, 0.3f, 0.4f, 0.2f, 0.5f, 0.4f};
    float outHost[6] = {0};
    int64_t rangeHost[] = {1, 5};
    int64_t numTopk = 2;

    void *permutedDev = NULL, *sortedDev = NULL, *probsDev = NULL, *outDev = NULL;
    aclTensor *permuted = NULL, *sorted = NULL, *probs = NULL, *out = NULL;
    ret = CreateAclTensor(permutedHost, sizeof(float), permutedShape, 2, &permutedDev, ACL_FLOAT, &permuted);
    CHECK_RET(ret == 0, return ret);
    ret = CreateAclTensor(sortedHost, sizeof(int32_t), sortedShape, 1, &sortedDev, ACL_INT32, &sorted);
    CHECK_RET(ret == 0, return ret);
    ret = CreateAclTensor(probsHost, sizeof(float), probsShape, 2, &probsDev, ACL_FLOAT, &probs);
    CHECK_RET(ret == 0, return ret);
    ret = CreateAclTensor(outHost, sizeof(float), outShape, 2, &outDev, ACL_FLOAT, &out);
    CHECK_RET(ret == 0, return ret);
    aclIntArray *range = aclCreateIntArray(rangeHost, 2);
    CHECK_RET(range != NULL, LOG_PRINT("aclCreateIntArray failed\n"); return 1);

    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeTokenUnpermuteWithEpGetWorkspaceSize(permuted, sorted, probs, numTopk, range, false, NULL, out,
                                                       &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclnnMoeTokenUnpermuteWithEpGetWorkspaceSize failed. ERROR: %d (%s)\n",
                                            ret, aclGetRecentErrMsg()); return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeTokenUnpermuteWithEp(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclnnMoeTokenUnpermuteWithEp failed. ERROR: %d (%s)\n", ret,
                                            aclGetRecentErrMsg()); return ret);
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);
    aclrtMemcpy(outHost, sizeof outHost, outDev, sizeof outHost, ACL_MEMCPY_DEVICE_TO_HOST);

    /* token 0: only (t0,k1) is in the window -> 1*0.3; token 1: 2*0.4 + 2*0.2; token 2: 3*0.5 */
    const float want[] = {0.3f, 1.2f, 1.5f};
    int bad = 0;
    for (int t = 0; t < 3; t++) {
        LOG_PRINT("out[%d] = %.4f %.4f\n", t, outHost[t * 2], outHost[t * 2 + 1]);
        for (int j = 0; j < 2; j++) bad |= fabsf(outHost[t * 2 + j] - want[t]) > 1e-6f;
    }

    aclDestroyTensor(permuted);
    aclDestroyTensor(sorted);
    aclDestroyTensor(probs);
    aclDestroyTensor(out);
    aclDestroyIntArray(range);
    aclrtFree(permutedDev);
    aclrtFree(sortedDev);
    aclrtFree(probsDev);
    aclrtFree(outDev);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    aclrtDestroyStream(stream);
    aclrtResetDevice(deviceId);
    aclFinalize();
    LOG_PRINT("%s\n", bad ? "MISMATCH" : "OK");
    return bad;
}
