/*
 * aclnnMoeFinalizeRouting (V1) and aclnnMoeFinalizeRoutingV2: combine the expert outputs of every token.
 *
 *   out[i, :] = x1[i] + x2[i] + sum_{k=0}^{K-1} scales[i, k] * (expandedX[R[p(i, k)], :] + bias[expertIdx[i, k], :])
 *
 * with the index position p(i, k) = k*N + i (k-major: dropPadMode 0 and 1, and always in V1) or i*K + k (row-major:
 * dropPadMode 2 and 3). In modes 1/3 expandedX is [E, C, H], addressed as flat rows e*C + c, and R may hold -1 for
 * a dropped slot.
 *
 * Dropped slots (R = -1, modes 1/3): like the NPU kernel (OT moe_finalize_routing_v2_fp_db.h: Duplicate(0) and the
 * add is skipped), the slot contributes NOTHING, the bias is not added either. The official goldens (torch doc
 * "equivalent logic" and the OPP/OT test gen_data) instead read row 0 and add scales*(0 + bias): that is a
 * discrepancy between the goldens and the kernel (spec/semantics.md 3(b), 9.1); we follow the kernel.
 * A -1 in modes 0/2 is undefined on the NPU (stale data or skip): the host runtime rejects it.
 *
 * Optional inputs (V2): no x1 and no x2 -> the sum starts from 0; x2 without x1 is rejected; no scales -> scale 1
 * and K = 1; no bias -> no bias term and expertIdx is not read (nor range-checked).
 *
 * Numerics (spec/semantics.md 3(f)):
 *  - fp32: computed in fp32, in the kernel's op order: t = x + bias; t = t * s; acc = acc + t (k ascending).
 *  - fp16: the NPU computes NATIVELY IN FP16 (its kernels contain no Cast): acc = x1 + x2 rounded to fp16, then per
 *    k: t = fp16(x + bias), t = fp16(t * s), acc = fp16(acc + t). We reproduce that: every op is done in fp32 and
 *    rounded to fp16 (RNE) at once. fp32 has 24 >= 2*11 + 2 significand bits, so this double rounding equals
 *    correctly rounded fp16 arithmetic, bit for bit.
 *  - bf16: computed in fp32 (scales read as float, fp32 scales accepted: the doc's "mixed precision"), one RNE
 *    rounding on the final store. V2 uses CAST_RINT (RNE). V1's bf16 kernel uses CAST_ROUND, whose exact rounding is
 *    [unconfirmed] (believed half away from zero); the host runtime uses RNE for V1 too, so V1 bf16 may differ from
 *    the NPU by one ulp on exact ties.
 *
 * Index checks happen in the kernel before anything is written: a row index outside [0, rows) (modes 0/2, V1) or
 * outside [-1, E*C) (modes 1/3), and, when bias is given, an expert id outside [0, E) -> ACLNN_ERR_PARAM_INVALID.
 *
 * Implementation: rows are split over the thread pool. On x86 with AVX2 + F16C (checked at run time) and rows with
 * contiguous columns, the K source rows of a token are walked in lockstep 8 columns at a time with the accumulator
 * in a register (avx2_row); otherwise (strided columns, K > 64, column tails, other CPUs) the row is done in
 * fp32 tiles on the stack (finalize_row_tiles). Both paths perform the same operations in the same order, so the
 * results are identical bit for bit (the tests run both; -DACLNN_MOE_NO_X86_SIMD builds the portable path only).
 */
/* the operation order above is part of the result (fp16 rounds after every op; fp32/bf16 must match the
 * reference bit for bit): never let the compiler fuse a multiply and an add into one FMA */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "aclnnop/aclnn_moe_finalize_routing.h"
#include "aclnnop/aclnn_moe_finalize_routing_v2.h"
#include "op_common.h"

#define FIN_TILE 4096 /* columns per tile: accumulators live on the stack (48 KB), no workspace */
/* the expanded rows are gathered in routing order, so the hardware prefetcher restarts on every row: a software
 * prefetch 2 KB ahead keeps more loads in flight (about 20-25 % faster when the rows come from DRAM) */
#define FIN_PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 3)

typedef struct {
    int64_t mode; /* dropPadMode 0..3 (V1: 0) */
    int64_t N, K, H;
    int64_t rows;   /* rows of expandedX seen as [rows, H] (N*K in modes 0/2, E*C in 1/3) */
    int64_t C;      /* capacity (modes 1/3: expandedX is [E, C, H]); 0 otherwise */
    int64_t E;      /* experts: bias.dim0 (0 if no bias) */
    int v1;
} FinalizeParams;

typedef struct {
    const FinalizeParams *p;
    const aclTensor *X, *R, *x1, *x2, *bias, *scales, *eidx, *out;
    int f16c; /* x86 AVX2 + F16C available: 8-wide kernels and vector fp16 conversions */
} FinalizeCtx;

/* ---- fp16 / bf16 helpers ------------------------------------------------------------------------------------ */

static inline float r16(float v) { return host_f16_to_f32(host_f32_to_f16(v)); }

