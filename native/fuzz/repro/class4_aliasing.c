/* issue 12 class 4: operands of one call that share memory (an output with another output or with an input)
 * and a workspace overlapping an operand are error statuses (the NPU gives no ordering between them), never
 * kernels that read back what they just overwrote. */
#include "aclnnop/aclnn_moe_finalize_routing.h"
#include "aclnnop/aclnn_moe_gating_top_k.h"
#include "aclnnop/aclnn_moe_init_routing.h"
#include "aclnnop/aclnn_moe_re_routing.h"
#include "repro.h"

static aclTensor *over(aclDataType dt, int ndim, const int64_t *dims, void *data)
{
    return aclCreateTensor(dims, (uint64_t)ndim, dt, NULL, 0, ACL_FORMAT_ND, dims, (uint64_t)ndim, data);
}

int main(void)
{
    repro_setup();
    uint64_t ws;
    aclOpExecutor *ex;
    int s;
    void *big;
    if (aclrtMalloc(&big, 1 << 16, ACL_MEM_MALLOC_HUGE_FIRST) != 0) return 2;
    memset(big, 0, 1 << 16);

    /* (a) MoeReRouting: permuteTokenIdxOut over permuteTokensOut */
    {
        const int64_t A = 6, H = 4, N = 2, E = 2, th[2] = {A, H}, ne[2] = {N, E}, a1[1] = {A}, e1[1] = {E};
        void *b1, *b2, *b3, *b4, *b5, *b6;
        aclTensor *tok = dev_tensor(ACL_INT8, 2, th, &b1), *cnt = dev_tensor(ACL_INT32, 2, ne, &b2);
        const int32_t counts[4] = {1, 2, 2, 1};
        memcpy(b2, counts, sizeof counts);
        aclTensor *pt = dev_tensor(ACL_INT8, 2, th, &b3), *ps = dev_tensor(ACL_FLOAT, 1, a1, &b4);
        aclTensor *pi = over(ACL_INT32, 1, a1, b3), *en = dev_tensor(ACL_INT32, 1, e1, &b5);
        (void)b6;
        ex = NULL;
        s = aclnnMoeReRoutingGetWorkspaceSize(tok, cnt, NULL, 1, 0, pt, ps, pi, en, &ws, &ex);
        if (s == 0) s = run_phase2(aclnnMoeReRouting, ws, ex);
        expect_error(s, "ReRouting: permuteTokenIdxOut shares memory with permuteTokensOut");
        /* an output over an input */
        aclTensor *pt2 = over(ACL_INT8, 2, th, b1);
        ex = NULL;
        s = aclnnMoeReRoutingGetWorkspaceSize(tok, cnt, NULL, 1, 0, pt2, ps, dev_tensor(ACL_INT32, 1, a1, &b6), en,
                                              &ws, &ex);
        if (s == 0) s = run_phase2(aclnnMoeReRouting, ws, ex);
        expect_error(s, "ReRouting: permuteTokensOut shares memory with tokens");
        aclDestroyTensor(tok); aclDestroyTensor(cnt); aclDestroyTensor(pt); aclDestroyTensor(ps);
        aclDestroyTensor(pi); aclDestroyTensor(en); aclDestroyTensor(pt2);
        aclrtFree(b1); aclrtFree(b2); aclrtFree(b3); aclrtFree(b4); aclrtFree(b5); aclrtFree(b6);
    }

    /* (b) MoeFinalizeRouting: out over expandedRowIdx */
    {
        const int64_t N = 4, K = 2, H = 2, E = 2;
        const int64_t nkh[2] = {N * K, H}, nh[2] = {N, H}, eh[2] = {E, H}, nk[2] = {N, K}, f1[1] = {N * K};
        void *b1, *b2, *b3, *b4, *b5, *b6;
        aclTensor *exx = dev_tensor(ACL_FLOAT, 2, nkh, &b1), *x1 = dev_tensor(ACL_FLOAT, 2, nh, &b2);
        aclTensor *bias = dev_tensor(ACL_FLOAT, 2, eh, &b3), *sc = dev_tensor(ACL_FLOAT, 2, nk, &b4);
        aclTensor *row = dev_tensor(ACL_INT32, 1, f1, &b5), *eidx = dev_tensor(ACL_INT32, 2, nk, &b6);
        for (int i = 0; i < N * K; i++) ((int32_t *)b5)[i] = (i * 3) % (N * K);
        aclTensor *out = over(ACL_FLOAT, 2, nh, b5);
        ex = NULL;
        s = aclnnMoeFinalizeRoutingGetWorkspaceSize(exx, x1, NULL, bias, sc, row, eidx, out, &ws, &ex);
        if (s == 0) s = run_phase2(aclnnMoeFinalizeRouting, ws, ex);
        expect_error(s, "FinalizeRouting: out shares memory with expandedRowIdx");
        aclDestroyTensor(exx); aclDestroyTensor(x1); aclDestroyTensor(bias); aclDestroyTensor(sc);
        aclDestroyTensor(row); aclDestroyTensor(eidx); aclDestroyTensor(out);
        aclrtFree(b1); aclrtFree(b2); aclrtFree(b3); aclrtFree(b4); aclrtFree(b5); aclrtFree(b6);
    }

    /* (c) MoeInitRouting: the workspace over expandedXOut */
    {
        const int64_t N = 8, K = 2, H = 64, xd[2] = {N, H}, nk[2] = {N, K}, exd[2] = {N * K, H}, f1[1] = {N * K};
        void *b1, *b2, *b3, *b4, *b5, *b6;
        aclTensor *x = dev_tensor(ACL_FLOAT, 2, xd, &b1), *ri = dev_tensor(ACL_INT32, 2, nk, &b2);
        aclTensor *ei = dev_tensor(ACL_INT32, 2, nk, &b3), *ox = dev_tensor(ACL_FLOAT, 2, exd, &b4);
        aclTensor *orow = dev_tensor(ACL_INT32, 1, f1, &b5), *oexp = dev_tensor(ACL_INT32, 1, f1, &b6);
        for (int i = 0; i < N * K; i++) { ((int32_t *)b2)[i] = i; ((int32_t *)b3)[i] = (i * 5) % 7; }
        ex = NULL;
        s = aclnnMoeInitRoutingGetWorkspaceSize(x, ri, ei, N, ox, orow, oexp, &ws, &ex);
        if (s == 0) {
            s = aclnnMoeInitRouting(b4, ws, ex, g_stream);
            aclrtSynchronizeStream(g_stream);
            if (ws == 0) {
                printf("ok   InitRouting needs no workspace, so none can overlap (status %d)\n", s);
                s = 1;
            }
        }
        expect_error(s, "InitRouting: the workspace overlaps expandedXOut");
        aclDestroyTensor(x); aclDestroyTensor(ri); aclDestroyTensor(ei); aclDestroyTensor(ox);
        aclDestroyTensor(orow); aclDestroyTensor(oexp);
        aclrtFree(b1); aclrtFree(b2); aclrtFree(b3); aclrtFree(b4); aclrtFree(b5); aclrtFree(b6);
    }

    /* (d) MoeGatingTopK: yOut over x */
    {
        const int64_t xd[2] = {4, 16}, kd[2] = {4, 4};
        void *b1, *b2, *b3;
        aclTensor *x = dev_tensor(ACL_FLOAT, 2, xd, &b1), *y = over(ACL_FLOAT, 2, kd, b1);
        aclTensor *idx = dev_tensor(ACL_INT32, 2, kd, &b2), *o = dev_tensor(ACL_FLOAT, 2, xd, &b3);
        ex = NULL;
        s = aclnnMoeGatingTopKGetWorkspaceSize(x, NULL, 4, 1, 1, 0, 0, 0, false, 1.0, 1e-20, y, idx, o, &ws, &ex);
        if (s == 0) s = run_phase2(aclnnMoeGatingTopK, ws, ex);
        expect_error(s, "GatingTopK: yOut shares memory with x");
        aclDestroyTensor(x); aclDestroyTensor(y); aclDestroyTensor(idx); aclDestroyTensor(o);
        aclrtFree(b1); aclrtFree(b2); aclrtFree(b3);
    }
    aclrtFree(big);
    return repro_finish("class4_aliasing");
}
