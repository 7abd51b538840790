/*
 * aclnnMoeTokenUnpermute sample, written the way the CANN aclnn samples are: init, device memory, tensors, the
 * two-phase call with a workspace, synchronize, copy back, check, release (the shared steps are in aclnn_sample.h).
 *
 * The reverse of the aclnnMoeTokenPermute sample: its six permuted rows [1, 3, 2, 3, 1, 2] (hidden size 2) and
 * sortedIndices [4, 0, 2, 5, 1, 3, 6, 7] go back to the four tokens, each summing its two rows weighted by its
 * routing probabilities [[0.5, 0.5], [0.25, 0.75], [1, 0], [0.5, 0.5]]: 1, 2, 3, and 0 for the last token, whose
 * rows 6 and 7 were dropped by numOutTokens. Returns non-zero when a result differs.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_token_unpermute.h"

#define T 4    /* tokens */
#define K 2    /* experts per token */
#define H 2    /* hidden size */
#define ROWS 6 /* permuted rows (two were dropped) */

int main(void)
{
    /* 1. device and stream */
    int32_t deviceId = 0;
    aclrtStream stream;
    int ret = Init(deviceId, &stream);
    CHECK_RET(ret == 0, LOG_PRINT("Init acl failed. ERROR: %d\n", ret); return ret);

    /* 2. inputs and outputs */
    const int64_t permutedShape[2] = {ROWS, H}, sortedShape[1] = {T * K}, probsShape[2] = {T, K};
    const int64_t outShape[2] = {T, H};
    const float permutedHostData[ROWS * H] = {1, 1, 3, 3, 2, 2, 3, 3, 1, 1, 2, 2};
    const int32_t sortedHostData[T * K] = {4, 0, 2, 5, 1, 3, 6, 7};
    const float probsHostData[T * K] = {0.5f, 0.5f, 0.25f, 0.75f, 1.0f, 0.0f, 0.5f, 0.5f};
    const float outHostData[T * H] = {0};
    bool paddedMode = false;
    void *permutedAddr = NULL, *sortedAddr = NULL, *probsAddr = NULL, *outAddr = NULL;
    aclTensor *permuted = NULL, *sorted = NULL, *probs = NULL, *out = NULL;
    ret = CreateAclTensor(permutedHostData, sizeof(float), permutedShape, 2, &permutedAddr, ACL_FLOAT, &permuted);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(sortedHostData, sizeof(int32_t), sortedShape, 1, &sortedAddr, ACL_INT32, &sorted);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(probsHostData, sizeof(float), probsShape, 2, &probsAddr, ACL_FLOAT, &probs);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    ret = CreateAclTensor(outHostData, sizeof(float), outShape, 2, &outAddr, ACL_FLOAT, &out);
    CHECK_RET(ret == ACL_SUCCESS, return ret);

    /* 3. the operator: phase 1 sizes the workspace, phase 2 runs on the stream */
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = NULL;
    ret = aclnnMoeTokenUnpermuteGetWorkspaceSize(permuted, sorted, probs, paddedMode, NULL, out, &workspaceSize,
                                                 &executor);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclnnMoeTokenUnpermuteGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
                                            aclGetRecentErrMsg());
              return ret);
    void *workspaceAddr = NULL;
    if (workspaceSize > 0) {
        ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
        CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("allocate workspace failed. ERROR: %d\n", ret); return ret);
    }
    ret = aclnnMoeTokenUnpermute(workspaceAddr, workspaceSize, executor, stream);
    CHECK_RET(ret == ACL_SUCCESS,
              LOG_PRINT("aclnnMoeTokenUnpermute failed. ERROR: %d (%s)\n", ret, aclGetRecentErrMsg()); return ret);

    /* 4. wait for the stream */
    ret = aclrtSynchronizeStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSynchronizeStream failed. ERROR: %d\n", ret); return ret);

    /* 5. result back to the host, printed and checked */
    float outData[T * H];
    ret = CopyToHost(outData, outAddr, sizeof outData);
    CHECK_RET(ret == ACL_SUCCESS, return ret);
    static const float expectedToken[T] = {1, 2, 3, 0}; /* the value of each restored token */
    int mismatches = 0;
    for (int64_t i = 0; i < T * H; i++) {
        int bad = !(fabsf(outData[i] - expectedToken[i / H]) <= 1e-6f);
        mismatches += bad;
        LOG_PRINT("out[%ld] is: %f%s\n", (long)i, outData[i], bad ? "   <-- MISMATCH" : "");
    }

    /* 6. release tensors */
    aclDestroyTensor(permuted);
    aclDestroyTensor(sorted);
    aclDestroyTensor(probs);
    aclDestroyTensor(out);

    /* 7. release device memory, stream and device */
    aclrtFree(permutedAddr);
    aclrtFree(sortedAddr);
    aclrtFree(probsAddr);
    aclrtFree(outAddr);
    if (workspaceSize > 0) aclrtFree(workspaceAddr);
    Finalize(deviceId, stream);
    LOG_PRINT("moe_token_unpermute: %s\n", mismatches ? "MISMATCH" : "OK");
    return mismatches ? 1 : 0;
}
