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
 * Ordering: the 64-bit keys of op_math.h ("larger key" = larger score, then lower index; NaN below -inf).
 *
 * Speed: exp is op_exp_f32 (op_math.h: double precision, rounded once: bit-exact with the reference's exp), with an AVX-512
 * twin chosen at run time; sigmoid of bf16/fp16 logits is a lookup in a table of all 65536 values built by the
 * same code; the top-k works on the order bits of the scores and builds keys only for the few experts that can
 * still enter it (AVX-512: a lower bound from lane maxima, then ranks), and under grouping only the kept groups
 * are candidates. Rows are processed GTK_ROWS at a time so that the serial softmax sums overlap.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "aclnnop/aclnn_moe_gating_top_k.h"
#include "op_math.h"

#define GTK_SCAN_MAX_CANDIDATES 32 /* at most this many candidates: scalar top-k (gtk_scan) */
#define GTK_LANES 8            /* independent running top-2 per group score: ILP, vectorisable */
#define GTK_ROWS OP_SOFTMAX_ROWS /* rows whose scores are computed together (overlapping softmax sums) */
#define GTK_CHUNKS_PER_THREAD 4
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

typedef struct {
    float *norm;          /* [GTK_ROWS][E] the scores (sigmoid / softmax) of a block of rows */
    float *sel;           /* [E] norm + bias */
    uint32_t *hi;         /* [E] order bits of sel */
    uint64_t *keys;       /* [E] full keys (radix path and the masked fallback) */
    uint64_t *gkeys;      /* [G] group keys */
    unsigned char *kept;  /* [G] kept-group flags */
    uint64_t *buf;        /* [max(E, G)] top-k scratch */
    float *yv;            /* [k] gathered weights */
} GatingTopKSlot;

/* carves one slot out of w (NULL: only measures); returns its size in bytes */
static uint64_t gtk_slot(char *w, int64_t e, int64_t groups, int64_t k, GatingTopKSlot *sl)
{
    const int64_t nbuf = e > groups ? e : groups;
    const uint64_t sizes[8] = {(uint64_t)GTK_ROWS * (uint64_t)e * sizeof(float), (uint64_t)e * sizeof(float),
                               (uint64_t)e * sizeof(uint32_t), (uint64_t)e * sizeof(uint64_t),
                               (uint64_t)groups * sizeof(uint64_t), (uint64_t)groups,
                               (uint64_t)nbuf * sizeof(uint64_t), (uint64_t)k * sizeof(float)};
    void **ptrs[8] = {0};
    if (sl) {
        ptrs[0] = (void **)&sl->norm; ptrs[1] = (void **)&sl->sel; ptrs[2] = (void **)&sl->hi;
        ptrs[3] = (void **)&sl->keys; ptrs[4] = (void **)&sl->gkeys; ptrs[5] = (void **)&sl->kept;
        ptrs[6] = (void **)&sl->buf; ptrs[7] = (void **)&sl->yv;
    }
    uint64_t off = 0;
    for (int i = 0; i < 8; i++) {
        if (sl) *ptrs[i] = w + off;
        off += gtk_align(sizes[i]);
    }
    return off;
}

static uint64_t gtk_slot_bytes(int64_t e, int64_t groups, int64_t k) { return gtk_slot(NULL, e, groups, k, NULL); }

/* sel = norm (+ bias) and the order bits of sel */
static void gtk_sel_portable(const float *norm, const float *bias, int64_t e, float *sel, uint32_t *hi)
{
    for (int64_t i = 0; i < e; i++) {
        const float v = bias ? norm[i] + bias[i] : norm[i];
        sel[i] = v;
        hi[i] = op_order_bits(v);
    }
}

#if OP_X86_SIMD
OP_TARGET_AVX512 static void gtk_sel_avx512(const float *norm, const float *bias, int64_t e, float *sel,
                                            uint32_t *hi)
{
    const int64_t e16 = e / 16 * 16;
    for (int64_t i = 0; i < e16; i += 16) {
        __m512 v = _mm512_loadu_ps(norm + i);
        if (bias) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + i));
        _mm512_storeu_ps(sel + i, v);
        /* op_order_bits: -0 -> +0, flip negatives, set the sign bit of positives, NaN -> 0 */
        const __m512i u = _mm512_castps_si512(_mm512_add_ps(v, _mm512_setzero_ps()));
        const __m512i key = _mm512_xor_si512(u, _mm512_or_si512(_mm512_srai_epi32(u, 31),
                                                                 _mm512_set1_epi32((int)0x80000000u)));
        _mm512_storeu_si512((void *)(hi + i), _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), key));
    }
    gtk_sel_portable(norm + e16, bias ? bias + e16 : NULL, e - e16, sel + e16, hi + e16);
}

