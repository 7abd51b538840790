/* issue 12 class 2: descriptor and shape arithmetic that passes INT64_MAX is an error, not undefined behaviour,
 * a wrapped extent that passes the storage checks, or a division by zero. */
#include "aclnnop/aclnn_moe_compute_expert_tokens.h"
#include "aclnnop/aclnn_moe_finalize_routing.h"
#include "aclnnop/aclnn_moe_gating_top_k.h"
#include "aclnnop/aclnn_moe_init_routing.h"
#include "repro.h"

static int phase1_or_2(int st, uint64_t ws, aclOpExecutor *ex, phase2_fn fn)
{
    return st ? st : run_phase2(fn, ws, ex);
}

int main(void)
{
    repro_setup();
    uint64_t ws = 0;
    aclOpExecutor *ex = NULL;
    void *blk;
    if (aclrtMalloc(&blk, 4096, ACL_MEM_MALLOC_HUGE_FIRST) != 0) return 2;
    memset(blk, 0, 4096);

    /* (a) NULL strides, dims whose product passes INT64_MAX: creation fails, or the tensor is unusable */
    const int64_t big[3] = {(int64_t)1 << 31, (int64_t)1 << 31, 8}, one[1] = {16};
    aclTensor *t = aclCreateTensor(big, 3, ACL_FLOAT, NULL, 0, ACL_FORMAT_ND, one, 1, blk);
    if (t) {
        const int64_t e[1] = {4};
        void *b;
        aclTensor *out = dev_tensor(ACL_INT32, 1, e, &b);
        expect_error(aclnnMoeComputeExpertTokensGetWorkspaceSize(t, 4, out, &ws, &ex),
                     "overflowing contiguous dims used by an operator");
        aclDestroyTensor(out);
        aclrtFree(b);
        aclDestroyTensor(t);
    } else {
        expect_true(1, "aclCreateTensor refuses dims whose product overflows");
    }

    /* (b) a view whose extent wraps int64 ([2^31, 2^31] strides [2^33, 1]) as GatingTopK's x */
    const int64_t xd[2] = {(int64_t)1 << 31, (int64_t)1 << 31}, xs[2] = {(int64_t)1 << 33, 1}, st1[1] = {64};
    aclTensor *x = aclCreateTensor(xd, 2, ACL_FLOAT, xs, 0, ACL_FORMAT_ND, st1, 1, blk);
    if (x) {
        const int64_t yd[2] = {(int64_t)1 << 31, 1}, od[2] = {(int64_t)1 << 31, (int64_t)1 << 31};
        aclTensor *y = aclCreateTensor(yd, 2, ACL_FLOAT, NULL, 0, ACL_FORMAT_ND, yd, 2, blk);
        aclTensor *idx = aclCreateTensor(yd, 2, ACL_INT32, NULL, 0, ACL_FORMAT_ND, yd, 2, blk);
        aclTensor *o = aclCreateTensor(od, 2, ACL_FLOAT, xs, 0, ACL_FORMAT_ND, st1, 1, blk);
        int s = aclnnMoeGatingTopKGetWorkspaceSize(x, NULL, 1, 1, 1, 0, 0, 0, false, 1.0, 1e-20, y, idx, o, &ws, &ex);
        expect_error(phase1_or_2(s, ws, ex, aclnnMoeGatingTopK), "GatingTopK over a view whose extent wraps int64");
        aclDestroyTensor(y);
        aclDestroyTensor(idx);
        aclDestroyTensor(o);
        aclDestroyTensor(x);
    } else {
        expect_true(1, "aclCreateTensor refuses a view whose extent wraps");
    }

    /* (c) stride-0 views with H = 2^62 columns over one element: N*H overflows, no division by zero */
    const int64_t H = (int64_t)1 << 62, N = 2, K = 1, E = 1;
    const int64_t z2[2] = {0, 0}, s1[1] = {1};
    const int64_t nkh[2] = {N * K, H}, nh[2] = {N, H}, eh[2] = {E, H}, nk[2] = {N, K}, flat[1] = {N * K};
    aclTensor *ex_x = aclCreateTensor(nkh, 2, ACL_FLOAT, z2, 0, ACL_FORMAT_ND, s1, 1, blk);
    aclTensor *x1 = aclCreateTensor(nh, 2, ACL_FLOAT, z2, 0, ACL_FORMAT_ND, s1, 1, blk);
    aclTensor *bias = aclCreateTensor(eh, 2, ACL_FLOAT, z2, 0, ACL_FORMAT_ND, s1, 1, blk);
    aclTensor *out = aclCreateTensor(nh, 2, ACL_FLOAT, z2, 0, ACL_FORMAT_ND, s1, 1, (char *)blk + 64);
    void *b1, *b2, *b3;
    aclTensor *scales = dev_tensor(ACL_FLOAT, 2, nk, &b1), *row = dev_tensor(ACL_INT32, 1, flat, &b2);
    aclTensor *eidx = dev_tensor(ACL_INT32, 2, nk, &b3);
    ((int32_t *)b2)[1] = 1; /* a valid permutation of the N*K rows */
    if (ex_x && x1 && bias && out) {
        int s = aclnnMoeFinalizeRoutingGetWorkspaceSize(ex_x, x1, NULL, bias, scales, row, eidx, out, &ws, &ex);
        expect_error(phase1_or_2(s, ws, ex, aclnnMoeFinalizeRouting), "FinalizeRouting with H = 2^62 stride-0 views");
    } else {
        expect_true(1, "aclCreateTensor refuses the H = 2^62 stride-0 views");
    }
    aclDestroyTensor(ex_x); aclDestroyTensor(x1); aclDestroyTensor(bias); aclDestroyTensor(out);
    aclDestroyTensor(scales); aclDestroyTensor(row); aclDestroyTensor(eidx);
    aclrtFree(b1); aclrtFree(b2); aclrtFree(b3);

    /* (d) phase-1 shape arithmetic: InitRouting with N*K past INT64_MAX (stride-0 inputs over one element) */
    const int64_t xn[2] = {(int64_t)1 << 33, 1}, nkd[2] = {(int64_t)1 << 33, (int64_t)1 << 31};
    const int64_t exd[2] = {(int64_t)1 << 62, 1}, flatd[1] = {(int64_t)1 << 62};
    const int64_t zz[2] = {0, 0}, z1[1] = {0};
    aclTensor *ix = aclCreateTensor(xn, 2, ACL_FLOAT, zz, 0, ACL_FORMAT_ND, s1, 1, blk);
    aclTensor *ir = aclCreateTensor(nkd, 2, ACL_INT32, zz, 0, ACL_FORMAT_ND, s1, 1, blk);
    aclTensor *ie = aclCreateTensor(nkd, 2, ACL_INT32, zz, 0, ACL_FORMAT_ND, s1, 1, blk);
    aclTensor *ox = aclCreateTensor(exd, 2, ACL_FLOAT, zz, 0, ACL_FORMAT_ND, s1, 1, blk);
    aclTensor *orow = aclCreateTensor(flatd, 1, ACL_INT32, z1, 0, ACL_FORMAT_ND, s1, 1, blk);
    aclTensor *oexp = aclCreateTensor(flatd, 1, ACL_INT32, z1, 0, ACL_FORMAT_ND, s1, 1, blk);
    if (ix && ir && ie && ox && orow && oexp) {
        int s = aclnnMoeInitRoutingGetWorkspaceSize(ix, ir, ie, (int64_t)1 << 33, ox, orow, oexp, &ws, &ex);
        expect_error(phase1_or_2(s, ws, ex, aclnnMoeInitRouting), "InitRouting with N*K past INT64_MAX");
    } else {
        expect_true(1, "aclCreateTensor refuses the InitRouting descriptors");
    }
    aclDestroyTensor(ix); aclDestroyTensor(ir); aclDestroyTensor(ie);
    aclDestroyTensor(ox); aclDestroyTensor(orow); aclDestroyTensor(oexp);
    aclrtFree(blk);
    return repro_finish("class2_descriptor_overflow");
}
