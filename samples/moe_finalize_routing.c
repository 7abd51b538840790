/*
 * aclnnMoeFinalizeRoutingV2 and aclnnMoeFinalizeRouting (V1) sample, written the way the CANN aclnn samples are:
 * init, device memory, tensors, the two-phase call with a workspace, synchronize, copy back, check, release (the
 * shared steps are in aclnn_sample.h).
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

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_finalize_routing.h"
#include "aclnnop/aclnn_moe_finalize_routing_v2.h"

#define N 3
#define K 2
#define H 4
#define E 2

/* phase 2 of this sample's three calls: allocate the workspace phase 1 asked for, run, wait for the stream */
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

/* out back to the host, printed and checked against expected; returns the number of mismatches */
static int CheckOut(const char *what, void *outAddr, const float *expected)
{
    float result[N * H];
    int ret = CopyToHost(result, outAddr, sizeof result);
    CHECK_RET(ret == ACL_SUCCESS, return N * H);
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
    ret = CreateAclTensor(expandedXHostData, sizeof(float), expandedXShape, 2, &expandedXAddr, ACL_FLOAT,
                          &expandedX);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(x1HostData, sizeof(float), nhShape, 2, &x1Addr, ACL_FLOAT, &x1);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(x2HostData, sizeof(float), nhShape, 2, &x2Addr, ACL_FLOAT, &x2);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(biasHostData, sizeof(float), biasShape, 2, &biasAddr, ACL_FLOAT, &bias);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(scalesHostData, sizeof(float), nkShape, 2, &scalesAddr, ACL_FLOAT, &scales);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(expertIdxHostData, sizeof(int32_t), nkShape, 2, &expertIdxAddr, ACL_INT32, &expertIdx);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(rowIdxKMajorHostData, sizeof(int32_t), rowIdxShape, 1, &rowIdxKAddr, ACL_INT32, &rowIdxK);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(rowIdxRowMajorHostData, sizeof(int32_t), rowIdxShape, 1, &rowIdxRAddr, ACL_INT32,
                          &rowIdxR);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(outHostData, sizeof(float), nhShape, 2, &outAddr, ACL_FLOAT, &out);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    /* 3. the operator, three ways; each executor is consumed by its phase 2, each result checked */
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
    Finalize(deviceId, stream);
    LOG_PRINT("moe_finalize_routing: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