/* gtk_group_score for per % 16 == 0: 16 running top-2 lanes, merged by a shuffle tree with the same rule */
OP_TARGET_AVX512 static inline float gtk_group_score_avx512(const float *v, int64_t per, int64_t mode)
{
    __m512 t1 = _mm512_set1_ps(-INFINITY), t2 = t1;
    __mmask16 nan = 0;
    for (int64_t j = 0; j < per; j += 16) {
        const __m512 x = _mm512_loadu_ps(v + j);
        nan |= _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
        const __m512 lo = _mm512_min_ps(x, t1); /* x < t1 ? x : t1 */
        t1 = _mm512_max_ps(x, t1);              /* x > t1 ? x : t1 */
        t2 = _mm512_max_ps(lo, t2);
    }
    if (nan) return NAN;
    static const int perms[4][16] = {{8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7},
                                     {4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11},
                                     {2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13},
                                     {1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14}};
    for (int lvl = 0; lvl < 4; lvl++) { /* top-2 of two top-2 pairs */
        const __m512i pm = _mm512_loadu_si512((const void *)perms[lvl]);
        const __m512 b1 = _mm512_permutexvar_ps(pm, t1), b2 = _mm512_permutexvar_ps(pm, t2);
        const __m512 lo = _mm512_min_ps(b1, t1), m2 = _mm512_max_ps(b2, t2);
        t1 = _mm512_max_ps(b1, t1);
        t2 = _mm512_max_ps(lo, m2);
    }
    const float a1 = _mm512_cvtss_f32(t1), a2 = _mm512_cvtss_f32(t2);
    return mode == 0 ? a1 : a1 + a2;
}

OP_TARGET_AVX512 static void gtk_group_keys_avx512(const float *sel, int64_t g, int64_t per, int64_t mode,
                                                   uint64_t *gkeys)
{
    for (int64_t gi = 0; gi < g; gi++) gkeys[gi] = op_key(gtk_group_score_avx512(sel + gi * per, per, mode), gi);
}

/* The top k (<= 16) experts of the ranges [b[r], b[r] + len) into out[0..k), best first, without branches on the
 * data: (1) the k-th largest of the 16 lane-wise maxima of the order bits is a lower bound for the k-th best
 * score (k lanes hold k distinct experts at or above it); (2) only the experts at or above it are kept (usually
 * little more than k); (3) each survivor is placed by its rank among them. Returns 0 when more than
 * GTK_SURVIVORS experts survive (many equal scores): the caller then scans. */
