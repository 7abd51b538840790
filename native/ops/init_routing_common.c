/* Shared parts of the init-routing operators; see init_routing_common.h. */
/* the quantisation below must round every operation as written (bit-exact references): never fuse into an FMA */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include "init_routing_common.h"

#include <math.h>
#include <stdlib.h>

/* ids the V1 kernels sort exactly (fp32 keys on the NPU) */
#define IRC_V1_EXPERT_BOUND (1LL << 24)

/* ---------------------------------------------------------------- V1 layout */

uint64_t irc_v1_ws_bytes(int64_t nk)
{
    const uint64_t n = nk > 0 ? (uint64_t)nk : 0u;
    return n * 5u * sizeof(int64_t) + (n + 63u) / 64u * sizeof(uint64_t);
}

aclnnStatus irc_v1_route(const char *api, const aclTensor *row_idx, const aclTensor *expert_idx, void *ws,
                         const aclTensor *expanded_row_idx_out, const aclTensor *expanded_expert_idx_out,
                         const int64_t **src_out)
{
    const int64_t nk = acl_host_numel(expert_idx), k = expert_idx->dims[1];
    int64_t *keys = ws, *rows = keys + nk, *order = rows + nk, *scratch = order + nk;
    uint64_t *seen = (uint64_t *)(scratch + 2 * nk);
    op_read_all_i64(expert_idx, keys);
    op_read_all_i64(row_idx, rows);
    int64_t kmin = keys[0], kmax = keys[0];
    for (int64_t q = 0; q < nk; q++) {
        const int64_t e = keys[q];
        if (e <= -IRC_V1_EXPERT_BOUND || e > IRC_V1_EXPERT_BOUND)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                                  "%s: expertIdx[%lld, %lld] = %lld is outside (-2^24, 2^24], the range in which the "
                                  "expert ids sort exactly", api, (long long)(q / k), (long long)(q % k), (long long)e);
        if (e < kmin) kmin = e;
        if (e > kmax) kmax = e;
    }
    memset(seen, 0, (size_t)((nk + 63) / 64) * sizeof(uint64_t));
    for (int64_t q = 0; q < nk; q++) {
        const int64_t r = rows[q];
        if (r < 0 || r >= nk)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: rowIdx[%lld, %lld] = %lld is outside [0, %lld) (N*K)",
                                  api, (long long)(q / k), (long long)(q % k), (long long)r, (long long)nk);
        const uint64_t bit = 1ull << (r & 63);
        if (seen[r >> 6] & bit)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                                  "%s: rowIdx[%lld, %lld] = %lld occurs more than once; rowIdx must be a permutation "
                                  "of [0, %lld)", api, (long long)(q / k), (long long)(q % k), (long long)r,
                                  (long long)nk);
        seen[r >> 6] |= bit;
    }
    for (int64_t q = 0; q < nk; q++) keys[q] -= kmin;
    op_stable_argsort_i64(keys, nk, kmax - kmin + 1, order, scratch);
    /* index outputs serially (the rowIdx scatter would false-share between threads); scratch is free now.
     * order[j] is replaced by output row j's token: the gather then reads it sequentially, instead of missing the
     * caches on a random rows[order[j]] per 14 KB row (which also delayed its prefetch of the next row). */
    const int64_t n_tok = expert_idx->dims[0];
    int64_t *eexp = scratch, *erow = scratch + nk;
    for (int64_t j = 0; j < nk; j++) {
        const int64_t p = order[j];
        eexp[j] = keys[p] + kmin;
        erow[rows[p]] = j;
        order[j] = rows[p] % n_tok;
    }
    op_write_all_i64(expanded_expert_idx_out, eexp);
    op_write_all_i64(expanded_row_idx_out, erow);
    *src_out = order;
    return ACLNN_SUCCESS;
}

/* ---------------------------------------------------------------- V2 layout */

uint64_t irc_sort_ws_bytes(int64_t nk, int64_t range)
{
    const uint64_t n = nk > 0 ? (uint64_t)nk : 0u, r = range > 0 ? (uint64_t)range : 0u;
    return (5u * n + 2u * r) * sizeof(int64_t); /* ids, sort keys, order, argsort scratch (2n); count, seg */
}