/* bf16 <-> fp32 without branches so that gcc vectorises the loops (NaN kept quiet as in half.h) */
static inline float bf2f(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline uint16_t f2bf(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    uint32_t q = (u >> 16) | 0x40u;
    return (uint16_t)(((u & 0x7fffffffu) > 0x7f800000u) ? q : r);
}

#if (defined(__x86_64__) || defined(__i386__)) && !defined(ACLNN_MOE_NO_X86_SIMD)
#include <immintrin.h>
#define FIN_HAVE_F16C_PATH 1
#define F16C_TARGET __attribute__((target("avx2,f16c")))
F16C_TARGET static inline __m256 rt16(__m256 v)
{
    return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
F16C_TARGET static void f16c_load(const uint16_t *s, float *d, int64_t n)
{
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(d + j, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + j))));
    for (; j < n; j++) d[j] = host_f16_to_f32(s[j]);
}
F16C_TARGET static void f16c_store(uint16_t *d, const float *s, int64_t n)
{
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        _mm_storeu_si128((__m128i *)(d + j),
                         _mm256_cvtps_ph(_mm256_loadu_ps(s + j), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; j < n; j++) d[j] = host_f32_to_f16(s[j]);
}
/* acc = fp16(acc + b) */
F16C_TARGET static void f16c_acc_add(float *acc, const float *b, int64_t n)
{
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        _mm256_storeu_ps(acc + j, rt16(_mm256_add_ps(_mm256_loadu_ps(acc + j), _mm256_loadu_ps(b + j))));
    for (; j < n; j++) acc[j] = r16(acc[j] + b[j]);
}
/* one k-term in native fp16 arithmetic: t = fp16(x + bias); t = fp16(t * s); acc = fp16(acc + t) */
F16C_TARGET static void f16c_term(float *acc, const uint16_t *x, const uint16_t *b, float s, int64_t n)
{
    const __m256 vs = _mm256_set1_ps(s);
    int64_t j = 0;
    if (b) {
        for (; j + 8 <= n; j += 8) {
            if ((j & 31) == 0) FIN_PREFETCH(x + j + 1024);
            __m256 t = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + j)));
            t = rt16(_mm256_add_ps(t, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + j)))));
            t = rt16(_mm256_mul_ps(t, vs));
            _mm256_storeu_ps(acc + j, rt16(_mm256_add_ps(_mm256_loadu_ps(acc + j), t)));
        }
    } else {
        for (; j + 8 <= n; j += 8) {
            if ((j & 31) == 0) FIN_PREFETCH(x + j + 1024);
            __m256 t = rt16(_mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + j))), vs));
            _mm256_storeu_ps(acc + j, rt16(_mm256_add_ps(_mm256_loadu_ps(acc + j), t)));
        }
    }
    for (; j < n; j++) {
        float t = host_f16_to_f32(x[j]);
        if (b) t = r16(t + host_f16_to_f32(b[j]));
        t = r16(t * s);
        acc[j] = r16(acc[j] + t);
    }
}
/* bf16 / fp32 k-terms with 8-wide AVX2 (same op order and rounding as the portable loops below: exact) */
F16C_TARGET static void avx2_term_bf16(float *acc, const uint16_t *x, const uint16_t *b, float s, int64_t n)
{
    const __m256 vs = _mm256_set1_ps(s);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        if ((j & 31) == 0) FIN_PREFETCH(x + j + 1024);
        __m256 t = _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(x + j))), 16));
        if (b)
            t = _mm256_add_ps(t, _mm256_castsi256_ps(_mm256_slli_epi32(
                                     _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(b + j))), 16)));
        _mm256_storeu_ps(acc + j, _mm256_add_ps(_mm256_loadu_ps(acc + j), _mm256_mul_ps(t, vs)));
    }
    for (; j < n; j++) {
        float t = host_bf16_to_f32(x[j]);
        if (b) t += host_bf16_to_f32(b[j]);
        acc[j] += t * s;
    }
}
F16C_TARGET static void avx2_term_f32(float *acc, const float *x, const float *b, float s, int64_t n)
{
    const __m256 vs = _mm256_set1_ps(s);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        if ((j & 15) == 0) FIN_PREFETCH(x + j + 512);
        __m256 t = _mm256_loadu_ps(x + j);
        if (b) t = _mm256_add_ps(t, _mm256_loadu_ps(b + j));
        _mm256_storeu_ps(acc + j, _mm256_add_ps(_mm256_loadu_ps(acc + j), _mm256_mul_ps(t, vs)));
    }
    for (; j < n; j++) {
        float t = x[j];
        if (b) t += b[j];
        acc[j] += t * s;
    }
}
static int detect_f16c(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
    }
    return cached;
}
#else
#define FIN_HAVE_F16C_PATH 0
static int detect_f16c(void) { return 0; }
#endif

/* ---- generic (any dtype, any column stride) helpers ---------------------------------------------------------- */

