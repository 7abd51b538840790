/*
 * aclnnMoeGatingTopK on the host runtime (spec/semantics.md section 4, spec/abi.md 5.5).
 *
 * Per row, in fp32:
 *   norm = sigmoid(x)                         (normType 1)
 *        | exp(x - max) * (1 / sum(exp(x - max)))   (normType 0, softmax by reciprocal multiply)
 *   sel  = norm + bias                        (bias only steers the selection)
 *   if grouping is active (groupCount not in {1, E} and kGroup != groupCount):
 *       group score = max(sel in group) (mode 0) | top1 + top2 (mode 1)
 *       keep the kGroup best groups (ties -> lower group index); experts of the others score -inf
 *   idx  = top-k of sel (ties -> lower expert index)
 *   y    = norm[idx]; if normType 1: y = y / (sum(y) + eps)   (never for softmax)
 *   y    = y * routedScalingFactor, stored in x's dtype with round-to-nearest-even
 *   out  = norm (fp32), written only when outFlag
 *
 * Ordering: every score is mapped to a 64-bit key (order-preserving float bits in the high half, the inverted
 * index in the low half), so "larger key" is exactly "larger score, then lower index": a strict total order in
 * which NaN ranks below -inf, like numpy's argsort(-x, kind='stable') in the official golden.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "aclnnop/aclnn_moe_gating_top_k.h"
#include "op_common.h"

#define GTK_MAX_EXPERTS 2048
#define GTK_INSERTION_MAX_K 32 /* top-k by insertion into a sorted buffer up to this k, else a radix sort */
#define GTK_ALIGN 64

typedef struct {
    int64_t rows;
    int64_t experts;
    int64_t k;
    int64_t k_group;
    int64_t group_count;
    int64_t group_select_mode;
    int64_t norm_type;
    int out_flag;
    int grouped; /* grouping is active */
    float routed_scaling_factor;
    float eps;
} GatingTopKParams;

/* ---- workspace layout: [bias f32 E] [slot 0] [slot 1] ... ; one slot per concurrently processed chunk ---- */
static uint64_t gtk_align(uint64_t n) { return (n + GTK_ALIGN - 1) / GTK_ALIGN * GTK_ALIGN; }

static uint64_t gtk_bias_bytes(int64_t e) { return gtk_align((uint64_t)e * sizeof(float)); }

static uint64_t gtk_slot_bytes(int64_t e, int64_t groups, int64_t k)
{
    int64_t nbuf = e > groups ? e : groups;
    return gtk_align((uint64_t)e * sizeof(float))          /* norm */
           + gtk_align((uint64_t)e * sizeof(uint64_t))     /* expert keys */
           + gtk_align((uint64_t)groups * sizeof(uint64_t)) /* group keys */
           + gtk_align((uint64_t)groups)                    /* kept-group flags */
           + gtk_align((uint64_t)nbuf * sizeof(uint64_t))   /* sel, then top-k scratch */
           + gtk_align((uint64_t)k * sizeof(float));        /* gathered weights */
}

/* ---- ordering keys ---- */
static inline uint32_t gtk_order_bits(float v)
{
    float z = v + 0.0f; /* -0 -> +0: equal scores must tie */
    uint32_t u;
    memcpy(&u, &z, sizeof u);
    uint32_t neg = (uint32_t)((int32_t)u >> 31);       /* all ones for negative scores */
    uint32_t key = u ^ (neg | 0x80000000u);             /* order-preserving, branch-free */
    return v == v ? key : 0u;                           /* NaN: below everything, -inf included */
}

static inline uint64_t gtk_key(float v, int64_t idx)
{
    return ((uint64_t)gtk_order_bits(v) << 32) | (uint64_t)(0xFFFFFFFFu - (uint32_t)idx);
}

static inline int64_t gtk_key_index(uint64_t key) { return (int64_t)(0xFFFFFFFFu - (uint32_t)(key & 0xFFFFFFFFu)); }

/* Stable LSD radix sort of a[0..n) by the score half of the keys, descending: keys whose scores tie keep their
 * order in the input, so an input in ascending index order yields the lower index first (the key order).
 * 8-bit digits; digits that are the same for every key are skipped. tmp must hold n keys. */
