/*
 * aclnnMoeTokenPermuteGrad sample, written the way the CANN aclnn samples are: init, device memory, tensors, the
 * two-phase call with a workspace, synchronize, copy back, check, release (the shared steps are in aclnn_sample.h).
 *
 * The backward of MoeTokenPermute for tokens routed to indices = [[1, 2], [0, 1], [0, 2]] (sortedIndices =
 * [2, 4, 0, 3, 1, 5]) with numOutTokens 5: the gradient rows (valued 1..5) go back to their tokens, each token
 * summing its K rows; the pair in row 5 was dropped by numOutTokens and adds nothing.
 * Returns non-zero when a result differs.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_token_permute_grad.h"

#define N 3 /* tokens */
#define K 2 /* experts per token */
#define H 2 /* hidden size */
#define ROWS 5 /* numOutTokens */

int main(void)
{
    /* 1. device and stream */
    int32_t deviceId = 0;
    aclrtStream stream;
    int ret = Init(deviceId, &stream);
    CHECK_RET(ret == 0, LOG_PRINT("Init acl failed. ERROR: %d\n", ret); return ret);

    /* 2. inputs and outputs */
    const int64_t gradShape[2] = {ROWS, H};
    const float gradHostData[ROWS * H] = {1.0f, 1.0f, 2.0f, 2.0f, 3.0f, 3.0f, 4.0f, 4.0f, 5.0f, 5.0f};
    const int64_t sortedShape[1] = {N * K};
    const int32_t sortedHostData[N * K] = {2, 4, 0, 3, 1, 5};
    const int64_t outShape[2] = {N, H};
    const float outHostData[N * H] = {0};
    void *gradAddr = NULL, *sortedAddr = NULL, *outAddr = NULL;
    aclTensor *grad = NULL, *sorted = NULL, *out = NULL;
    ret = CreateAclTensor(gradHostData, sizeof(float), gradShape, 2, &gradAddr, ACL_FLOAT, &grad);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(sortedHostData, sizeof(int32_t), sortedShape, 1, &sortedAddr, ACL_INT32, &sorted);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(outHostData, sizeof(float), outShape, 2, &outAddr, ACL_FLOAT, &out);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream */
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeTokenPermuteGradGetWorkspaceSize(grad, sorted, K, false, out, &workspaceSize, &executor);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeTokenPermuteGradGetWorkspaceSize failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeTokenPermuteGrad(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclnnMoeTokenPermuteGrad failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg());
              return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. results back to the host, printed and checked */
    int mismatches = 0;
    {
        float got[N * H];
        static const float expected[N * H] = {8.0f, 8.0f, 5.0f, 5.0f, 2.0f, 2.0f};
        ret = CopyToHost(got, outAddr, sizeof got);
        CHECK_RET(ret == ACL_SUCCESS, return ret);
        for (int64_t i = 0; i < N * H; i++) {
            int bad = !(fabsf(got[i] - expected[i]) <= 1e-6f);
            mismatches += bad;
            LOG_PRINT("out[%ld] is: %f%s\n", (long)i, got[i], bad ? "   <-- MISMATCH" : "");
        }
    }

    /* 6. release tensors and arrays */
    aclDestroyTensor(grad);
    aclDestroyTensor(sorted);
    aclDestroyTensor(out);

    /* 7. release device memory, stream and device */
    aclrtFree(gradAddr);
    aclrtFree(sortedAddr);
    aclrtFree(outAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    Finalize(deviceId, stream);
    LOG_PRINT("moe_token_permute_grad: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