/* address of element (row, 0) of expandedX seen as [rows, H] */
static inline const char *x_row(const FinalizeCtx *c, int64_t row)
{
    const aclTensor *X = c->X;
    int64_t off = X->offset;
    if (X->ndim == 3) off += (row / c->p->C) * X->strides[0] + (row % c->p->C) * X->strides[1];
    else off += row * X->strides[0];
    return (const char *)X->data + off * op_elem_size(X);
}

static inline int64_t last_stride(const aclTensor *t) { return t->strides[t->ndim - 1]; }

/* load n elements (element stride cs) as fp32 */
static void load_seg(const FinalizeCtx *c, aclDataType dt, const char *base, int64_t cs, int64_t n, float *dst)
{
    switch (dt) {
    case ACL_FLOAT16: {
        const uint16_t *s = (const uint16_t *)base;
#if FIN_HAVE_F16C_PATH
        if (cs == 1 && c->f16c) {
            f16c_load(s, dst, n);
            break;
        }
#endif
        (void)c;
        for (int64_t j = 0; j < n; j++) dst[j] = host_f16_to_f32(s[j * cs]);
        break;
    }
    case ACL_BF16: {
        const uint16_t *s = (const uint16_t *)base;
        if (cs == 1) for (int64_t j = 0; j < n; j++) dst[j] = bf2f(s[j]);
        else for (int64_t j = 0; j < n; j++) dst[j] = bf2f(s[j * cs]);
        break;
    }
    default: {
        const float *s = (const float *)base;
        if (cs == 1) memcpy(dst, s, (size_t)n * sizeof(float));
        else for (int64_t j = 0; j < n; j++) dst[j] = s[j * cs];
        break;
    }
    }
}

static void store_seg(const FinalizeCtx *c, aclDataType dt, char *base, int64_t cs, int64_t n, const float *src)
{
    switch (dt) {
    case ACL_FLOAT16: {
        uint16_t *d = (uint16_t *)base;
#if FIN_HAVE_F16C_PATH
        if (cs == 1 && c->f16c) {
            f16c_store(d, src, n);
            break;
        }
#endif
        (void)c;
        for (int64_t j = 0; j < n; j++) d[j * cs] = host_f32_to_f16(src[j]);
        break;
    }
    case ACL_BF16: {
        uint16_t *d = (uint16_t *)base;
        if (cs == 1) for (int64_t j = 0; j < n; j++) d[j] = f2bf(src[j]);
        else for (int64_t j = 0; j < n; j++) d[j * cs] = f2bf(src[j]);
        break;
    }
    default: {
        float *d = (float *)base;
        if (cs == 1) memcpy(d, src, (size_t)n * sizeof(float));
        else for (int64_t j = 0; j < n; j++) d[j * cs] = src[j];
        break;
    }
    }
}

/* ---- one k-term on a tile, contiguous fast paths ---------------------------------------------------------- */

/* fp32: t = x + b; t = t * s; acc = acc + t   (s = 1 when there are no scales: exact) */
static void term_f32(float *restrict acc, const float *restrict x, const float *restrict b, float s, int64_t n)
{
    if (b) for (int64_t j = 0; j < n; j++) { float t = (x[j] + b[j]) * s; acc[j] += t; }
    else for (int64_t j = 0; j < n; j++) { float t = x[j] * s; acc[j] += t; }
}
/* bf16: the same op order in fp32 */
static void term_bf16(float *restrict acc, const uint16_t *restrict x, const uint16_t *restrict b, float s,
                      int64_t n)
{
    if (b) for (int64_t j = 0; j < n; j++) { float t = (bf2f(x[j]) + bf2f(b[j])) * s; acc[j] += t; }
    else for (int64_t j = 0; j < n; j++) { float t = bf2f(x[j]) * s; acc[j] += t; }
}
/* fp16 without F16C: native fp16 arithmetic, rounded after every op */
static void term_f16_scalar(float *acc, const uint16_t *x, const uint16_t *b, float s, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        float t = host_f16_to_f32(x[j]);
        if (b) t = r16(t + host_f16_to_f32(b[j]));
        t = r16(t * s);
        acc[j] = r16(acc[j] + t);
    }
}
/* generic: t and u are fp32 copies of the x row and bias row (u NULL: no bias) */
static void term_generic(float *acc, float *t, const float *u, float s, int64_t n, int fp16)
{
    if (fp16) {
        for (int64_t j = 0; j < n; j++) {
            float v = t[j];
            if (u) v = r16(v + u[j]);
            v = r16(v * s);
            acc[j] = r16(acc[j] + v);
        }
    } else {
        for (int64_t j = 0; j < n; j++) {
            float v = t[j];
            if (u) v += u[j];
            v *= s;
            acc[j] += v;
        }
    }
}

static inline int64_t idx_pos(const FinalizeParams *p, int64_t i, int64_t k)
{
    return (p->mode == 0 || p->mode == 1) ? k * p->N + i : i * p->K + k;
}