aclnnStatus irc_sort(const char *api, const aclTensor *expert_idx, const IrcSortSpec *sp, void *ws, IrcSorted *s)
{
    const int64_t nk = sp->nk, k = sp->k, range = sp->bounded ? sp->end - sp->start : 0;
    int64_t *ids = ws, *sk = ids + nk, *order = sk + nk, *scratch = order + nk;
    s->keys = ids;
    s->order = order;
    s->tmp = sk;
    s->count = sp->bounded ? scratch + 2 * nk : NULL;
    s->seg = sp->bounded ? s->count + range : NULL;
    s->avail = 0;
    s->range = range;
    s->nk = nk;
    if (nk == 0) {
        for (int64_t e = 0; e < range; e++) s->count[e] = s->seg[e] = 0;
        return ACLNN_SUCCESS;
    }
    op_read_all_i64(expert_idx, ids);
    int64_t max_id = 0;
    for (int64_t p = 0; p < nk; p++) {
        const int64_t v = ids[p];
        if (v < 0 && !sp->bounded) /* no expertNum bounds the ids: the only rule is that they are not negative */
            return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: expertIdx[%lld, %lld] = %lld is negative; expert ids "
                                  "start at 0", api, (long long)(p / k), (long long)(p % k), (long long)v);
        if (v < 0 || (sp->bounded && v >= sp->id_limit))
            return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: expertIdx[%lld, %lld] = %lld is outside [0, %lld) "
                                  "(expertNum)", api, (long long)(p / k), (long long)(p % k), (long long)v,
                                  (long long)sp->id_limit);
        if (v > max_id) max_id = v;
    }
    if (!sp->bounded) {
        op_stable_argsort_i64(ids, nk, max_id + 1, order, scratch);
        s->avail = nk;
        return ACLNN_SUCCESS;
    }
    /* ids of the range sort by id; every other id goes to one bucket after them (the NPU sorts ids below the range
     * as INT32_MAX and those above by value: both land after the range, where no output reads them) */
    for (int64_t e = 0; e < range; e++) s->count[e] = 0;
    for (int64_t p = 0; p < nk; p++) {
        const int64_t v = ids[p];
        const int in = v >= sp->start && v < sp->end;
        sk[p] = in ? v - sp->start : range;
        if (in) s->count[v - sp->start]++;
    }
    op_stable_argsort_i64(sk, nk, range + 1, order, scratch);
    int64_t acc = 0;
    for (int64_t e = 0; e < range; e++) {
        s->seg[e] = acc;
        acc += s->count[e];
    }
    s->avail = acc;
    return ACLNN_SUCCESS;
}

void irc_write_row_idx(const aclTensor *out, IrcSorted *s, int scatter, int64_t capacity)
{
    const int64_t nk = s->nk;
    int64_t *idx = s->tmp;
    for (int64_t p = 0; p < nk; p++) idx[p] = -1;
    /* positions are bounds-checked: an output written before may overlap a (wrongly placed) workspace */
    if (capacity > 0 && s->count) {
        /* expert start + e owns the sorted positions [seg[e], seg[e] + count[e]); the first C are kept */
        for (int64_t e = 0; e < s->range; e++)
            for (int64_t pos = 0; pos < s->count[e] && pos < capacity; pos++) {
                const int64_t j = s->seg[e] + pos;
                if ((uint64_t)j < (uint64_t)nk && (uint64_t)s->order[j] < (uint64_t)nk)
                    idx[s->order[j]] = e * capacity + pos;
            }
    } else if (scatter) {
        for (int64_t j = 0; j < s->avail && j < nk; j++) idx[j] = s->order[j];
    } else {
        for (int64_t j = 0; j < s->avail && j < nk; j++)
            if ((uint64_t)s->order[j] < (uint64_t)nk) idx[s->order[j]] = j;
    }
    op_write_all_i64(out, idx);
}

/* ---------------------------------------------------------------- row writers */

/* token row feeding output row r, or -1; *pos receives the flat position (V2 layout) */
static int64_t irc_row_token(const IrcRows *w, int64_t r, int64_t *pos)
{
    *pos = -1;
    if (w->by_token) return r;
    if (w->v1_src) {
        const int64_t t = w->v1_src[r]; /* bounded: see irc_row_pos */
        return (uint64_t)t < (uint64_t)w->x->dims[0] ? t : -1;
    }
    const int64_t p = irc_row_pos(w->sorted, w->capacity, w->rows_valid, r);
    *pos = p;
    return p < 0 ? -1 : p / w->k;
}

static int64_t irc_copy_src(const void *ctx, int64_t r)
{
    int64_t pos;
    return irc_row_token(ctx, r, &pos);
}