#define GTK_SURVIVORS 32
OP_TARGET_AVX512 static int gtk_topk_avx512(const uint32_t *hi, const int64_t *b, int nr, int64_t len, int64_t k,
                                            uint64_t *out)
{
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512i mx = _mm512_setzero_si512();
    for (int r = 0; r < nr; r++)
        for (int64_t j = 0; j < len; j += 16) {
            const __mmask16 m = len - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (len - j)) - 1u);
            mx = _mm512_max_epu32(mx, _mm512_maskz_loadu_epi32(m, hi + b[r] + j));
        }
    /* thr = the largest lane maximum that at least k lane maxima reach */
    __m512i cnt = _mm512_setzero_si512();
    for (int l = 0; l < 16; l++) {
        const __m512i bl = _mm512_permutexvar_epi32(_mm512_set1_epi32(l), mx);
        cnt = _mm512_mask_add_epi32(cnt, _mm512_cmpge_epu32_mask(bl, mx), cnt, _mm512_set1_epi32(1));
    }
    const uint32_t thr =
        _mm512_reduce_max_epu32(_mm512_maskz_mov_epi32(_mm512_cmpge_epi32_mask(cnt, _mm512_set1_epi32((int)k)), mx));
    uint32_t sidx[GTK_SURVIVORS + 16], shi[GTK_SURVIVORS + 16];
    int ns = 0;
    const __m512i vthr = _mm512_set1_epi32((int)thr);
    for (int r = 0; r < nr; r++)
        for (int64_t j = 0; j < len; j += 16) {
            const __mmask16 m = len - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (len - j)) - 1u);
            const __m512i h = _mm512_maskz_loadu_epi32(m, hi + b[r] + j);
            const __mmask16 keep = _mm512_mask_cmpge_epu32_mask(m, h, vthr);
            const int c = __builtin_popcount((unsigned)keep);
            if (ns + c > GTK_SURVIVORS) return 0;
            /* compress in registers and store whole vectors (a compressing store to memory is slow on Intel) */
            const __m512i idx = _mm512_add_epi32(iota, _mm512_set1_epi32((int)(b[r] + j)));
            _mm512_storeu_si512((void *)(sidx + ns), _mm512_maskz_compress_epi32(keep, idx));
            _mm512_storeu_si512((void *)(shi + ns), _mm512_maskz_compress_epi32(keep, h));
            ns += c;
        }
    /* keys hi << 32 | ~index; each survivor's rank = the number of larger keys (keys are distinct); the k best
     * are scattered to their ranks */
    uint64_t key[GTK_SURVIVORS];
    __m512i z[GTK_SURVIVORS / 8], rank[GTK_SURVIVORS / 8];
    const int nz = (ns + 7) / 8;
    for (int q = 0; q < nz; q++) {
        const __mmask8 m = ns - 8 * q >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << (ns - 8 * q)) - 1u);
        const __m512i hq = _mm512_cvtepu32_epi64(_mm256_maskz_loadu_epi32(m, shi + 8 * q));
        const __m512i iq = _mm512_cvtepu32_epi64(_mm256_maskz_loadu_epi32(m, sidx + 8 * q));
        z[q] = _mm512_maskz_or_epi64(m, _mm512_slli_epi64(hq, 32),
                                     _mm512_sub_epi64(_mm512_set1_epi64(0xFFFFFFFFll), iq));
        _mm512_storeu_si512((void *)(key + 8 * q), z[q]);
        rank[q] = _mm512_setzero_si512();
    }
    const __m512i one = _mm512_set1_epi64(1);
    for (int j = 0; j < ns; j++) {
        const __m512i kj = _mm512_set1_epi64((long long)key[j]);
        for (int q = 0; q < nz; q++)
            rank[q] = _mm512_mask_add_epi64(rank[q], _mm512_cmpgt_epu64_mask(kj, z[q]), rank[q], one);
    }
    for (int q = 0; q < nz; q++) {
        const __mmask8 m = _mm512_cmplt_epi64_mask(rank[q], _mm512_set1_epi64(k)) &
                           (ns - 8 * q >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << (ns - 8 * q)) - 1u));
        _mm512_mask_i64scatter_epi64((void *)out, m, rank[q], z[q], 8);
    }
    return 1;
}
#endif

static void gtk_sig_lookup_portable(const uint16_t *x, int64_t e, const float *lut, float *norm)
{
    for (int64_t i = 0; i < e; i++) norm[i] = lut[x[i]];
}

#if OP_X86_SIMD
OP_TARGET_AVX512 static void gtk_sig_lookup_avx512(const uint16_t *x, int64_t e, const float *lut, float *norm)
{
    int64_t i = 0;
    for (; i + 16 <= e; i += 16) {
        const __m512i h = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(x + i)));
        _mm512_storeu_ps(norm + i, _mm512_i32gather_ps(h, lut, 4));
    }
    gtk_sig_lookup_portable(x + i, e - i, lut, norm + i);
}
#endif

/* ---- selection ---- */

/* group score from the scores of one group: max (mode 0) or top1 + top2 (mode 1), NaN if any score is NaN (as
 * numpy amax / partition propagate it in the golden). GTK_LANES running top-2 pairs, merged at the end: the top-2
 * of a multiset does not depend on the order it is visited in (signed zeros aside, which the keys equate). */