static void gtk_radix_desc(uint64_t *a, int64_t n, uint64_t *tmp)
{
    uint32_t cnt[4][256];
    memset(cnt, 0, sizeof cnt);
    for (int64_t i = 0; i < n; i++) {
        uint32_t v = ~(uint32_t)(a[i] >> 32);
        cnt[0][v & 255u]++;
        cnt[1][(v >> 8) & 255u]++;
        cnt[2][(v >> 16) & 255u]++;
        cnt[3][v >> 24]++;
    }
    uint64_t *src = a, *dst = tmp;
    for (int b = 0; b < 4; b++) {
        uint32_t *c = cnt[b];
        int trivial = 0;
        for (int d = 0; d < 256; d++)
            if (c[d]) {
                trivial = (int64_t)c[d] == n;
                break;
            }
        if (trivial) continue;
        uint32_t off = 0;
        for (int d = 0; d < 256; d++) {
            uint32_t t = c[d];
            c[d] = off;
            off += t;
        }
        const int shift = 8 * b;
        for (int64_t i = 0; i < n; i++) {
            uint64_t key = src[i];
            uint32_t d = ((~(uint32_t)(key >> 32)) >> shift) & 255u;
            dst[c[d]++] = key;
        }
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, (size_t)n * sizeof(uint64_t));
}

/* Rearranges a[0..n) so that a[0..k) holds the k largest keys in descending order. The keys must be distinct and
 * in ascending index order (as built by the kernel). buf must hold n keys. */
static void gtk_topk_desc(uint64_t *a, int64_t n, int64_t k, uint64_t *buf)
{
    if (k <= 0) return;
    if (k > n) k = n;
    if (k <= GTK_INSERTION_MAX_K) { /* insertion into a sorted buffer: O(n) when few keys enter it */
        int64_t m = 0, i = 0;
        for (; i < n && m < k; i++) { /* fill */
            uint64_t v = a[i];
            int64_t j = m++;
            while (j > 0 && buf[j - 1] < v) {
                buf[j] = buf[j - 1];
                j--;
            }
            buf[j] = v;
        }
        uint64_t thr = buf[k - 1];
        for (; i < n; i++) {
            uint64_t v = a[i];
            if (v <= thr) continue;
            int64_t j = k - 1; /* the current k-th drops out */
            while (j > 0 && buf[j - 1] < v) {
                buf[j] = buf[j - 1];
                j--;
            }
            buf[j] = v;
            thr = buf[k - 1];
        }
        memcpy(a, buf, (size_t)k * sizeof(uint64_t));
        return;
    }
    gtk_radix_desc(a, n, buf);
}

/* ---- kernel ---- */
typedef struct {
    const GatingTopKParams *p;
    const aclTensor *x, *y, *idx, *out;
    const float *bias; /* NULL when absent */
    char *slots;
    uint64_t slot_bytes;
    int64_t nslots;
} GatingTopKCtx;