/* d exactly, rounded to fp32 with round-to-odd: rounding that to fp16 then equals rounding d to fp16 directly
 * (24 >= 11 + 2 bits), which a plain double -> float -> half would not always give */
static inline float irc_f64_to_f32_odd(double d)
{
    float f = (float)d;
    if ((double)f != d && !(host_f32_to_bits(f) & 1u)) f = nextafterf(f, d > (double)f ? INFINITY : -INFINITY);
    return f;
}
static inline float irc_r16(float v) { return host_f16_to_f32(host_f32_to_f16(v)); }

static void irc_store_i8(const aclTensor *out, int64_t r, int64_t h, const int8_t *q)
{
    int8_t *d = (int8_t *)op_ptr2(out, r, 0);
    const int64_t s = op_row_stride(out);
    if (s == 1) {
        memcpy(d, q, (size_t)h);
        return;
    }
    for (int64_t j = 0; j < h; j++) d[j * s] = q[j];
}

/* row r of an int8 or float x as fp32 */
static void irc_load_row(const aclTensor *x, int64_t row, int64_t h, float *dst)
{
    if (x->dtype != ACL_INT8) {
        op_load_row_f32(x, row, h, dst);
        return;
    }
    const int8_t *p = (const int8_t *)op_ptr2(x, row, 0);
    const int64_t s = op_row_stride(x);
    for (int64_t j = 0; j < h; j++) dst[j] = (float)p[j * s];
}

/* ---- the quantising row loops, vectorised (AVX2 + F16C) with portable twins giving the same bits ----
 * Each takes the row as fp32 in buf[0..h) and writes int8 to q; the SIMD versions handle a multiple of 8 columns and
 * return how many, the portable loop finishes the tail (and runs alone on other CPUs). */
static void irc_q_static_f16(const float *buf, int64_t j, int64_t h, float s16, float o16, int8_t *q)
{
    for (; j < h; j++) {
        const float m = irc_r16(irc_r16(buf[j]) * s16); /* exact product, one rounding */
        const float a = irc_r16(irc_f64_to_f32_odd((double)m + (double)o16));
        q[j] = irc_sat_i8(nearbyintf(a));
    }
}
static void irc_q_static_f32(const float *buf, int64_t j, int64_t h, float scale, float offset, int8_t *q)
{
    for (; j < h; j++) {
        float v = buf[j] * scale;
        v = v + offset;
        q[j] = irc_sat_i8(nearbyintf(v));
    }
}
static void irc_q_dynamic(const float *buf, int64_t j, int64_t h, float s, int away, int8_t *q)
{
    if (!away)
        for (; j < h; j++) q[j] = irc_sat_i8(nearbyintf(buf[j] / s));
    else
        for (; j < h; j++) q[j] = irc_sat_i8(roundf(buf[j] / s));
}
static float irc_absmax(const float *buf, int64_t j, int64_t h, float m)
{
    for (; j < h; j++) {
        const float a = fabsf(buf[j]);
        if (a > m) m = a;
    }
    return m;
}