static float gtk_group_score(const float *v, int64_t per, int64_t mode)
{
    float t1[GTK_LANES], t2[GTK_LANES];
    int nan = 0;
    for (int l = 0; l < GTK_LANES; l++) t1[l] = t2[l] = -INFINITY;
    int64_t j = 0;
    for (; j + GTK_LANES <= per; j += GTK_LANES)
        for (int l = 0; l < GTK_LANES; l++) {
            const float x = v[j + l];
            nan |= x != x;
            const float lo = x < t1[l] ? x : t1[l];
            t1[l] = x > t1[l] ? x : t1[l];
            t2[l] = lo > t2[l] ? lo : t2[l];
        }
    for (int l = 0; j < per; j++, l++) {
        const float x = v[j];
        nan |= x != x;
        const float lo = x < t1[l] ? x : t1[l];
        t1[l] = x > t1[l] ? x : t1[l];
        t2[l] = lo > t2[l] ? lo : t2[l];
    }
    float a1 = t1[0], a2 = t2[0];
    for (int l = 1; l < GTK_LANES; l++) { /* top-2 of two top-2 pairs */
        const float lo = t1[l] < a1 ? t1[l] : a1;
        const float m2 = t2[l] > a2 ? t2[l] : a2;
        a1 = t1[l] > a1 ? t1[l] : a1;
        a2 = lo > m2 ? lo : m2;
    }
    if (nan) return NAN;
    return mode == 0 ? a1 : a1 + a2;
}

/* inserts key v into buf[0..n) (sorted descending, room for one more) */
static inline void gtk_insert(uint64_t *buf, int64_t n, uint64_t v)
{
    int64_t j = n;
    while (j > 0 && buf[j - 1] < v) {
        buf[j] = buf[j - 1];
        j--;
    }
    buf[j] = v;
}

/* Offers experts [b, e) to the running top-k in buf[0..*m) (sorted descending). A key is built only for an
 * expert whose order bits reach those of the current k-th: the others cannot enter. */
static void gtk_scan(const uint32_t *hi, int64_t b, int64_t e, int64_t k, uint64_t *buf, int64_t *m)
{
    int64_t n = *m, i = b;
    for (; i < e && n < k; i++, n++) gtk_insert(buf, n, op_key_of(hi[i], i));
    if (n == k) {
        uint64_t thr = buf[k - 1];
        uint32_t thr_hi = (uint32_t)(thr >> 32);
        for (; i < e; i++) {
            if (hi[i] < thr_hi) continue;
            const uint64_t v = op_key_of(hi[i], i);
            if (v <= thr) continue;
            gtk_insert(buf, k - 1, v); /* the current k-th drops out */
            thr = buf[k - 1];
            thr_hi = (uint32_t)(thr >> 32);
        }
    }
    *m = n;
}

/* ---- kernel ---- */
typedef struct {
    const GatingTopKParams *p;
    const aclTensor *x, *y, *idx, *out;
    const float *bias; /* NULL when absent */
    const float *sig_lut; /* sigmoid by table (16-bit x with contiguous rows), else NULL */
    char *slots;
    uint64_t slot_bytes;
    int64_t nslots;
    int avx512;
} GatingTopKCtx;

/* the top-k experts into s->keys[0..k): full keys of every expert, dropped groups at -inf, then op_topk_desc
 * (large k, or a selection that reaches -inf / NaN scores, where dropped experts tie with kept ones) */
static void gtk_select_full(const GatingTopKParams *p, const GatingTopKSlot *s)
{
    const int64_t e = p->experts;
    for (int64_t i = 0; i < e; i++) s->keys[i] = op_key_of(s->hi[i], i);
    if (p->grouped) {
        const int64_t per = e / p->group_count;
        for (int64_t gi = 0; gi < p->group_count; gi++)
            if (!s->kept[gi]) /* experts of dropped groups score -inf (the golden's mask) */
                for (int64_t j = gi * per; j < (gi + 1) * per; j++) s->keys[j] = op_key(-INFINITY, j);
    }
    op_topk_desc(s->keys, e, p->k, s->buf);
}

/* 1. the scores of rows [r0, r0 + n), n <= GTK_ROWS, into norm + i*E */
static void gtk_scores(const GatingTopKCtx *c, int64_t r0, int n, float *norm)
{
    const int64_t e = c->p->experts;
    float *v[GTK_ROWS] = {0};
    for (int i = 0; i < n; i++) {
        v[i] = norm + i * e;
        if (c->sig_lut) {
            const uint16_t *x16 = (const uint16_t *)op_ptr2(c->x, r0 + i, 0);
#if OP_X86_SIMD
            if (c->avx512) gtk_sig_lookup_avx512(x16, e, c->sig_lut, v[i]);
            else
#endif
                gtk_sig_lookup_portable(x16, e, c->sig_lut, v[i]);
            continue;
        }
        op_load_row_f32(c->x, r0 + i, e, v[i]);
        if (c->p->norm_type == 1) op_sigmoid_f32(v[i], e);
        else op_softmax_exp_f32(v[i], e);
    }
    if (c->p->norm_type == 0) op_softmax_finish(v, n, e);
}

