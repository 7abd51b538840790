/*
 * Runs the operators whose kernels have x86 SIMD paths (gating top-k, and the weighted row sums of finalize
 * routing and token unpermute) on generated inputs of awkward sizes, in fp32, fp16 and bf16, and prints a digest
 * (FNV-1a) of every output. tests/test_aarch64.py runs it natively (AVX2 / AVX-512 paths) and under
 * qemu-aarch64 (the portable paths): the digests must be equal, bit for bit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aclnn_sample.h"
#include "aclnnop/aclnn_moe_finalize_routing.h"
#include "aclnnop/aclnn_moe_gating_top_k.h"
#include "aclnnop/aclnn_moe_token_unpermute_with_ep.h"

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t next_u32(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}

/* a finite normal value of magnitude in [2^-5, 2^3), as the bits of the dtype: no conversion code needed */
static void random_floats(aclDataType dt, void *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        uint32_t r = next_u32(), s = r >> 31, e = (r >> 23) & 7u;
        if (dt == ACL_FLOAT) ((uint32_t *)dst)[i] = s << 31 | (122u + e) << 23 | (next_u32() & 0x7FFFFFu);
        else if (dt == ACL_BF16) ((uint16_t *)dst)[i] = (uint16_t)(s << 15 | (122u + e) << 7 | (r & 0x7Fu));
        else ((uint16_t *)dst)[i] = (uint16_t)(s << 15 | (10u + e) << 10 | (r & 0x3FFu));
    }
}

static void permutation(int32_t *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++) p[i] = (int32_t)i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = next_u32() % (uint64_t)(i + 1);
        int32_t t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
}

typedef struct {
    aclTensor *t;
    void *dev;
    size_t bytes;
} Dev;

static int make(Dev *d, const void *host, size_t elem, const int64_t *shape, uint64_t ndim, aclDataType dt)
{
    d->bytes = (size_t)GetShapeSize(shape, ndim) * elem;
    return CreateAclTensor(host, elem, shape, ndim, &d->dev, dt, &d->t);
}

static void release(Dev *d)
{
    if (d->t) aclDestroyTensor(d->t);
    if (d->dev) aclrtFree(d->dev);
    memset(d, 0, sizeof *d);
}

static uint64_t digest(const Dev *d)
{
    unsigned char *h = malloc(d->bytes ? d->bytes : 1);
    if (!h || CopyToHost(h, d->dev, d->bytes)) exit(3);
    uint64_t x = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < d->bytes; i++) x = (x ^ h[i]) * 0x100000001b3ull;
    free(h);
    return x;
}

static int run(const char *api, aclnnStatus st, uint64_t ws, aclOpExecutor *ex, aclrtStream stream,
               aclnnStatus (*phase2)(void *, uint64_t, aclOpExecutor *, aclrtStream))
{
    if (st != 0) {
        printf("%s phase 1 failed: %d (%s)\n", api, st, aclGetRecentErrMsg());
        return 1;
    }
    void *w = NULL;
    if (ws > 0 && aclrtMalloc(&w, ws, ACL_MEM_MALLOC_HUGE_FIRST) != ACL_SUCCESS) return 1;
    st = phase2(w, ws, ex, stream);
    if (st == 0) st = aclrtSynchronizeStream(stream);
    if (w) aclrtFree(w);
    if (st != 0) printf("%s phase 2 failed: %d (%s)\n", api, st, aclGetRecentErrMsg());
    return st != 0;
}

static const char *dname(aclDataType dt) { return dt == ACL_FLOAT ? "fp32" : dt == ACL_BF16 ? "bf16" : "fp16"; }
static size_t dsize(aclDataType dt) { return dt == ACL_FLOAT ? 4 : 2; }

static int gating(aclrtStream stream, aclDataType dt, int64_t rows, int64_t e, int64_t k, int64_t kGroup,
                  int64_t groups, int64_t mode, int64_t norm, int with_bias)
{
    int64_t xs[2] = {rows, e}, bs[1] = {e}, ks[2] = {rows, k};
    void *x = malloc((size_t)(rows * e) * dsize(dt)), *b = malloc((size_t)e * dsize(dt));
    void *zeros = calloc((size_t)(rows * e), 4);
    random_floats(dt, x, rows * e);
    random_floats(dt, b, e);
    Dev dx = {0}, db = {0}, dy = {0}, di = {0}, dout = {0};
    int bad = make(&dx, x, dsize(dt), xs, 2, dt) || (with_bias && make(&db, b, dsize(dt), bs, 1, dt)) ||
              make(&dy, zeros, dsize(dt), ks, 2, dt) || make(&di, zeros, 4, ks, 2, ACL_INT32) ||
              make(&dout, zeros, 4, xs, 2, ACL_FLOAT);
    uint64_t ws = 0;
    aclOpExecutor *ex = NULL;
    if (!bad) {
        aclnnStatus st = aclnnMoeGatingTopKGetWorkspaceSize(dx.t, with_bias ? db.t : NULL, k, kGroup, groups, mode,
                                                            0, norm, true, 2.5, 1e-20, dy.t, di.t, dout.t, &ws, &ex);
        bad = run("aclnnMoeGatingTopK", st, ws, ex, stream, aclnnMoeGatingTopK);
    }
    if (!bad)
        printf("gating_top_k %s T=%ld E=%ld k=%ld groups=%ld/%ld mode=%ld norm=%ld bias=%d: y %016llx idx %016llx "
               "out %016llx\n", dname(dt), (long)rows, (long)e, (long)k, (long)kGroup, (long)groups, (long)mode,
               (long)norm, with_bias, (unsigned long long)digest(&dy), (unsigned long long)digest(&di),
               (unsigned long long)digest(&dout));
    release(&dx), release(&db), release(&dy), release(&di), release(&dout);
    free(x), free(b), free(zeros);
    return bad;
}