/* columns [jb, je) of output row i, tile by tile through fp32 buffers (any layout, any dtype) */
static void finalize_row_tiles(const FinalizeCtx *c, int64_t i, int64_t jb, int64_t je)
{
    const FinalizeParams *p = c->p;
    const aclDataType dt = c->X->dtype;
    const int fp16 = (dt == ACL_FLOAT16);
    const int64_t es = op_elem_size(c->X);
    const int64_t xcs = last_stride(c->X), bcs = c->bias ? last_stride(c->bias) : 1;
    const int fast = (xcs == 1 && bcs == 1);
    float acc[FIN_TILE], t[FIN_TILE], u[FIN_TILE];

    for (int64_t j0 = jb; j0 < je; j0 += FIN_TILE) {
        const int64_t n = (je - j0 < FIN_TILE) ? je - j0 : FIN_TILE;
        /* initial value: x1 + x2 (rounded to fp16 for fp16), x1, or 0 */
        if (c->x1) {
            load_seg(c, dt, op_ptr2(c->x1, i, j0), last_stride(c->x1), n, acc);
            if (c->x2) {
                load_seg(c, dt, op_ptr2(c->x2, i, j0), last_stride(c->x2), n, t);
#if FIN_HAVE_F16C_PATH
                if (fp16 && c->f16c) f16c_acc_add(acc, t, n);
                else
#endif
                if (fp16) for (int64_t j = 0; j < n; j++) acc[j] = r16(acc[j] + t[j]);
                else for (int64_t j = 0; j < n; j++) acc[j] += t[j];
            }
        } else {
            memset(acc, 0, (size_t)n * sizeof(float));
        }
        for (int64_t k = 0; k < p->K; k++) {
            const int64_t r = op_load_i(c->R->dtype, op_ptr2(c->R, idx_pos(p, i, k), 0));
            if (r < 0) continue; /* -1: dropped slot (modes 1/3, validated) contributes nothing */
            const char *px = x_row(c, r) + j0 * xcs * es;
            const char *pb = NULL;
            if (c->bias) {
                const int64_t e = op_load_i(c->eidx->dtype, op_ptr2(c->eidx, i, k));
                pb = op_ptr2(c->bias, e, j0);
            }
            const float s = c->scales ? op_load_f(c->scales->dtype, op_ptr2(c->scales, i, k)) : 1.0f;
            if (fast) {
                switch (dt) {
                case ACL_FLOAT:
#if FIN_HAVE_F16C_PATH
                    if (c->f16c) {
                        avx2_term_f32(acc, (const float *)px, (const float *)pb, s, n);
                        break;
                    }
#endif
                    term_f32(acc, (const float *)px, (const float *)pb, s, n);
                    break;
                case ACL_BF16:
#if FIN_HAVE_F16C_PATH
                    if (c->f16c) {
                        avx2_term_bf16(acc, (const uint16_t *)px, (const uint16_t *)pb, s, n);
                        break;
                    }
#endif
                    term_bf16(acc, (const uint16_t *)px, (const uint16_t *)pb, s, n);
                    break;
                default:
#if FIN_HAVE_F16C_PATH
                    if (c->f16c) {
                        f16c_term(acc, (const uint16_t *)px, (const uint16_t *)pb, s, n);
                        break;
                    }
#endif
                    term_f16_scalar(acc, (const uint16_t *)px, (const uint16_t *)pb, s, n);
                    break;
                }
            } else {
                load_seg(c, dt, px, xcs, n, t);
                if (pb) load_seg(c, dt, pb, bcs, n, u);
                term_generic(acc, t, pb ? u : NULL, s, n, fp16);
            }
        }
        /* store (fp16 values are already exact fp16; bf16 rounds RNE here) */
        store_seg(c, dt, op_ptr2(c->out, i, j0), last_stride(c->out), n, acc);
    }
}

#if FIN_HAVE_F16C_PATH
/* The contiguous case on AVX2: the K source rows of a token are walked in lockstep, 8 columns at a time, with
 * the accumulator in a register (no fp32 tile buffer), in exactly the operation order of the tile path. */
#define FIN_MAX_TERMS 64
typedef struct {
    const void *x[FIN_MAX_TERMS];
    const void *b[FIN_MAX_TERMS];
    float s[FIN_MAX_TERMS];
    int n;
} FinalizeTerms;

