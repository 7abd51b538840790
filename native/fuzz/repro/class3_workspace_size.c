/* issue 12 class 3: phase 2 given a workspaceSize larger than the block it passes (and larger than phase 1
 * asked for). CANN accepts a larger size, so status 0 is allowed; what is not allowed is a kernel that sizes
 * its scratch from the argument and writes past the block (a sanitizer report). A size smaller than phase 1
 * asked for is an error. */
#define _GNU_SOURCE /* setenv */
#include "aclnnop/aclnn_moe_compute_expert_tokens.h"
#include "aclnnop/aclnn_moe_gating_top_k.h"
#include "repro.h"

static void lie(const char *what, phase2_fn fn, uint64_t ws, aclOpExecutor *ex, uint64_t claimed)
{
    void *w = NULL;
    if (aclrtMalloc(&w, ws ? ws : 64, ACL_MEM_MALLOC_HUGE_FIRST) != 0) exit(2);
    int rc = fn(w, claimed, ex, g_stream);
    aclrtSynchronizeStream(g_stream);
    printf("ok   %s: workspaceSize %llu for a %llu-byte block returned %d %s\n", what, (unsigned long long)claimed,
           (unsigned long long)(ws ? ws : 64), rc, rc ? msg() : "");
    g_checks++;
    aclrtFree(w);
}

int main(void)
{
    setenv("ACLNN_MOE_NUM_THREADS", "2", 0); /* the parallel path is the one with scratch in the workspace */
    repro_setup();
    void *b1, *b2;
    const int64_t m[1] = {1 << 18}, e[1] = {256};
    aclTensor *sorted = dev_tensor(ACL_INT32, 1, m, &b1), *out = dev_tensor(ACL_INT32, 1, e, &b2);
    for (int i = 0; i < (1 << 18); i++) ((int32_t *)b1)[i] = i / 1024;
    uint64_t ws = 0;
    aclOpExecutor *ex = NULL;
    static const uint64_t LIES[] = {1 << 20, (uint64_t)1 << 40, UINT64_MAX};
    for (int k = 0; k < 3; k++) {
        if (aclnnMoeComputeExpertTokensGetWorkspaceSize(sorted, 256, out, &ws, &ex) != 0) return 2;
        lie("ComputeExpertTokens", aclnnMoeComputeExpertTokens, ws, ex, ws + LIES[k] < ws ? UINT64_MAX : ws + LIES[k]);
    }
    if (aclnnMoeComputeExpertTokensGetWorkspaceSize(sorted, 256, out, &ws, &ex) != 0) return 2;
    if (ws) {
        void *w;
        if (aclrtMalloc(&w, ws, ACL_MEM_MALLOC_HUGE_FIRST) != 0) return 2;
        expect_error(aclnnMoeComputeExpertTokens(w, ws - 1, ex, g_stream), "workspaceSize below what phase 1 asked");
        aclrtFree(w);
    } else {
        expect_true(run_phase2(aclnnMoeComputeExpertTokens, 0, ex) == 0, "ComputeExpertTokens needs no workspace");
    }
    aclDestroyTensor(sorted);
    aclDestroyTensor(out);
    aclrtFree(b1);
    aclrtFree(b2);

    /* gating with groups (it keeps scratch in the workspace) */
    const int64_t xd[2] = {64, 256}, kd[2] = {64, 8}, bd[1] = {256};
    void *c1, *c2, *c3, *c4, *c5;
    aclTensor *x = dev_tensor(ACL_FLOAT, 2, xd, &c1), *bias = dev_tensor(ACL_FLOAT, 1, bd, &c2);
    aclTensor *y = dev_tensor(ACL_FLOAT, 2, kd, &c3), *idx = dev_tensor(ACL_INT32, 2, kd, &c4);
    aclTensor *o = dev_tensor(ACL_FLOAT, 2, xd, &c5);
    for (int i = 0; i < 64 * 256; i++) ((float *)c1)[i] = (float)((i * 7919) % 1000) / 1000.0f;
    for (int k = 0; k < 3; k++) {
        if (aclnnMoeGatingTopKGetWorkspaceSize(x, bias, 8, 4, 8, 1, 0, 1, true, 2.5, 1e-20, y, idx, o, &ws, &ex) != 0) {
            printf("gating phase 1: %s\n", msg());
            return 2;
        }
        lie("GatingTopK", aclnnMoeGatingTopK, ws, ex, ws + LIES[k] < ws ? UINT64_MAX : ws + LIES[k]);
    }
    aclDestroyTensor(x); aclDestroyTensor(bias); aclDestroyTensor(y); aclDestroyTensor(idx); aclDestroyTensor(o);
    aclrtFree(c1); aclrtFree(c2); aclrtFree(c3); aclrtFree(c4); aclrtFree(c5);
    return repro_finish("class3_workspace_size");
}