#if OP_X86_SIMD
/* irc_sat_i8 of 8 rounded lanes, stored as 8 bytes: NaN -> 0, clamped to [-128, 127] */
OP_TARGET_AVX2 static inline void irc8_store_i8(int8_t *q, __m256 v)
{
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-128.0f)), _mm256_set1_ps(127.0f));
    const __m256i i = _mm256_cvtps_epi32(v); /* integral already: exact */
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
    _mm_storel_epi64((__m128i *)q, _mm_packs_epi16(w, w));
}
#define IRC8_RINT(v) _mm256_round_ps((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
OP_TARGET_AVX2 static inline __m256 irc8_r16(__m256 v)
{
    return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
/* m + o rounded to fp32 with round-to-odd (as irc_f64_to_f32_odd of the exact double sum): the RNE sum and its
 * exact error (TwoSum: m, o are fp16 values, so nothing overflows); an inexact even result moves one ulp toward the
 * exact value, which makes it the odd one of the two fp32 neighbours. A NaN error (infinite operands) is exact. */
OP_TARGET_AVX2 static inline __m256 irc8_add_odd(__m256 a, __m256 b)
{
    const __m256 s = _mm256_add_ps(a, b);
    const __m256 bb = _mm256_sub_ps(s, a);
    const __m256 err = _mm256_add_ps(_mm256_sub_ps(a, _mm256_sub_ps(s, bb)), _mm256_sub_ps(b, bb));
    const __m256i si = _mm256_castps_si256(s);
    const __m256i inexact = _mm256_castps_si256(_mm256_cmp_ps(err, _mm256_setzero_ps(), _CMP_NEQ_OQ));
    const __m256i even = _mm256_cmpeq_epi32(_mm256_and_si256(si, _mm256_set1_epi32(1)), _mm256_setzero_si256());
    /* +1 (away from zero) when the error has the sign of s, else -1 */
    const __m256i opp = _mm256_srai_epi32(_mm256_xor_si256(si, _mm256_castps_si256(err)), 31); /* 0 or -1 */
    const __m256i delta = _mm256_or_si256(opp, _mm256_set1_epi32(1));                          /* 1 or -1 */
    return _mm256_castsi256_ps(_mm256_add_epi32(si, _mm256_and_si256(delta, _mm256_and_si256(inexact, even))));
}
OP_TARGET_AVX2 static int64_t irc_q_static_f16_avx2(const float *buf, int64_t h, float s16, float o16, int8_t *q)
{
    const __m256 vs = _mm256_set1_ps(s16), vo = _mm256_set1_ps(o16);
    int64_t j = 0;
    for (; j + 8 <= h; j += 8) {
        const __m256 m = irc8_r16(_mm256_mul_ps(irc8_r16(_mm256_loadu_ps(buf + j)), vs));
        irc8_store_i8(q + j, IRC8_RINT(irc8_r16(irc8_add_odd(m, vo))));
    }
    return j;
}
OP_TARGET_AVX2 static int64_t irc_q_static_f32_avx2(const float *buf, int64_t h, float scale, float offset, int8_t *q)
{
    const __m256 vs = _mm256_set1_ps(scale), vo = _mm256_set1_ps(offset);
    int64_t j = 0;
    for (; j + 8 <= h; j += 8)
        irc8_store_i8(q + j, IRC8_RINT(_mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(buf + j), vs), vo)));
    return j;
}
OP_TARGET_AVX2 static int64_t irc_q_dynamic_avx2(const float *buf, int64_t h, float s, int away, int8_t *q)
{
    const __m256 vs = _mm256_set1_ps(s);
    int64_t j = 0;
    if (!away) {
        for (; j + 8 <= h; j += 8) irc8_store_i8(q + j, IRC8_RINT(_mm256_div_ps(_mm256_loadu_ps(buf + j), vs)));
        return j;
    }
    /* roundf: ties away from zero = trunc, plus sign(v) where |v - trunc(v)| >= 0.5 (v - trunc(v) is exact) */
    const __m256 sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    for (; j + 8 <= h; j += 8) {
        const __m256 v = _mm256_div_ps(_mm256_loadu_ps(buf + j), vs);
        const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        const __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
        const __m256 up = _mm256_and_ps(_mm256_cmp_ps(frac, half, _CMP_GE_OQ), _mm256_or_ps(one, _mm256_and_ps(sign, v)));
        irc8_store_i8(q + j, _mm256_add_ps(t, up));
    }
    return j;
}
OP_TARGET_AVX2 static int64_t irc_absmax_avx2(const float *buf, int64_t h, float *m)
{
    /* max is exact and order-free; max_ps(a, acc) keeps acc where a is NaN, as the scalar `a > m` test does */
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 acc = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= h; j += 8) acc = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(buf + j)), acc);
    float lanes[8];
    _mm256_storeu_ps(lanes, acc);
    for (int i = 0; i < 8; i++)
        if (lanes[i] > *m) *m = lanes[i];
    return j;
}
OP_TARGET_AVX2 static void irc_mul_avx2(float *buf, const float *s, int64_t h)
{
    int64_t j = 0;
    for (; j + 8 <= h; j += 8)
        _mm256_storeu_ps(buf + j, _mm256_mul_ps(_mm256_loadu_ps(buf + j), _mm256_loadu_ps(s + j)));
    for (; j < h; j++) buf[j] = buf[j] * s[j];
}
#endif