F16C_TARGET static inline __m256 ld_bf16(const uint16_t *p)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}
F16C_TARGET static inline void st_bf16(uint16_t *p, __m256 v)
{
    const __m256i u = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                           _mm256_set1_epi32(0x7f800000));
    const __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    r = _mm256_blendv_epi8(r, q, nan);
    _mm_storeu_si128((__m128i *)p,
                     _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1)));
}
F16C_TARGET static inline __m256 ld_f16(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

/* columns [0, n8) (a multiple of 8) of one output row; x1/x2/out contiguous, NULL when absent */
F16C_TARGET static void avx2_row(aclDataType dt, void *out, const void *x1, const void *x2, const FinalizeTerms *T,
                                 int64_t n8)
{
    for (int64_t j = 0; j < n8; j += 8) {
        __m256 acc = _mm256_setzero_ps();
        if (dt == ACL_FLOAT) {
            if (x1) acc = _mm256_loadu_ps((const float *)x1 + j);
            if (x2) acc = _mm256_add_ps(acc, _mm256_loadu_ps((const float *)x2 + j));
            for (int k = 0; k < T->n; k++) {
                const float *x = (const float *)T->x[k] + j;
                if ((j & 15) == 0) FIN_PREFETCH(x + 512);
                __m256 t = _mm256_loadu_ps(x);
                if (T->b[k]) t = _mm256_add_ps(t, _mm256_loadu_ps((const float *)T->b[k] + j));
                acc = _mm256_add_ps(acc, _mm256_mul_ps(t, _mm256_set1_ps(T->s[k])));
            }
            _mm256_storeu_ps((float *)out + j, acc);
        } else if (dt == ACL_BF16) {
            if (x1) acc = ld_bf16((const uint16_t *)x1 + j);
            if (x2) acc = _mm256_add_ps(acc, ld_bf16((const uint16_t *)x2 + j));
            for (int k = 0; k < T->n; k++) {
                const uint16_t *x = (const uint16_t *)T->x[k] + j;
                if ((j & 31) == 0) FIN_PREFETCH(x + 1024);
                __m256 t = ld_bf16(x);
                if (T->b[k]) t = _mm256_add_ps(t, ld_bf16((const uint16_t *)T->b[k] + j));
                acc = _mm256_add_ps(acc, _mm256_mul_ps(t, _mm256_set1_ps(T->s[k])));
            }
            st_bf16((uint16_t *)out + j, acc);
        } else { /* fp16: native fp16 arithmetic, rounded after every operation */
            if (x1) acc = ld_f16((const uint16_t *)x1 + j);
            if (x2) acc = rt16(_mm256_add_ps(acc, ld_f16((const uint16_t *)x2 + j)));
            for (int k = 0; k < T->n; k++) {
                const uint16_t *x = (const uint16_t *)T->x[k] + j;
                if ((j & 31) == 0) FIN_PREFETCH(x + 1024);
                __m256 t = ld_f16(x);
                if (T->b[k]) t = rt16(_mm256_add_ps(t, ld_f16((const uint16_t *)T->b[k] + j)));
                t = rt16(_mm256_mul_ps(t, _mm256_set1_ps(T->s[k])));
                acc = rt16(_mm256_add_ps(acc, t));
            }
            _mm_storeu_si128((__m128i *)((uint16_t *)out + j),
                             _mm256_cvtps_ph(acc, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        }
    }
}
#endif

static void finalize_rows(void *vctx, int64_t begin, int64_t end)
{
    const FinalizeCtx *c = vctx;
    const FinalizeParams *p = c->p;
    const int64_t H = p->H;
#if FIN_HAVE_F16C_PATH
    const int contiguous = last_stride(c->X) == 1 && (!c->bias || last_stride(c->bias) == 1) &&
                           (!c->x1 || last_stride(c->x1) == 1) && (!c->x2 || last_stride(c->x2) == 1) &&
                           last_stride(c->out) == 1;
    const int64_t h8 = (c->f16c && contiguous && p->K <= FIN_MAX_TERMS) ? H / 8 * 8 : 0;
#else
    const int64_t h8 = 0;
#endif
    for (int64_t i = begin; i < end; i++) {
#if FIN_HAVE_F16C_PATH
        if (h8 > 0) {
            FinalizeTerms T;
            T.n = 0;
            for (int64_t k = 0; k < p->K; k++) {
                const int64_t r = op_load_i(c->R->dtype, op_ptr2(c->R, idx_pos(p, i, k), 0));
                if (r < 0) continue; /* -1: dropped slot (modes 1/3, validated) contributes nothing */
                T.x[T.n] = x_row(c, r);
                T.b[T.n] = c->bias ? op_ptr2(c->bias, op_load_i(c->eidx->dtype, op_ptr2(c->eidx, i, k)), 0) : NULL;
                T.s[T.n] = c->scales ? op_load_f(c->scales->dtype, op_ptr2(c->scales, i, k)) : 1.0f;
                T.n++;
            }
            avx2_row(c->X->dtype, op_ptr2(c->out, i, 0), c->x1 ? op_ptr2(c->x1, i, 0) : NULL,
                     c->x2 ? op_ptr2(c->x2, i, 0) : NULL, &T, h8);
        }
#endif
        if (h8 < H) finalize_row_tiles(c, i, h8, H);
    }
}

static aclnnStatus finalize_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    (void)ws;
    (void)wsSize;
    const FinalizeParams *p = ex->params;
    FinalizeCtx c;
    c.p = p;
    if (p->v1) {
        /* V1 prototype order: expandedX, x1, x2Optional, bias, scales, expandedRowIdx, expandedExpertIdx */
        c.X = ex->inputs[0]; c.x1 = ex->inputs[1]; c.x2 = ex->inputs[2]; c.bias = ex->inputs[3];
        c.scales = ex->inputs[4]; c.R = ex->inputs[5]; c.eidx = ex->inputs[6];
    } else {
        /* V2: expandedX, expandedRowIdx, x1Optional, x2Optional, biasOptional, scalesOptional, expertIdxOptional */
        c.X = ex->inputs[0]; c.R = ex->inputs[1]; c.x1 = ex->inputs[2]; c.x2 = ex->inputs[3];
        c.bias = ex->inputs[4]; c.scales = ex->inputs[5]; c.eidx = ex->inputs[6];
    }
    c.out = ex->outputs[0];
    c.f16c = detect_f16c();
    const char *api = p->v1 ? "aclnnMoeFinalizeRouting" : "aclnnMoeFinalizeRoutingV2";

    /* index checks, before anything is written */
    const int64_t NK = p->N * p->K;
    const int dropmode = (p->mode == 1 || p->mode == 3);
    for (int64_t q = 0; q < NK; q++) {
        const int64_t r = op_load_i(c.R->dtype, op_ptr2(c.R, q, 0));
        if (r >= p->rows || r < (dropmode ? -1 : 0)) {
            if (dropmode)
                return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                                      "%s: expandedRowIdx[%lld] = %lld is outside [-1, %lld) (E*C rows of expandedX, "
                                      "-1 = dropped)", api, (long long)q, (long long)r, (long long)p->rows);
            return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                                  "%s: expandedRowIdx[%lld] = %lld is outside [0, %lld) (rows of expandedX)", api,
                                  (long long)q, (long long)r, (long long)p->rows);
        }
    }
    if (c.bias) {
        for (int64_t i = 0; i < p->N; i++)
            for (int64_t k = 0; k < p->K; k++) {
                const int64_t e = op_load_i(c.eidx->dtype, op_ptr2(c.eidx, i, k));
                if (e < 0 || e >= p->E)
                    return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                                          "%s: %s[%lld, %lld] = %lld is outside [0, %lld) (experts of bias)", api,
                                          p->v1 ? "expandedExpertIdx" : "expertIdxOptional", (long long)i,
                                          (long long)k, (long long)e, (long long)p->E);
            }
    }
    if (p->N == 0 || p->H == 0) return ACLNN_SUCCESS;
    int64_t grain = 16384 / (p->H * (p->K + 2));
    if (grain < 1) grain = 1;
    acl_host_parallel_for(p->N, grain, finalize_rows, &c);
    return ACLNN_SUCCESS;
}