static void gtk_row(const GatingTopKCtx *c, int64_t row, float *norm, uint64_t *keys, uint64_t *gkeys,
                    unsigned char *kept, uint64_t *buf, float *yv)
{
    const GatingTopKParams *p = c->p;
    const int64_t e = p->experts, k = p->k;

    /* 1. norm */
    op_load_row_f32(c->x, row, e, norm);
    if (p->norm_type == 1) {
        for (int64_t i = 0; i < e; i++) norm[i] = expf(-norm[i]);
        for (int64_t i = 0; i < e; i++) norm[i] = 1.0f / (1.0f + norm[i]); /* vectorises */
    } else {
        float m = norm[0];
        for (int64_t i = 1; i < e; i++)
            if (norm[i] > m) m = norm[i];
        float s = 0.0f;
        for (int64_t i = 0; i < e; i++) {
            norm[i] = expf(norm[i] - m);
            s += norm[i];
        }
        float r = 1.0f / s;
        for (int64_t i = 0; i < e; i++) norm[i] *= r;
    }

    /* 2. selection keys (norm + bias), with group filtering when grouping is active */
    if (!p->grouped) {
        if (c->bias)
            for (int64_t i = 0; i < e; i++) keys[i] = gtk_key(norm[i] + c->bias[i], i);
        else
            for (int64_t i = 0; i < e; i++) keys[i] = gtk_key(norm[i], i);
    } else {
        const int64_t g = p->group_count, per = e / g;
        float *sel = (float *)buf; /* buf is free until the group top-k below */
        if (c->bias)
            for (int64_t i = 0; i < e; i++) sel[i] = norm[i] + c->bias[i];
        else
            memcpy(sel, norm, (size_t)e * sizeof(float));
        for (int64_t i = 0; i < e; i++) keys[i] = gtk_key(sel[i], i);
        for (int64_t gi = 0; gi < g; gi++) {
            const float *v = sel + gi * per;
            float t1 = -INFINITY, t2 = -INFINITY;
            int nan = 0;
            for (int64_t j = 0; j < per; j++) { /* branch-free running top-2 */
                float x = v[j];
                nan |= x != x;
                float lo = x < t1 ? x : t1;
                t1 = x > t1 ? x : t1;
                t2 = lo > t2 ? lo : t2;
            }
            /* NaN propagates into the group score, as numpy amax / partition do in the golden */
            float score = nan ? NAN : (p->group_select_mode == 0 ? t1 : t1 + t2);
            gkeys[gi] = gtk_key(score, gi);
        }
        gtk_topk_desc(gkeys, g, p->k_group, buf);
        memset(kept, 0, (size_t)g);
        for (int64_t j = 0; j < p->k_group; j++) kept[gtk_key_index(gkeys[j])] = 1;
        for (int64_t gi = 0; gi < g; gi++)
            if (!kept[gi]) /* experts of dropped groups score -inf (the golden's mask) */
                for (int64_t j = gi * per; j < (gi + 1) * per; j++) keys[j] = gtk_key(-INFINITY, j);
    }

    /* 3. top-k experts */
    gtk_topk_desc(keys, e, k, buf);

    /* 4. weights from the pre-bias norm; renormalise for sigmoid only; scale; store */
    for (int64_t j = 0; j < k; j++) yv[j] = norm[gtk_key_index(keys[j])];
    if (p->norm_type == 1) {
        float s = 0.0f;
        for (int64_t j = 0; j < k; j++) s += yv[j];
        s += p->eps;
        for (int64_t j = 0; j < k; j++) yv[j] = yv[j] / s;
    }
    const float rsf = p->routed_scaling_factor;
    const aclDataType ydt = c->y->dtype;
    for (int64_t j = 0; j < k; j++) {
        op_store_f(ydt, op_ptr2(c->y, row, j), yv[j] * rsf);
        *(int32_t *)op_ptr2(c->idx, row, j) = (int32_t)gtk_key_index(keys[j]);
    }
    if (p->out_flag) op_store_row_f32(c->out, row, e, norm);
}

static void gtk_chunk(void *vctx, int64_t begin, int64_t end)
{
    const GatingTopKCtx *c = (const GatingTopKCtx *)vctx;
    const GatingTopKParams *p = c->p;
    const int64_t e = p->experts, g = p->group_count;
    for (int64_t s = begin; s < end; s++) {
        char *w = c->slots + (uint64_t)s * c->slot_bytes;
        float *norm = (float *)w;
        w += gtk_align((uint64_t)e * sizeof(float));
        uint64_t *keys = (uint64_t *)w;
        w += gtk_align((uint64_t)e * sizeof(uint64_t));
        uint64_t *gkeys = (uint64_t *)w;
        w += gtk_align((uint64_t)g * sizeof(uint64_t));
        unsigned char *kept = (unsigned char *)w;
        w += gtk_align((uint64_t)g);
        uint64_t *buf = (uint64_t *)w;
        w += gtk_align((uint64_t)(e > g ? e : g) * sizeof(uint64_t));
        float *yv = (float *)w;
        int64_t r0 = p->rows * s / c->nslots, r1 = p->rows * (s + 1) / c->nslots;
        for (int64_t r = r0; r < r1; r++) gtk_row(c, r, norm, keys, gkeys, kept, buf, yv);
    }
}