/* 2-4: selection and outputs of one row from its scores */
static void gtk_row(const GatingTopKCtx *c, int64_t row, const float *norm, const GatingTopKSlot *s)
{
    const GatingTopKParams *p = c->p;
    const int64_t e = p->experts, k = p->k;
#if OP_X86_SIMD
    if (c->avx512) gtk_sel_avx512(norm, c->bias, e, s->sel, s->hi);
    else
#endif
        gtk_sel_portable(norm, c->bias, e, s->sel, s->hi);

    /* 2. groups: keep the k_group best */
    if (p->grouped) {
        const int64_t g = p->group_count, per = e / g;
#if OP_X86_SIMD
        if (c->avx512 && per % 16 == 0) gtk_group_keys_avx512(s->sel, g, per, p->group_select_mode, s->gkeys);
        else
#endif
            for (int64_t gi = 0; gi < g; gi++)
                s->gkeys[gi] = op_key(gtk_group_score(s->sel + gi * per, per, p->group_select_mode), gi);
        op_topk_desc(s->gkeys, g, p->k_group, s->buf);
        memset(s->kept, 0, (size_t)g);
        for (int64_t j = 0; j < p->k_group; j++) s->kept[op_key_index(s->gkeys[j])] = 1;
    }

    /* 3. top-k experts into keys[0..k) */
    const uint64_t *top = s->keys;
    if (k > OP_TOPK_INSERTION_MAX_K) {
        gtk_select_full(p, s);
    } else {
        /* candidates: every expert, or the experts of the kept groups (ascending) */
        int64_t starts[OP_MAX_EXPERTS / 32], len = e; /* grouped: at most 2048 / 32 groups */
        int nr = 1;
        starts[0] = 0;
        if (p->grouped) {
            len = e / p->group_count;
            nr = 0;
            for (int64_t gi = 0; gi < p->group_count; gi++)
                if (s->kept[gi]) starts[nr++] = gi * len;
        }
        int done = 0;
#if OP_X86_SIMD
        /* (few candidates: the scan is cheaper than the vector threshold search's fixed cost, which had been
         * half of a Mixtral row, E = 8) */
        if (c->avx512 && k <= 16 && len * nr > GTK_SCAN_MAX_CANDIDATES)
            done = gtk_topk_avx512(s->hi, starts, nr, len, k, s->buf);
#endif
        if (!done) {
            int64_t m = 0;
            for (int r = 0; r < nr; r++) gtk_scan(s->hi, starts[r], starts[r] + len, k, s->buf, &m);
        }
        top = s->buf;
        /* grouped: a k-th score of -inf or NaN ties with (or ranks below) the masked experts: rank them all */
        if (p->grouped && (uint32_t)(s->buf[k - 1] >> 32) <= op_order_bits(-INFINITY)) {
            gtk_select_full(p, s);
            top = s->keys;
        }
    }

    /* 4. weights from the pre-bias norm; renormalise for sigmoid only; scale; store */
    float *yv = s->yv;
    for (int64_t j = 0; j < k; j++) yv[j] = norm[op_key_index(top[j])];
    if (p->norm_type == 1) {
        float sum = 0.0f;
        for (int64_t j = 0; j < k; j++) sum += yv[j];
        sum += p->eps;
        for (int64_t j = 0; j < k; j++) yv[j] = yv[j] / sum;
    }
    const float rsf = p->routed_scaling_factor;
    const aclDataType ydt = c->y->dtype;
    char *yp = op_ptr2(c->y, row, 0), *ip = op_ptr2(c->idx, row, 0);
    const int64_t ystep = c->y->strides[1] * op_elem_size(c->y), istep = c->idx->strides[1] * (int64_t)sizeof(int32_t);
    for (int64_t j = 0; j < k; j++) {
        op_store_f(ydt, yp + j * ystep, yv[j] * rsf);
        *(int32_t *)(ip + j * istep) = (int32_t)op_key_index(top[j]);
    }
    if (p->out_flag) op_store_row_f32(c->out, row, e, norm);
}