static int finalize(aclrtStream stream, aclDataType dt, int64_t t, int64_t k, int64_t h, int64_t e)
{
    int64_t rs[2] = {t * k, h}, xs[2] = {t, h}, bs[2] = {e, h}, ss[2] = {t, k}, ri[1] = {t * k};
    void *rows = malloc((size_t)(t * k * h) * dsize(dt)), *x1 = malloc((size_t)(t * h) * dsize(dt));
    void *bias = malloc((size_t)(e * h) * dsize(dt)), *scales = malloc((size_t)(t * k) * dsize(dt));
    void *zeros = calloc((size_t)(t * h), 4);
    int32_t *perm = malloc((size_t)(t * k) * 4), *experts = malloc((size_t)(t * k) * 4);
    random_floats(dt, rows, t * k * h);
    random_floats(dt, x1, t * h);
    random_floats(dt, bias, e * h);
    random_floats(dt, scales, t * k);
    permutation(perm, t * k);
    for (int64_t i = 0; i < t * k; i++) experts[i] = (int32_t)(next_u32() % (uint32_t)e);
    Dev dr = {0}, dx1 = {0}, db = {0}, ds = {0}, dp = {0}, de = {0}, dout = {0}, dout2 = {0};
    int bad = make(&dr, rows, dsize(dt), rs, 2, dt) || make(&dx1, x1, dsize(dt), xs, 2, dt) ||
              make(&db, bias, dsize(dt), bs, 2, dt) || make(&ds, scales, dsize(dt), ss, 2, dt) ||
              make(&dp, perm, 4, ri, 1, ACL_INT32) || make(&de, experts, 4, ss, 2, ACL_INT32) ||
              make(&dout, zeros, dsize(dt), xs, 2, dt) || make(&dout2, zeros, dsize(dt), xs, 2, dt);
    uint64_t ws = 0;
    aclOpExecutor *ex = NULL;
    if (!bad) {
        aclnnStatus st = aclnnMoeFinalizeRoutingGetWorkspaceSize(dr.t, dx1.t, NULL, db.t, ds.t, dp.t, de.t, dout.t,
                                                                 &ws, &ex);
        bad = run("aclnnMoeFinalizeRouting", st, ws, ex, stream, aclnnMoeFinalizeRouting);
    }
    /* the same rows unpermuted (permutedTokens, sortedIndices, probs): the other weighted-sum user */
    if (!bad) {
        aclnnStatus st = aclnnMoeTokenUnpermuteWithEpGetWorkspaceSize(dr.t, dp.t, ds.t, k, NULL, false, NULL,
                                                                      dout2.t, &ws, &ex);
        bad = run("aclnnMoeTokenUnpermuteWithEp", st, ws, ex, stream, aclnnMoeTokenUnpermuteWithEp);
    }
    if (!bad)
        printf("finalize_routing / token_unpermute_with_ep %s T=%ld K=%ld H=%ld E=%ld: %016llx %016llx\n", dname(dt),
               (long)t, (long)k, (long)h, (long)e, (unsigned long long)digest(&dout),
               (unsigned long long)digest(&dout2));
    release(&dr), release(&dx1), release(&db), release(&ds), release(&dp), release(&de), release(&dout);
    release(&dout2);
    free(rows), free(x1), free(bias), free(scales), free(zeros), free(perm), free(experts);
    return bad;
}

int main(void)
{
    aclrtStream stream;
    if (Init(0, &stream)) return 1;
    static const aclDataType dts[3] = {ACL_FLOAT, ACL_FLOAT16, ACL_BF16};
    int bad = 0;
    for (int i = 0; i < 3; i++) {
        bad |= gating(stream, dts[i], 37, 256, 8, 4, 8, 1, 1, 1); /* DeepSeek-V3 style */
        bad |= gating(stream, dts[i], 29, 128, 8, 1, 1, 0, 0, 0); /* softmax, no groups */
        bad |= gating(stream, dts[i], 11, 72, 6, 2, 4, 0, 1, 1);  /* odd sizes: vector tails */
        bad |= finalize(stream, dts[i], 23, 4, 203, 16);
    }
    Finalize(0, stream);
    printf("ops_digest: %s\n", bad ? "FAILED" : "done");
    return bad;
}