static aclnnStatus gtk_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    const GatingTopKParams *p = (const GatingTopKParams *)ex->params;
    if (p->rows == 0) return ACLNN_SUCCESS;
    GatingTopKCtx c;
    c.p = p;
    c.x = ex->inputs[0];
    c.y = ex->outputs[0];
    c.idx = ex->outputs[1];
    c.out = ex->outputs[2];

    /* align the workspace base (phase 1 asked for GTK_ALIGN spare bytes) */
    uintptr_t base = ((uintptr_t)ws + GTK_ALIGN - 1) & ~(uintptr_t)(GTK_ALIGN - 1);
    uint64_t skip = ws ? (uint64_t)(base - (uintptr_t)ws) : 0;
    uint64_t bias_bytes = gtk_bias_bytes(p->experts);
    c.slot_bytes = gtk_slot_bytes(p->experts, p->group_count, p->k);
    if (!ws || wsSize < skip + bias_bytes + c.slot_bytes)
        return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                              "aclnnMoeGatingTopK: workspace of %llu bytes is smaller than the %llu bytes needed",
                              (unsigned long long)wsSize,
                              (unsigned long long)(GTK_ALIGN + bias_bytes + c.slot_bytes));
    float *bias = (float *)base;
    const aclTensor *bt = ex->inputs[1];
    if (bt) {
        for (int64_t i = 0; i < p->experts; i++) bias[i] = op_load_f(bt->dtype, op_ptr2(bt, i, 0));
        c.bias = bias;
    } else {
        c.bias = NULL;
    }
    c.slots = (char *)base + bias_bytes;
    int64_t avail = (int64_t)((wsSize - skip - bias_bytes) / c.slot_bytes);
    /* about 16K elements of work per chunk at least, at most one chunk per scratch slot */
    int64_t want = p->rows * p->experts / 16384;
    if (want < 1) want = 1;
    if (want > p->rows) want = p->rows;
    c.nslots = want < avail ? want : avail;
    if (c.nslots <= 1) gtk_chunk(&c, 0, 1);
    else acl_host_parallel_for(c.nslots, 1, gtk_chunk, &c);
    return ACLNN_SUCCESS;
}

