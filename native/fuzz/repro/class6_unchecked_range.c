/* issue 12 class 6: MoeTokenUnpermuteWithEp (and MoeTokenPermuteWithEp) validate rangeOptional: a negative
 * start or end (INT64_MIN overflowed `d - start`) is an error status (561002). Windows that are empty
 * (start >= end) or reach past T*K are used as is, like the NPU kernel (zeros / the rows inside): any status,
 * but never a read outside permutedTokens (a sanitizer report). */
#include "aclnnop/aclnn_moe_token_permute_with_ep.h"
#include "aclnnop/aclnn_moe_token_unpermute_with_ep.h"
#include "repro.h"

int main(void)
{
    repro_setup();
    const int64_t T = 3, K = 2, H = 4;
    const int64_t pd[2] = {4, H}, sd[1] = {T * K}, od[2] = {T, H}, td[2] = {T, H}, kd[2] = {T, K};
    void *b1, *b2, *b3, *b4, *b5, *b6;
    aclTensor *perm = dev_tensor(ACL_FLOAT, 2, pd, &b1), *sorted = dev_tensor(ACL_INT32, 1, sd, &b2);
    aclTensor *out = dev_tensor(ACL_FLOAT, 2, od, &b3);
    for (int i = 0; i < T * K; i++) ((int32_t *)b2)[i] = i;
    static const int64_t BAD[][2] = {{INT64_MIN, 2}, {INT64_MIN, INT64_MIN + 4}, {-1, 3}, {2, -1},
                                     {INT64_MIN, INT64_MAX}};
    static const int64_t ODD[][2] = {{0, INT64_MAX}, {3, 1}, {7, 11}, {INT64_MAX - 2, INT64_MAX}, {6, 6}};
    uint64_t ws;
    aclOpExecutor *ex;
    char what[128];
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        aclIntArray *r = aclCreateIntArray(BAD[i], 2);
        snprintf(what, sizeof what, "unpermute rangeOptional [%lld, %lld]", (long long)BAD[i][0], (long long)BAD[i][1]);
        ex = NULL;
        int s = aclnnMoeTokenUnpermuteWithEpGetWorkspaceSize(perm, sorted, NULL, K, r, false, NULL, out, &ws, &ex);
        if (s == 0) s = run_phase2(aclnnMoeTokenUnpermuteWithEp, ws, ex);
        expect_error(s, what);
        aclDestroyIntArray(r);
    }
    for (size_t i = 0; i < sizeof ODD / sizeof ODD[0]; i++) {
        aclIntArray *r = aclCreateIntArray(ODD[i], 2);
        ex = NULL;
        int s = aclnnMoeTokenUnpermuteWithEpGetWorkspaceSize(perm, sorted, NULL, K, r, false, NULL, out, &ws, &ex);
        if (s == 0) s = run_phase2(aclnnMoeTokenUnpermuteWithEp, ws, ex);
        printf("ok   unpermute rangeOptional [%lld, %lld] is safe: %d %s\n", (long long)ODD[i][0],
               (long long)ODD[i][1], s, s ? msg() : "");
        g_checks++;
        aclDestroyIntArray(r);
    }
    aclTensor *tok = dev_tensor(ACL_FLOAT, 2, td, &b4), *ind = dev_tensor(ACL_INT32, 2, kd, &b5);
    aclTensor *sidx = dev_tensor(ACL_INT32, 1, sd, &b6);
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        aclIntArray *r = aclCreateIntArray(BAD[i], 2);
        snprintf(what, sizeof what, "permute rangeOptional [%lld, %lld]", (long long)BAD[i][0], (long long)BAD[i][1]);
        ex = NULL;
        int s = aclnnMoeTokenPermuteWithEpGetWorkspaceSize(tok, ind, NULL, r, 0, false, perm, sidx, NULL, &ws, &ex);
        if (s == 0) s = run_phase2(aclnnMoeTokenPermuteWithEp, ws, ex);
        expect_error(s, what);
        aclDestroyIntArray(r);
    }
    for (size_t i = 0; i < sizeof ODD / sizeof ODD[0]; i++) {
        aclIntArray *r = aclCreateIntArray(ODD[i], 2);
        ex = NULL;
        int s = aclnnMoeTokenPermuteWithEpGetWorkspaceSize(tok, ind, NULL, r, 0, false, perm, sidx, NULL, &ws, &ex);
        if (s == 0) s = run_phase2(aclnnMoeTokenPermuteWithEp, ws, ex);
        printf("ok   permute rangeOptional [%lld, %lld] is safe: %d %s\n", (long long)ODD[i][0], (long long)ODD[i][1],
               s, s ? msg() : "");
        g_checks++;
        aclDestroyIntArray(r);
    }
    aclDestroyTensor(perm); aclDestroyTensor(sorted); aclDestroyTensor(out);
    aclDestroyTensor(tok); aclDestroyTensor(ind); aclDestroyTensor(sidx);
    aclrtFree(b1); aclrtFree(b2); aclrtFree(b3); aclrtFree(b4); aclrtFree(b5); aclrtFree(b6);
    return repro_finish("class6_unchecked_range");
}