static void irc_quant_static_f16(const float *buf, int64_t h, float s16, float o16, int8_t *q)
{
    int64_t j = 0;
#if OP_X86_SIMD
    if (op_cpu_avx2()) j = irc_q_static_f16_avx2(buf, h, s16, o16, q);
#endif
    irc_q_static_f16(buf, j, h, s16, o16, q);
}
static void irc_quant_static_f32(const float *buf, int64_t h, float scale, float offset, int8_t *q)
{
    int64_t j = 0;
#if OP_X86_SIMD
    if (op_cpu_avx2()) j = irc_q_static_f32_avx2(buf, h, scale, offset, q);
#endif
    irc_q_static_f32(buf, j, h, scale, offset, q);
}
static void irc_quant_dynamic(const float *buf, int64_t h, float s, int away, int8_t *q)
{
    int64_t j = 0;
#if OP_X86_SIMD
    if (op_cpu_avx2()) j = irc_q_dynamic_avx2(buf, h, s, away, q);
#endif
    irc_q_dynamic(buf, j, h, s, away, q);
}
static float irc_row_absmax(const float *buf, int64_t h)
{
    float m = 0.0f;
    int64_t j = 0;
#if OP_X86_SIMD
    if (op_cpu_avx2()) j = irc_absmax_avx2(buf, h, &m);
#endif
    return irc_absmax(buf, j, h, m);
}
/* buf[j] *= smooth row srow, j < h */
static void irc_smooth_row(float *buf, const aclTensor *smooth, int64_t srow, int64_t h)
{
    if (smooth->dtype == ACL_FLOAT && op_row_stride(smooth) == 1) {
        const float *s = (const float *)op_ptr2(smooth, srow, 0);
#if OP_X86_SIMD
        if (op_cpu_avx2()) {
            irc_mul_avx2(buf, s, h);
            return;
        }
#endif
        for (int64_t j = 0; j < h; j++) buf[j] = buf[j] * s[j];
        return;
    }
    for (int64_t j = 0; j < h; j++) buf[j] = buf[j] * op_load_f(ACL_FLOAT, op_ptr2(smooth, srow, j));
}

typedef struct {
    const IrcRows *w;
    float s16, o16; /* static fp16: the attributes rounded to fp16, as the kernel's static_cast<half> */
    int failed;     /* a worker could not get its row buffer: the call fails instead of leaving rows unwritten */
} IrcRowsCtx;