aclnnStatus aclnnMoeGatingTopKGetWorkspaceSize(const aclTensor *x, const aclTensor *biasOptional, int64_t k,
                                               int64_t kGroup, int64_t groupCount, int64_t groupSelectMode,
                                               int64_t renorm, int64_t normType, bool outFlag,
                                               double routedScalingFactor, double eps, const aclTensor *yOut,
                                               const aclTensor *expertIdxOut, const aclTensor *outOut,
                                               uint64_t *workspaceSize, aclOpExecutor **executor)
{
    static const char *api = "aclnnMoeGatingTopK";
    static const aclDataType float_types[] = {ACL_FLOAT, ACL_FLOAT16, ACL_BF16, ACL_DT_UNDEFINED};
    static const aclDataType int32_type[] = {ACL_INT32, ACL_DT_UNDEFINED};
    static const aclDataType fp32_type[] = {ACL_FLOAT, ACL_DT_UNDEFINED};

    /* 161001: required tensors (the official op_api also requires outOut, even when outFlag is false) */
    OP_TRY(op_check_not_null(api, "x", x));
    OP_TRY(op_check_not_null(api, "yOut", yOut));
    OP_TRY(op_check_not_null(api, "expertIdxOut", expertIdxOut));
    OP_TRY(op_check_not_null(api, "outOut", outOut));

    /* 161002: dtypes and formats */
    OP_TRY(op_check_dtype(api, "x", x, float_types));
    if (biasOptional) {
        OP_TRY(op_check_dtype(api, "biasOptional", biasOptional, float_types));
        OP_TRY(op_check_same_dtype(api, "biasOptional", biasOptional, "x", x));
    }
    OP_TRY(op_check_dtype(api, "yOut", yOut, float_types));
    OP_TRY(op_check_same_dtype(api, "yOut", yOut, "x", x));
    OP_TRY(op_check_dtype(api, "expertIdxOut", expertIdxOut, int32_type));
    OP_TRY(op_check_dtype(api, "outOut", outOut, fp32_type));
    OP_TRY(op_check_format(api, "x", x));
    if (biasOptional) OP_TRY(op_check_format(api, "biasOptional", biasOptional));
    OP_TRY(op_check_format(api, "yOut", yOut));
    OP_TRY(op_check_format(api, "expertIdxOut", expertIdxOut));
    OP_TRY(op_check_format(api, "outOut", outOut));

    /* 561002: shapes (the NPU tiling's CheckInputShape / CheckOutShape) */
    OP_TRY(op_check_ndim(api, "x", x, 2));
    const int64_t rows = x->dims[0], e = x->dims[1];
    if (biasOptional) {
        OP_TRY(op_check_ndim(api, "biasOptional", biasOptional, 1));
        if (biasOptional->dims[0] != e)
            return op_fail_tiling(api, "biasOptional dim 0 (%lld) must equal the expert count %lld of x",
                                  (long long)biasOptional->dims[0], (long long)e);
    }
    if (k > e) return op_fail_tiling(api, "k (%lld) must not exceed expert count %lld", (long long)k, (long long)e);
    OP_TRY(op_check_ndim(api, "yOut", yOut, 2));
    OP_TRY(op_check_ndim(api, "expertIdxOut", expertIdxOut, 2));
    OP_TRY(op_check_ndim(api, "outOut", outOut, 2));
    {
        const int64_t yshape[2] = {rows, k};
        OP_TRY(op_check_shape(api, "yOut", yOut, 2, yshape));
        OP_TRY(op_check_shape(api, "expertIdxOut", expertIdxOut, 2, yshape));
    }
    if (outFlag) { /* like the NPU tiling, outOut's extents are only checked when it is written */
        const int64_t oshape[2] = {rows, e};
        OP_TRY(op_check_shape(api, "outOut", outOut, 2, oshape));
    }

    /* 561002: attributes (the NPU tiling's CheckAttr, in its order) */
    if (e > GTK_MAX_EXPERTS)
        return op_fail_tiling(api, "expert count %lld must not be greater than %d", (long long)e, GTK_MAX_EXPERTS);
    if (k <= 0) return op_fail_tiling(api, "k (%lld) must be greater than 0", (long long)k);
    if (kGroup <= 0) return op_fail_tiling(api, "kGroup (%lld) must be greater than 0", (long long)kGroup);
    if (kGroup > groupCount)
        return op_fail_tiling(api, "kGroup (%lld) must not exceed groupCount (%lld)", (long long)kGroup,
                              (long long)groupCount);
    if (groupCount <= 0)
        return op_fail_tiling(api, "groupCount (%lld) must be greater than 0", (long long)groupCount);
    if (normType != 0 && normType != 1)
        return op_fail_tiling(api, "normType (%lld) must be 0 (softmax) or 1 (sigmoid)", (long long)normType);
    if (groupSelectMode != 0 && groupSelectMode != 1)
        return op_fail_tiling(api, "groupSelectMode (%lld) must be 0 (max) or 1 (sum of top 2)",
                              (long long)groupSelectMode);
    if (renorm != 0) return op_fail_tiling(api, "renorm (%lld) is not supported, only 0", (long long)renorm);
    if (e % groupCount != 0)
        return op_fail_tiling(api, "expert count %lld must be divisible by groupCount (%lld)", (long long)e,
                              (long long)groupCount);
    const int64_t per = e / groupCount;
    if (per < 1)
        return op_fail_tiling(api, "experts per group (%lld / %lld) must be at least 1", (long long)e,
                              (long long)groupCount);
    if (groupSelectMode == 1 && per < 2)
        return op_fail_tiling(api, "groupSelectMode 1 needs at least 2 experts per group, got %lld", (long long)per);
    if (k > kGroup * per)
        return op_fail_tiling(api, "k (%lld) must not exceed kGroup * experts per group (%lld * %lld)",
                              (long long)k, (long long)kGroup, (long long)per);
    const int grouped = groupCount != 1 && groupCount != e && kGroup != groupCount;
    if (grouped) {
        int64_t align = (per + 31) / 32 * 32;
        if (groupCount * align > GTK_MAX_EXPERTS)
            return op_fail_tiling(api,
                                  "groupCount * align32(experts per group) = %lld * %lld must not be greater than %d",
                                  (long long)groupCount, (long long)align, GTK_MAX_EXPERTS);
    }

    OP_TRY(op_check_not_null(api, "workspaceSize", workspaceSize));
    OP_TRY(op_check_not_null(api, "executor", executor));

    GatingTopKParams p;
    memset(&p, 0, sizeof p);
    p.rows = rows;
    p.experts = e;
    p.k = k;
    p.k_group = kGroup;
    p.group_count = groupCount;
    p.group_select_mode = groupSelectMode;
    p.norm_type = normType;
    p.out_flag = outFlag ? 1 : 0;
    p.grouped = grouped;
    p.routed_scaling_factor = (float)routedScalingFactor; /* the NPU keeps both as float in its tiling data */
    p.eps = (float)eps;

    uint64_t ws = 0;
    if (rows > 0) {
        int64_t slots = acl_host_num_threads();
        if (slots < 1) slots = 1;
        if (slots > rows) slots = rows;
        ws = GTK_ALIGN + gtk_bias_bytes(e) + (uint64_t)slots * gtk_slot_bytes(e, groupCount, k);
    }
    const aclTensor *ins[] = {x, biasOptional};
    const aclTensor *outs[] = {yOut, expertIdxOut, outOut};
    return acl_host_executor_create(api, gtk_kernel, ins, 2, outs, 3, &p, sizeof p, ws, workspaceSize, executor);
}

aclnnStatus aclnnMoeGatingTopK(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor, aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeGatingTopK");
}