static void gtk_chunk(void *vctx, int64_t begin, int64_t end)
{
    const GatingTopKCtx *c = (const GatingTopKCtx *)vctx;
    const GatingTopKParams *p = c->p;
    for (int64_t sidx = begin; sidx < end; sidx++) {
        GatingTopKSlot s;
        gtk_slot(c->slots + (uint64_t)sidx * c->slot_bytes, p->experts, p->group_count, p->k, &s);
        const int64_t r0 = p->rows * sidx / c->nslots, r1 = p->rows * (sidx + 1) / c->nslots;
        for (int64_t r = r0; r < r1; r += GTK_ROWS) {
            const int n = (int)(r1 - r < GTK_ROWS ? r1 - r : GTK_ROWS);
            gtk_scores(c, r, n, s.norm);
            for (int i = 0; i < n; i++) gtk_row(c, r + i, s.norm + i * p->experts, &s);
        }
    }
}

static aclnnStatus gtk_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    (void)wsSize; /* scratch is sized by ex->workspace_size (see op_common.h), never by the caller's claim */
    const GatingTopKParams *p = (const GatingTopKParams *)ex->params;
    if (p->rows == 0) return ACLNN_SUCCESS;
    GatingTopKCtx c;
    c.p = p;
    c.x = ex->inputs[0];
    c.y = ex->outputs[0];
    c.idx = ex->outputs[1];
    c.out = ex->outputs[2];
    c.avx512 = op_cpu_avx512();
    c.sig_lut = p->norm_type == 1 && c.x->strides[1] == 1 ? op_sigmoid_table(c.x->dtype) : NULL;

    /* align the workspace base (phase 1 asked for GTK_ALIGN spare bytes) */
    uintptr_t base = ((uintptr_t)ws + GTK_ALIGN - 1) & ~(uintptr_t)(GTK_ALIGN - 1);
    uint64_t skip = ws ? (uint64_t)(base - (uintptr_t)ws) : 0;
    uint64_t bias_bytes = gtk_bias_bytes(p->experts);
    c.slot_bytes = gtk_slot_bytes(p->experts, p->group_count, p->k);
    float *bias = (float *)base;
    const aclTensor *bt = ex->inputs[1];
    if (bt) {
        const char *b0 = op_ptr2(bt, 0, 0);
        const int64_t step = bt->strides[0] * op_elem_size(bt);
        for (int64_t i = 0; i < p->experts; i++) bias[i] = op_load_f(bt->dtype, b0 + i * step);
        c.bias = bias;
    } else {
        c.bias = NULL;
    }
    c.slots = (char *)base + bias_bytes;
    int64_t avail = (int64_t)((ex->workspace_size - skip - bias_bytes) / c.slot_bytes);
    /* OP_PARALLEL_MIN_WORK elements per chunk at least, at most one chunk per scratch slot */
    int64_t want = p->rows * p->experts / OP_PARALLEL_MIN_WORK;
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
    enum { X, BIAS, Y_OUT, IDX_OUT, OUT_OUT };
    /* the official op_api also requires outOut, even when outFlag is false */
    static const OpParamSpec params[] = {
        [X] = {"x", OP_IN, OP_FLOAT_TYPES, OP_NO_REF, OP_RANK(2)},
        [BIAS] = {"biasOptional", OP_IN | OP_OPTIONAL, OP_FLOAT_TYPES, X, OP_RANK(1)},
        [Y_OUT] = {"yOut", OP_OUT, OP_FLOAT_TYPES, X, OP_RANK(2)},
        [IDX_OUT] = {"expertIdxOut", OP_OUT, OP_INT32_TYPE, OP_NO_REF, OP_RANK(2)},
        [OUT_OUT] = {"outOut", OP_OUT, OP_FLOAT32_TYPE, OP_NO_REF, OP_RANK(2)},
    };
    static const OpSpec op = OP_SPEC("aclnnMoeGatingTopK", ACLNN_ERR_INNER_TILING_ERROR, params);
    const void *h[] = {x, biasOptional, yOut, expertIdxOut, outOut};
    OP_TRY(op_check_params(&op, h, 0));

    /* 561002: shapes (the NPU tiling's CheckInputShape / CheckOutShape) */
    const int64_t rows = x->dims[0], e = x->dims[1];
    if (biasOptional) {
        if (biasOptional->dims[0] != e)
            return op_fail_shape(&op, "biasOptional dim 0 (%lld) must equal the expert count %lld of x",
                                  (long long)biasOptional->dims[0], (long long)e);
    }
    if (k > e) return op_fail_shape(&op, "k (%lld) must not exceed expert count %lld", (long long)k, (long long)e);
    {
        const int64_t yshape[2] = {rows, k};
        OP_TRY(op_check_shape_of(&op, "yOut", yOut, 2, yshape));
        OP_TRY(op_check_shape_of(&op, "expertIdxOut", expertIdxOut, 2, yshape));
    }
    if (outFlag) { /* like the NPU tiling, outOut's extents are only checked when it is written */
        const int64_t oshape[2] = {rows, e};
        OP_TRY(op_check_shape_of(&op, "outOut", outOut, 2, oshape));
    }

    /* 561002: attributes (the NPU tiling's CheckAttr, in its order) */
    if (e > OP_MAX_EXPERTS)
        return op_fail_shape(&op, "expert count %lld must not be greater than %d", (long long)e, OP_MAX_EXPERTS);
    if (k <= 0) return op_fail_shape(&op, "k (%lld) must be greater than 0", (long long)k);
    if (kGroup <= 0) return op_fail_shape(&op, "kGroup (%lld) must be greater than 0", (long long)kGroup);
    if (kGroup > groupCount)
        return op_fail_shape(&op, "kGroup (%lld) must not exceed groupCount (%lld)", (long long)kGroup,
                              (long long)groupCount);
    if (groupCount <= 0)
        return op_fail_shape(&op, "groupCount (%lld) must be greater than 0", (long long)groupCount);
    if (normType != 0 && normType != 1)
        return op_fail_shape(&op, "normType (%lld) must be 0 (softmax) or 1 (sigmoid)", (long long)normType);
    if (groupSelectMode != 0 && groupSelectMode != 1)
        return op_fail_shape(&op, "groupSelectMode (%lld) must be 0 (max) or 1 (sum of top 2)",
                              (long long)groupSelectMode);
    if (renorm != 0) return op_fail_shape(&op, "renorm (%lld) is not supported, only 0", (long long)renorm);
    if (e % groupCount != 0)
        return op_fail_shape(&op, "expert count %lld must be divisible by groupCount (%lld)", (long long)e,
                              (long long)groupCount);
    const int64_t per = e / groupCount;
    if (per < 1)
        return op_fail_shape(&op, "experts per group (%lld / %lld) must be at least 1", (long long)e,
                              (long long)groupCount);
    if (groupSelectMode == 1 && per < 2)
        return op_fail_shape(&op, "groupSelectMode 1 needs at least 2 experts per group, got %lld", (long long)per);
    if (k > kGroup * per)
        return op_fail_shape(&op, "k (%lld) must not exceed kGroup * experts per group (%lld * %lld)",
                              (long long)k, (long long)kGroup, (long long)per);
    const int grouped = groupCount != 1 && groupCount != e && kGroup != groupCount;
    if (grouped) {
        int64_t align = (per + 31) / 32 * 32;
        if (groupCount * align > OP_MAX_EXPERTS)
            return op_fail_shape(&op,
                                  "groupCount * align32(experts per group) = %lld * %lld must not be greater than %d",
                                  (long long)groupCount, (long long)align, OP_MAX_EXPERTS);
    }
    int64_t elems;
    if (!op_mul_ok(rows, e, &elems))
        return op_fail_shape(&op, "x has too many elements (%lld x %lld)", (long long)rows, (long long)e);

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
        /* one scratch slot per chunk; GTK_CHUNKS_PER_THREAD chunks per thread balance a busy or noisy machine */
        int64_t slots = (int64_t)acl_host_num_threads() * GTK_CHUNKS_PER_THREAD;
        if (slots < 1) slots = 1;
        if (slots > rows) slots = rows;
        ws = GTK_ALIGN + gtk_bias_bytes(e) + (uint64_t)slots * gtk_slot_bytes(e, groupCount, k);
    }
    return op_create_executor(&op, h, gtk_kernel, &p, sizeof p, ws, workspaceSize, executor);
}

aclnnStatus aclnnMoeGatingTopK(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor, aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeGatingTopK");
}