static void irc_rows_range(void *vctx, int64_t begin, int64_t end)
{
    IrcRowsCtx *c = vctx;
    const IrcRows *w = c->w;
    const int64_t h = w->h;
    float *buf = malloc((size_t)(h > 0 ? h : 1) * (sizeof(float) + 1));
    if (!buf) {
        __atomic_store_n(&c->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    int8_t *q = (int8_t *)(buf + h);
    for (int64_t r = begin; r < end; r++) {
        int64_t pos;
        const int64_t tok = irc_row_token(w, r, &pos);
        float row_scale = 0.0f;
        if (tok < 0) {
            if (w->mode == IRC_ROWS_CONVERT) {
                op_zero_row(w->out, r, h);
            } else {
                memset(q, 0, (size_t)h);
                irc_store_i8(w->out, r, h, q);
            }
            if (w->scale_out) op_store_f(ACL_FLOAT, op_ptr2(w->scale_out, r, 0), 0.0f);
            continue;
        }
        irc_load_row(w->x, tok, h, buf);
        switch (w->mode) {
        case IRC_ROWS_CONVERT:
            if (w->out->dtype == ACL_INT8) {
                irc_quant_static_f32(buf, h, 1.0f, 0.0f, q); /* int8(rint(x)): x * 1 + 0 rounds the same */
                irc_store_i8(w->out, r, h, q);
            } else {
                op_store_row_f32(w->out, r, h, buf);
            }
            if (w->row_scale) row_scale = op_load_f(w->row_scale->dtype, op_ptr2(w->row_scale, tok, 0));
            break;
        case IRC_ROWS_STATIC_F16:
            irc_quant_static_f16(buf, h, c->s16, c->o16, q);
            irc_store_i8(w->out, r, h, q);
            break;
        case IRC_ROWS_STATIC_F32:
            irc_quant_static_f32(buf, h, w->scale, w->offset, q);
            irc_store_i8(w->out, r, h, q);
            break;
        case IRC_ROWS_DYNAMIC_EVEN:
        case IRC_ROWS_DYNAMIC_AWAY: {
            if (w->smooth) {
                int64_t srow = w->smooth->dims[0] == 1 ? 0 : w->sorted->keys[pos] - w->smooth_base;
                if ((uint64_t)srow >= (uint64_t)w->smooth->dims[0]) srow = 0; /* an overlapped workspace only */
                irc_smooth_row(buf, w->smooth, srow, h);
            }
            const float s = irc_row_absmax(buf, h) / 127.0f;
            irc_quant_dynamic(buf, h, s, w->mode == IRC_ROWS_DYNAMIC_AWAY, q);
            irc_store_i8(w->out, r, h, q);
            row_scale = s;
            break;
        }
        default:
            break;
        }
        if (w->scale_out) op_store_f(ACL_FLOAT, op_ptr2(w->scale_out, r, 0), row_scale);
    }
    free(buf);
}

aclnnStatus irc_write_rows(const IrcRows *w, const char *api)
{
    if (w->rows_total <= 0) return ACLNN_SUCCESS;
    if (w->mode == IRC_ROWS_COPY) {
        op_gather_rows(w->out, w->x, w->rows_total, w->h, irc_copy_src, w);
        if (w->scale_out)
            for (int64_t r = 0; r < w->rows_total; r++) {
                int64_t pos;
                const int64_t tok = irc_row_token(w, r, &pos);
                const float v = tok < 0 || !w->row_scale
                                    ? 0.0f
                                    : op_load_f(w->row_scale->dtype, op_ptr2(w->row_scale, tok, 0));
                op_store_f(ACL_FLOAT, op_ptr2(w->scale_out, r, 0), v);
            }
        return ACLNN_SUCCESS;
    }
    /* Every output row is a function of its token row alone (the smooth scale, when there is one, is shared), and
     * each token feeds up to K rows: convert / quantise each token row once into a scratch [N, H], then gather
     * those rows as bytes (memory speed). The same function of the same row: the same bits. */
    const int64_t n_tok = w->x->dims[0];
    const int per_token = w->rows_total > n_tok && w->h > 0 &&
                          !((w->mode == IRC_ROWS_DYNAMIC_EVEN || w->mode == IRC_ROWS_DYNAMIC_AWAY) && w->smooth &&
                            w->smooth->dims[0] != 1);
    if (per_token) {
        const int64_t es = op_elem_size(w->out);
        const size_t rows_bytes = (size_t)n_tok * (size_t)w->h * (size_t)es; /* < the output's bytes */
        char *mem = malloc(rows_bytes + (size_t)n_tok * sizeof(float) + 64);
        if (mem) {
            aclTensor rows = {0}, scales = {0};
            rows.dtype = w->out->dtype;
            rows.format = ACL_FORMAT_ND;
            rows.ndim = 2;
            rows.dims[0] = n_tok;
            rows.dims[1] = w->h;
            rows.strides[0] = w->h;
            rows.strides[1] = 1;
            rows.data = mem;
            scales.dtype = ACL_FLOAT;
            scales.format = ACL_FORMAT_ND;
            scales.ndim = 1;
            scales.dims[0] = n_tok;
            scales.strides[0] = 1;
            scales.data = mem + (rows_bytes + 63) / 64 * 64;
            IrcRows t = *w;
            t.out = &rows;
            t.rows_total = n_tok;
            t.by_token = 1;
            t.scale_out = w->scale_out ? &scales : NULL;
            IrcRowsCtx c = {&t, host_f16_to_f32(host_f32_to_f16(w->scale)), host_f16_to_f32(host_f32_to_f16(w->offset)),
                            0};
            acl_host_parallel_for(n_tok, 1 + OP_PARALLEL_MIN_WORK / w->h, irc_rows_range, &c);
            if (!c.failed) {
                op_gather_rows(w->out, &rows, w->rows_total, w->h, irc_copy_src, w);
                if (w->scale_out) {
                    const float *ts = scales.data;
                    for (int64_t r = 0; r < w->rows_total; r++) {
                        int64_t pos;
                        const int64_t tok = irc_row_token(w, r, &pos);
                        op_store_f(ACL_FLOAT, op_ptr2(w->scale_out, r, 0), tok < 0 ? 0.0f : ts[tok]);
                    }
                }
            }
            free(mem);
            if (!c.failed) return ACLNN_SUCCESS;
        }
    }
    IrcRowsCtx c = {w, host_f16_to_f32(host_f32_to_f16(w->scale)), host_f16_to_f32(host_f32_to_f16(w->offset)), 0};
    acl_host_parallel_for(w->rows_total, 1 + OP_PARALLEL_MIN_WORK / (w->h > 0 ? w->h : 1), irc_rows_range, &c);
    if (c.failed)
        return acl_host_error(ACLNN_ERR_INNER, "%s: out of host memory for a row buffer of %lld elements", api,
                              (long long)w->h);
    return ACLNN_SUCCESS;
}