static const aclDataType fin_x_dt[] = {ACL_FLOAT16, ACL_BF16, ACL_FLOAT, ACL_DT_UNDEFINED};
static const aclDataType fin_i32_dt[] = {ACL_INT32, ACL_DT_UNDEFINED};

static aclnnStatus check_opt_tensor(const char *api, const char *name, const aclTensor *t, const char *ref_name,
                                    const aclTensor *ref)
{
    if (!t) return ACLNN_SUCCESS;
    if (ref) OP_TRY(op_check_same_dtype(api, name, t, ref_name, ref));
    else OP_TRY(op_check_dtype(api, name, t, fin_i32_dt));
    return op_check_format(api, name, t);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* V2                                                                                                            */

aclnnStatus aclnnMoeFinalizeRoutingV2GetWorkspaceSize(const aclTensor *expandedX, const aclTensor *expandedRowIdx,
                                                      const aclTensor *x1Optional, const aclTensor *x2Optional,
                                                      const aclTensor *biasOptional, const aclTensor *scalesOptional,
                                                      const aclTensor *expertIdxOptional, int64_t dropPadMode,
                                                      const aclTensor *out, uint64_t *workspaceSize,
                                                      aclOpExecutor **executor)
{
    static const char *api = "aclnnMoeFinalizeRoutingV2";
    OP_TRY(op_check_not_null(api, "expandedX", expandedX));
    OP_TRY(op_check_not_null(api, "expandedRowIdx", expandedRowIdx));
    OP_TRY(op_check_not_null(api, "out", out));

    /* dtypes / formats -> 161002 */
    OP_TRY(op_check_dtype(api, "expandedX", expandedX, fin_x_dt));
    OP_TRY(op_check_format(api, "expandedX", expandedX));
    OP_TRY(op_check_dtype(api, "expandedRowIdx", expandedRowIdx, fin_i32_dt));
    OP_TRY(op_check_format(api, "expandedRowIdx", expandedRowIdx));
    OP_TRY(check_opt_tensor(api, "x1Optional", x1Optional, "expandedX", expandedX));
    OP_TRY(check_opt_tensor(api, "x2Optional", x2Optional, "expandedX", expandedX));
    OP_TRY(check_opt_tensor(api, "biasOptional", biasOptional, "expandedX", expandedX));
    if (scalesOptional) {
        /* same dtype as expandedX, or fp32 with bf16 expandedX ("mixed precision") */
        if (!(expandedX->dtype == ACL_BF16 && scalesOptional->dtype == ACL_FLOAT))
            OP_TRY(op_check_same_dtype(api, "scalesOptional", scalesOptional, "expandedX", expandedX));
        OP_TRY(op_check_format(api, "scalesOptional", scalesOptional));
    }
    OP_TRY(check_opt_tensor(api, "expertIdxOptional", expertIdxOptional, NULL, NULL));
    OP_TRY(op_check_same_dtype(api, "out", out, "expandedX", expandedX));
    OP_TRY(op_check_format(api, "out", out));

    /* shapes and attributes (tiling) -> 561002 */
    if (dropPadMode < 0 || dropPadMode > 3)
        return op_fail_tiling(api, "dropPadMode (%lld) must be in [0, 3]", (long long)dropPadMode);
    const int drop = (dropPadMode == 1 || dropPadMode == 3);
    OP_TRY(op_check_ndim(api, "expandedRowIdx", expandedRowIdx, 1));
    int64_t K = 1;
    if (scalesOptional) {
        OP_TRY(op_check_ndim(api, "scalesOptional", scalesOptional, 2));
        K = scalesOptional->dims[1];
    }
    if (K == 0) return op_fail_tiling(api, "K (scalesOptional.shape[1]) can not be 0");
    const int64_t NK = expandedRowIdx->dims[0];
    int64_t N;
    if (scalesOptional) {
        N = scalesOptional->dims[0];
        if (N * K != NK)
            return op_fail_tiling(api, "expandedRowIdx length (%lld) must equal N*K = %lld*%lld (scalesOptional shape)",
                                  (long long)NK, (long long)N, (long long)K);
    } else {
        N = NK;
    }
    OP_TRY(op_check_ndim(api, "expandedX", expandedX, drop ? 3 : 2));
    const int64_t H = expandedX->dims[expandedX->ndim - 1];
    int64_t rows, C = 0, E = 0;
    if (drop) {
        E = expandedX->dims[0];
        C = expandedX->dims[1];
        rows = E * C;
        if (E == 0) return op_fail_tiling(api, "expert count E (expandedX.shape[0]) can not be 0");
    } else {
        rows = expandedX->dims[0];
        if (rows != NK)
            return op_fail_tiling(api, "expandedX.shape[0] (%lld) must equal N*K = %lld (expandedRowIdx length)",
                                  (long long)rows, (long long)NK);
    }
    const int64_t nh[2] = {N, H}, nk[2] = {N, K};
    if (x1Optional) OP_TRY(op_check_shape(api, "x1Optional", x1Optional, 2, nh));
    if (x2Optional && !x1Optional)
        return op_fail_tiling(api, "x2Optional can not be given when x1Optional is not given");
    if (x2Optional) OP_TRY(op_check_shape(api, "x2Optional", x2Optional, 2, nh));
    if (biasOptional) {
        if (!expertIdxOptional)
            return op_fail_tiling(api, "expertIdxOptional must be given when biasOptional is given");
        OP_TRY(op_check_ndim(api, "biasOptional", biasOptional, 2));
        if (drop && biasOptional->dims[0] != E)
            return op_fail_tiling(api, "biasOptional.shape[0] (%lld) must equal E = expandedX.shape[0] (%lld)",
                                  (long long)biasOptional->dims[0], (long long)E);
        if (biasOptional->dims[1] != H)
            return op_fail_tiling(api, "biasOptional.shape[1] (%lld) must equal H (%lld)",
                                  (long long)biasOptional->dims[1], (long long)H);
        E = biasOptional->dims[0];
        if (E == 0) return op_fail_tiling(api, "expert count E (biasOptional.shape[0]) can not be 0");
        if (E < K)
            return op_fail_tiling(api, "E (%lld) should be larger than or equal to K (%lld)", (long long)E,
                                  (long long)K);
    }
    if (expertIdxOptional) OP_TRY(op_check_shape(api, "expertIdxOptional", expertIdxOptional, 2, nk));
    OP_TRY(op_check_shape(api, "out", out, 2, nh));

    OP_TRY(op_check_not_null(api, "workspaceSize", workspaceSize));
    OP_TRY(op_check_not_null(api, "executor", executor));

    FinalizeParams p = {dropPadMode, N, K, H, rows, C, biasOptional ? E : 0, 0};
    const aclTensor *ins[] = {expandedX, expandedRowIdx, x1Optional, x2Optional, biasOptional, scalesOptional,
                              expertIdxOptional};
    const aclTensor *outs[] = {out};
    return acl_host_executor_create(api, finalize_kernel, ins, 7, outs, 1, &p, sizeof p, 0, workspaceSize, executor);
}

aclnnStatus aclnnMoeFinalizeRoutingV2(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                      aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeFinalizeRoutingV2");
}

/* ------------------------------------------------------------------------------------------------------------ */
/* V1: x1, bias, scales and expandedExpertIdx required; always k-major (mode 0)                                  */

aclnnStatus aclnnMoeFinalizeRoutingGetWorkspaceSize(const aclTensor *expandedX, const aclTensor *x1,
                                                    const aclTensor *x2Optional, const aclTensor *bias,
                                                    const aclTensor *scales, const aclTensor *expandedRowIdx,
                                                    const aclTensor *expandedExpertIdx, const aclTensor *out,
                                                    uint64_t *workspaceSize, aclOpExecutor **executor)
{
    static const char *api = "aclnnMoeFinalizeRouting";
    OP_TRY(op_check_not_null(api, "expandedX", expandedX));
    OP_TRY(op_check_not_null(api, "x1", x1));
    OP_TRY(op_check_not_null(api, "bias", bias));
    OP_TRY(op_check_not_null(api, "scales", scales));
    OP_TRY(op_check_not_null(api, "expandedRowIdx", expandedRowIdx));
    OP_TRY(op_check_not_null(api, "expandedExpertIdx", expandedExpertIdx));
    OP_TRY(op_check_not_null(api, "out", out));

    /* dtypes / formats -> 161002; V1 takes scales in the dtype of expandedX (no mixed precision) */
    OP_TRY(op_check_dtype(api, "expandedX", expandedX, fin_x_dt));
    OP_TRY(op_check_format(api, "expandedX", expandedX));
    OP_TRY(check_opt_tensor(api, "x1", x1, "expandedX", expandedX));
    OP_TRY(check_opt_tensor(api, "x2Optional", x2Optional, "expandedX", expandedX));
    OP_TRY(check_opt_tensor(api, "bias", bias, "expandedX", expandedX));
    OP_TRY(check_opt_tensor(api, "scales", scales, "expandedX", expandedX));
    OP_TRY(check_opt_tensor(api, "expandedRowIdx", expandedRowIdx, NULL, NULL));
    OP_TRY(check_opt_tensor(api, "expandedExpertIdx", expandedExpertIdx, NULL, NULL));
    OP_TRY(op_check_same_dtype(api, "out", out, "expandedX", expandedX));
    OP_TRY(op_check_format(api, "out", out));

    /* shapes (tiling) -> 561002 */
    OP_TRY(op_check_ndim(api, "expandedX", expandedX, 2));
    OP_TRY(op_check_ndim(api, "x1", x1, 2));
    if (x2Optional) OP_TRY(op_check_ndim(api, "x2Optional", x2Optional, 2));
    OP_TRY(op_check_ndim(api, "bias", bias, 2));
    OP_TRY(op_check_ndim(api, "scales", scales, 2));
    OP_TRY(op_check_ndim(api, "expandedRowIdx", expandedRowIdx, 1));
    OP_TRY(op_check_ndim(api, "expandedExpertIdx", expandedExpertIdx, 2));
    const int64_t N = x1->dims[0], H = expandedX->dims[1], K = scales->dims[1], E = bias->dims[0];
    if (scales->dims[0] != N || expandedExpertIdx->dims[0] != N)
        return op_fail_tiling(api, "x1, scales and expandedExpertIdx must have the same number of rows "
                              "(got %lld, %lld, %lld)", (long long)N, (long long)scales->dims[0],
                              (long long)expandedExpertIdx->dims[0]);
    if (expandedExpertIdx->dims[1] != K)
        return op_fail_tiling(api, "expandedExpertIdx.shape[1] (%lld) must equal scales.shape[1] = K (%lld)",
                              (long long)expandedExpertIdx->dims[1], (long long)K);
    if (E == 0) return op_fail_tiling(api, "expert count E (bias.shape[0]) can not be 0");
    if (K == 0) return op_fail_tiling(api, "K (scales.shape[1]) can not be 0");
    const int64_t nh[2] = {N, H}, eh[2] = {E, H};
    OP_TRY(op_check_shape(api, "x1", x1, 2, nh));
    if (x2Optional) OP_TRY(op_check_shape(api, "x2Optional", x2Optional, 2, nh));
    OP_TRY(op_check_shape(api, "bias", bias, 2, eh));
    if (expandedRowIdx->dims[0] != expandedX->dims[0])
        return op_fail_tiling(api, "expandedRowIdx length (%lld) must equal expandedX.shape[0] (%lld)",
                              (long long)expandedRowIdx->dims[0], (long long)expandedX->dims[0]);
    if (expandedRowIdx->dims[0] != N * K)
        return op_fail_tiling(api, "expandedRowIdx length (%lld) must equal N*K = %lld*%lld",
                              (long long)expandedRowIdx->dims[0], (long long)N, (long long)K);
    OP_TRY(op_check_shape(api, "out", out, 2, nh));

    OP_TRY(op_check_not_null(api, "workspaceSize", workspaceSize));
    OP_TRY(op_check_not_null(api, "executor", executor));

    FinalizeParams p = {0, N, K, H, N * K, 0, E, 1};
    const aclTensor *ins[] = {expandedX, x1, x2Optional, bias, scales, expandedRowIdx, expandedExpertIdx};
    const aclTensor *outs[] = {out};
    return acl_host_executor_create(api, finalize_kernel, ins, 7, outs, 1, &p, sizeof p, 0, workspaceSize, executor);
}

aclnnStatus aclnnMoeFinalizeRouting(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                    aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeFinalizeRouting");
}
