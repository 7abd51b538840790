/* issue 12 class 5: a data address that is not aligned to its element size (base + 1 of a float or int32
 * tensor) is an error status, whether it comes from aclCreateTensor or from aclSetInputTensorAddr; kernels never
 * make misaligned loads or stores. */
#define _GNU_SOURCE /* setenv */
#include "aclnnop/aclnn_moe_compute_expert_tokens.h"
#include "repro.h"

int main(void)
{
    setenv("ACLNN_MOE_NUM_THREADS", "2", 0); /* (c) needs the parallel path, whose scratch is in the workspace */
    repro_setup();
    const int64_t m[1] = {8}, e[1] = {4};
    void *blk, *b2;
    if (aclrtMalloc(&blk, 256, ACL_MEM_MALLOC_HUGE_FIRST) != 0) return 2;
    memset(blk, 0, 256);
    aclTensor *out = dev_tensor(ACL_INT32, 1, e, &b2);
    uint64_t ws = 0;
    aclOpExecutor *ex = NULL;

    /* (a) at creation */
    aclTensor *t = aclCreateTensor(m, 1, ACL_INT32, NULL, 0, ACL_FORMAT_ND, m, 1, (char *)blk + 1);
    if (!t) {
        expect_true(1, "aclCreateTensor refuses base+1 for int32");
    } else {
        int s = aclnnMoeComputeExpertTokensGetWorkspaceSize(t, 4, out, &ws, &ex);
        if (s == 0) s = run_phase2(aclnnMoeComputeExpertTokens, ws, ex);
        expect_error(s, "ComputeExpertTokens with sortedExperts at base+1");
        aclDestroyTensor(t);
    }

    /* (b) through aclSetInputTensorAddr on a repeatable executor */
    t = aclCreateTensor(m, 1, ACL_INT32, NULL, 0, ACL_FORMAT_ND, m, 1, blk);
    if (aclnnMoeComputeExpertTokensGetWorkspaceSize(t, 4, out, &ws, &ex) != 0 || aclSetAclOpExecutorRepeatable(ex))
        return 2;
    expect_true(run_phase2(aclnnMoeComputeExpertTokens, ws, ex) == 0, "the aligned executor runs");
    int s = aclSetInputTensorAddr(ex, 0, t, (char *)blk + 1);
    if (s == 0) s = run_phase2(aclnnMoeComputeExpertTokens, ws, ex);
    expect_error(s, "aclSetInputTensorAddr to base+1, then phase 2");
    aclSetInputTensorAddr(ex, 0, t, blk); /* back to the aligned address: only the output is wrong below */
    s = aclSetOutputTensorAddr(ex, 0, out, (char *)b2 + 2);
    if (s == 0) s = run_phase2(aclnnMoeComputeExpertTokens, ws, ex);
    expect_error(s, "aclSetOutputTensorAddr to base+2, then phase 2");
    /* indices out of range are errors too */
    expect_error(aclSetInputTensorAddr(ex, 5, t, blk), "aclSetInputTensorAddr index 5 of 1 input");
    expect_error(aclSetInputTensorAddr(ex, (size_t)-1, t, blk), "aclSetInputTensorAddr index SIZE_MAX");
    expect_error(aclSetOutputTensorAddr(ex, 1, out, b2), "aclSetOutputTensorAddr index 1 of 1 output");
    aclDestroyAclOpExecutor(ex);
    expect_error(aclnnMoeComputeExpertTokens(NULL, 0, ex, g_stream), "phase 2 after aclDestroyAclOpExecutor");

    /* (c) a misaligned workspace (found by native/fuzz: kernels keep int64 scratch there) */
    {
        const int64_t big[1] = {1 << 17}, ne[1] = {16};
        void *sb, *ob, *w;
        aclTensor *s2 = dev_tensor(ACL_INT32, 1, big, &sb), *o2 = dev_tensor(ACL_INT32, 1, ne, &ob);
        if (aclnnMoeComputeExpertTokensGetWorkspaceSize(s2, 16, o2, &ws, &ex) != 0) return 2;
        if (ws == 0) {
            expect_true(run_phase2(aclnnMoeComputeExpertTokens, 0, ex) == 0, "no workspace needed (1 thread)");
        } else {
            if (aclrtMalloc(&w, ws + 64, ACL_MEM_MALLOC_HUGE_FIRST) != 0) return 2;
            expect_error(aclnnMoeComputeExpertTokens((char *)w + 1, ws, ex, g_stream), "workspace at base+1");
            aclrtFree(w);
        }
        aclDestroyTensor(s2);
        aclDestroyTensor(o2);
        aclrtFree(sb);
        aclrtFree(ob);
    }
    aclDestroyTensor(t);
    aclDestroyTensor(out);
    aclrtFree(blk);
    aclrtFree(b2);
    return repro_finish("class5_misaligned");
}
