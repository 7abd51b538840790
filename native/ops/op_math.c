/* Shared math kernels; see op_math.h. */
#include <math.h>
#include <pthread.h>
#include "op_math.h"

/* Stable LSD radix sort of a[0..n) by the score half of the keys, descending: keys whose scores tie keep their
 * order in the input, so an input in ascending index order yields the lower index first (the key order).
 * 8-bit digits; digits that are the same for every key are skipped. tmp must hold n keys. */
static void math_radix_desc(uint64_t *a, int64_t n, uint64_t *tmp)
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

void op_topk_desc(uint64_t *a, int64_t n, int64_t k, uint64_t *buf)
{
    if (k <= 0) return;
    if (k > n) k = n;
    if (k <= OP_TOPK_INSERTION_MAX_K) { /* insertion into a sorted buffer: O(n) when few keys enter it */
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
    math_radix_desc(a, n, buf);
}

const double op_exp_tab[32] = { /* 2^(j/32), correctly rounded */
    0x1.0000000000000p+0, 0x1.059b0d3158574p+0, 0x1.0b5586cf9890fp+0, 0x1.11301d0125b51p+0,
    0x1.172b83c7d517bp+0, 0x1.1d4873168b9aap+0, 0x1.2387a6e756238p+0, 0x1.29e9df51fdee1p+0,
    0x1.306fe0a31b715p+0, 0x1.371a7373aa9cbp+0, 0x1.3dea64c123422p+0, 0x1.44e086061892dp+0,
    0x1.4bfdad5362a27p+0, 0x1.5342b569d4f82p+0, 0x1.5ab07dd485429p+0, 0x1.6247eb03a5585p+0,
    0x1.6a09e667f3bcdp+0, 0x1.71f75e8ec5f74p+0, 0x1.7a11473eb0187p+0, 0x1.82589994cce13p+0,
    0x1.8ace5422aa0dbp+0, 0x1.93737b0cdc5e5p+0, 0x1.9c49182a3f090p+0, 0x1.a5503b23e255dp+0,
    0x1.ae89f995ad3adp+0, 0x1.b7f76f2fb5e47p+0, 0x1.c199bdd85529cp+0, 0x1.cb720dcef9069p+0,
    0x1.d5818dcfba487p+0, 0x1.dfc97337b9b5fp+0, 0x1.ea4afa2a490dap+0, 0x1.f50765b6e4540p+0,
};

/* ---- scores, in place on rows already in fp32: sigmoid, or softmax in two steps (numerators, then
 * op_softmax_finish for a block of rows) ---- */
static void math_sigmoid_portable(float *v, int64_t e)
{
    for (int64_t i = 0; i < e; i++) v[i] = 1.0f / (1.0f + op_exp_f32(-v[i]));
}

/* v = exp(v - max v); the max is "if (v > m) m = v" from m = v[0] (a NaN first logit poisons the row) */
static void math_softmax_exp_portable(float *v, int64_t e)
{
    float m = v[0];
    for (int64_t i = 1; i < e; i++)
        if (v[i] > m) m = v[i];
    for (int64_t i = 0; i < e; i++) v[i] = op_exp_f32(v[i] - m);
}

/* v[r] *= 1 / sum(v[r]) for n <= OP_SOFTMAX_ROWS rows. Each sum runs left to right as in the reference, a chain of
 * dependent adds: the rows of a block are summed side by side so that their chains overlap. */
void op_softmax_finish(float *const *v, int n, int64_t e)
{
    float s[OP_SOFTMAX_ROWS] = {0};
    const float *w[OP_SOFTMAX_ROWS];
    for (int r = 0; r < OP_SOFTMAX_ROWS; r++) w[r] = v[r < n ? r : 0];
    for (int64_t i = 0; i < e; i++)
        for (int r = 0; r < OP_SOFTMAX_ROWS; r++) s[r] += w[r][i];
    for (int r = 0; r < n; r++) {
        const float inv = 1.0f / s[r];
        for (int64_t i = 0; i < e; i++) v[r][i] *= inv;
    }
}

#if OP_X86_SIMD
OP_TARGET_AVX512 static inline __m256 math_exp8_avx512(__m256 xf, const __m512d tab[4])
{
    __m512d x = _mm512_cvtps_pd(xf);
    x = _mm512_max_pd(_mm512_set1_pd(OP_EXP_LO), x); /* LO > x ? LO : x */
    x = _mm512_min_pd(_mm512_set1_pd(OP_EXP_HI), x); /* HI < x ? HI : x */
    const __m512d shift = _mm512_set1_pd(OP_EXP_SHIFT);
    __m512d kd = _mm512_add_pd(_mm512_mul_pd(x, _mm512_set1_pd(OP_EXP_INV_LN2_N)), shift);
    const __m512i k = _mm512_sub_epi64(_mm512_castpd_si512(kd), _mm512_set1_epi64((long long)OP_EXP_SHIFT_BITS));
    kd = _mm512_sub_pd(kd, shift);
    const __m512d r = _mm512_sub_pd(_mm512_sub_pd(x, _mm512_mul_pd(kd, _mm512_set1_pd(OP_EXP_LN2_N_HI))),
                                    _mm512_mul_pd(kd, _mm512_set1_pd(OP_EXP_LN2_N_LO)));
    __m512d u = _mm512_add_pd(_mm512_set1_pd(OP_EXP_C5), _mm512_mul_pd(r, _mm512_set1_pd(OP_EXP_C6)));
    u = _mm512_add_pd(_mm512_set1_pd(OP_EXP_C4), _mm512_mul_pd(r, u));
    u = _mm512_add_pd(_mm512_set1_pd(OP_EXP_C3), _mm512_mul_pd(r, u));
    u = _mm512_add_pd(_mm512_set1_pd(OP_EXP_C2), _mm512_mul_pd(r, u));
    const __m512d q = _mm512_add_pd(r, _mm512_mul_pd(_mm512_mul_pd(r, r), u));
    /* table[k & 31]: bits 0-3 pick within a pair of registers, bit 4 picks the pair */
    const __m512d t_lo = _mm512_permutex2var_pd(tab[0], k, tab[1]);
    const __m512d t_hi = _mm512_permutex2var_pd(tab[2], k, tab[3]);
    const __m512d t = _mm512_mask_blend_pd(_mm512_test_epi64_mask(k, _mm512_set1_epi64(16)), t_lo, t_hi);
    const __m512d sc = _mm512_castsi512_pd(
        _mm512_add_epi64(_mm512_castpd_si512(t), _mm512_slli_epi64(_mm512_srai_epi64(k, 5), 52)));
    const __m256 y = _mm512_cvtpd_ps(_mm512_add_pd(sc, _mm512_mul_pd(sc, q)));
    return _mm256_mask_blend_ps(_mm256_cmp_ps_mask(xf, xf, _CMP_UNORD_Q), y, _mm256_add_ps(xf, xf));
}

OP_TARGET_AVX512 static inline __m512 math_exp16_avx512(__m512 x, const __m512d tab[4])
{
    const __m256 lo = math_exp8_avx512(_mm512_castps512_ps256(x), tab);
    const __m256 hi = math_exp8_avx512(_mm512_extractf32x8_ps(x, 1), tab);
    return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
}

OP_TARGET_AVX512 static void math_exp_tab_avx512(__m512d tab[4])
{
    for (int i = 0; i < 4; i++) tab[i] = _mm512_loadu_pd(op_exp_tab + 8 * i);
}

/* exp of the first n < 16 lanes of x, by one exp8 when they fit half a vector (the upper half then 0): a row's
 * tail in one masked vector, the same bits as op_exp_f32 (a row of 8 experts had paid 8 scalar exps) */
OP_TARGET_AVX512 static inline __m512 math_exp_part_avx512(__m512 x, int64_t n, const __m512d tab[4])
{
    if (n <= 8) return _mm512_zextps256_ps512(math_exp8_avx512(_mm512_castps512_ps256(x), tab));
    return math_exp16_avx512(x, tab);
}

OP_TARGET_AVX512 static void math_sigmoid_avx512(float *v, int64_t e)
{
    __m512d tab[4];
    math_exp_tab_avx512(tab);
    const __m512 one = _mm512_set1_ps(1.0f);
    const int64_t e16 = e / 16 * 16;
    for (int64_t i = 0; i < e16; i += 16) {
        const __m512 nx = _mm512_xor_ps(_mm512_loadu_ps(v + i), _mm512_set1_ps(-0.0f)); /* -x */
        _mm512_storeu_ps(v + i, _mm512_div_ps(one, _mm512_add_ps(one, math_exp16_avx512(nx, tab))));
    }
    if (e > e16) {
        const __mmask16 m = (__mmask16)((1u << (e - e16)) - 1u);
        const __m512 nx = _mm512_xor_ps(_mm512_maskz_loadu_ps(m, v + e16), _mm512_set1_ps(-0.0f));
        _mm512_mask_storeu_ps(v + e16, m,
                              _mm512_div_ps(one, _mm512_add_ps(one, math_exp_part_avx512(nx, e - e16, tab))));
    }
}

OP_TARGET_AVX512 static void math_softmax_exp_avx512(float *v, int64_t e)
{
    __m512d tab[4];
    math_exp_tab_avx512(tab);
    const int64_t e16 = e / 16 * 16;
    /* the portable max rule lane by lane (_mm512_max_ps(x, m) is "x > m ? x : m"), then across the lanes */
    __m512 vm = _mm512_set1_ps(v[0]);
    for (int64_t i = 0; i < e16; i += 16) vm = _mm512_max_ps(_mm512_loadu_ps(v + i), vm);
    float lanes[16], m = v[0];
    if (e16) { /* (rows of fewer than 16 experts: the vector max is all v[0]) */
        _mm512_storeu_ps(lanes, vm);
        for (int l = 0; l < 16; l++)
            if (lanes[l] > m) m = lanes[l];
    }
    for (int64_t i = e16; i < e; i++)
        if (v[i] > m) m = v[i];
    const __m512 vmax = _mm512_set1_ps(m);
    for (int64_t i = 0; i < e16; i += 16)
        _mm512_storeu_ps(v + i, math_exp16_avx512(_mm512_sub_ps(_mm512_loadu_ps(v + i), vmax), tab));
    if (e > e16) {
        const __mmask16 tm = (__mmask16)((1u << (e - e16)) - 1u);
        const __m512 x = _mm512_sub_ps(_mm512_maskz_loadu_ps(tm, v + e16), vmax);
        _mm512_mask_storeu_ps(v + e16, tm, math_exp_part_avx512(x, e - e16, tab));
    }
}
#endif

void op_sigmoid_f32(float *v, int64_t n)
{
#if OP_X86_SIMD
    if (op_cpu_avx512()) { math_sigmoid_avx512(v, n); return; }
#endif
    math_sigmoid_portable(v, n);
}

void op_softmax_exp_f32(float *v, int64_t n)
{
#if OP_X86_SIMD
    if (op_cpu_avx512()) { math_softmax_exp_avx512(v, n); return; }
#endif
    math_softmax_exp_portable(v, n);
}

/* ---- sigmoid of 16-bit inputs by table ----
 * bf16 and fp16 logits take 65536 values: their sigmoids, computed once per process by the row code above
 * (same bits), turn the exp into a lookup. 256 KB per dtype, built on first use (about 0.1 ms). */
static float math_sig_lut[2][65536]; /* [0] bf16, [1] fp16 */
static pthread_once_t math_sig_once[2] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT};

static void math_sig_build(int which)
{
    float *t = math_sig_lut[which];
    for (uint32_t h = 0; h < 65536; h++)
        t[h] = which ? host_f16_to_f32((uint16_t)h) : host_bf16_to_f32((uint16_t)h);
    op_sigmoid_f32(t, 65536);
}
static void math_sig_build_bf16(void) { math_sig_build(0); }
static void math_sig_build_f16(void) { math_sig_build(1); }

const float *op_sigmoid_table(aclDataType dt)
{
    if (dt == ACL_BF16) {
        pthread_once(&math_sig_once[0], math_sig_build_bf16);
        return math_sig_lut[0];
    }
    if (dt == ACL_FLOAT16) {
        pthread_once(&math_sig_once[1], math_sig_build_f16);
        return math_sig_lut[1];
    }
    return NULL;
}
