/*
 * Shared math kernels of the gating operators (MoeGatingTopK today; MoeGatingTopKSoftmax and the grad operators
 * reuse them): the correctly rounded exp, sigmoid and softmax on fp32 rows, and the top-k on 64-bit ordering keys.
 * Every function has a portable path and, where it pays, an AVX-512 twin chosen at run time that does the same
 * IEEE operations in the same order: both give the same bits.
 */
#ifndef ACLNN_MOE_OP_MATH_H_
#define ACLNN_MOE_OP_MATH_H_

#include <stdint.h>
#include <string.h>
#include "op_common.h"

/* Ordering: every score is mapped to a 64-bit key (order-preserving float bits in the high half, the inverted
 * index in the low half), so "larger key" is exactly "larger score, then lower index": a strict total order in
 * which NaN ranks below -inf, like numpy's argsort(-x, kind='stable'). */
/* ---- ordering keys ---- */
static inline uint32_t op_order_bits(float v)
{
    float z = v + 0.0f; /* -0 -> +0: equal scores must tie */
    uint32_t u;
    memcpy(&u, &z, sizeof u);
    uint32_t neg = (uint32_t)((int32_t)u >> 31);       /* all ones for negative scores */
    uint32_t key = u ^ (neg | 0x80000000u);             /* order-preserving, branch-free */
    return v == v ? key : 0u;                           /* NaN: below everything, -inf included */
}

static inline uint64_t op_key_of(uint32_t order_bits, int64_t idx)
{
    return ((uint64_t)order_bits << 32) | (uint64_t)(0xFFFFFFFFu - (uint32_t)idx);
}

static inline uint64_t op_key(float v, int64_t idx) { return op_key_of(op_order_bits(v), idx); }

static inline int64_t op_key_index(uint64_t key) { return (int64_t)(0xFFFFFFFFu - (uint32_t)(key & 0xFFFFFFFFu)); }

/* top-k by insertion into a sorted buffer up to this k, else a radix sort */
#define OP_TOPK_INSERTION_MAX_K 32
/* Rearranges a[0..n) so that a[0..k) holds the k largest keys in descending order. The keys must be distinct and
 * in ascending index order. buf must hold n keys. */
void op_topk_desc(uint64_t *a, int64_t n, int64_t k, uint64_t *buf);

/* ---- exp ----
 * The reference rounds a float64 exp to float32 and the ranking compares scores bit for bit, so exp must be the
 * correctly rounded one, not just within an ulp: e^x = 2^(k/32) * e^r with 2^(j/32) from a table, |r| <= ln2/64
 * (Cody-Waite split of ln2/32) and a degree-6 Taylor polynomial for e^r - 1, all in double (relative error about
 * 2^-52), rounded once to float. Checked over all 2^32 float inputs: it equals glibc's float64 exp rounded to
 * float32 for every one (NaN aside), where glibc's expf differs from it for about 170,000. The AVX-512 twin does
 * the same double operations in the same order (same bits, also checked exhaustively); the table lookup becomes
 * two two-source permutes and a blend. */
#define OP_EXP_LO (-112.0) /* below: exp rounds to float 0 (and 2^k stays a normal double) */
#define OP_EXP_HI 100.0    /* above: exp rounds to float inf */
#define OP_EXP_INV_LN2_N 0x1.71547652b82fep+5 /* 32 / ln2 */
#define OP_EXP_LN2_N_HI 0x1.62e42fee00000p-6  /* ln2 / 32, high 32 bits: k * HI is exact */
#define OP_EXP_LN2_N_LO 0x1.a39ef35793c76p-38 /* ln2 / 32 - HI */
#define OP_EXP_SHIFT 0x1.8p52                 /* x + SHIFT - SHIFT rounds x to an integer */
#define OP_EXP_SHIFT_BITS 0x4338000000000000ull
#define OP_EXP_C2 0.5
#define OP_EXP_C3 (1.0 / 6.0)
#define OP_EXP_C4 (1.0 / 24.0)
#define OP_EXP_C5 (1.0 / 120.0)
#define OP_EXP_C6 (1.0 / 720.0)

extern const double op_exp_tab[32]; /* 2^(j/32), correctly rounded */

static inline float op_exp_f32(float xf)
{
    double x = xf;
    x = OP_EXP_LO > x ? OP_EXP_LO : x; /* NaN passes (and is replaced at the end) */
    x = OP_EXP_HI < x ? OP_EXP_HI : x;
    double kd = x * OP_EXP_INV_LN2_N + OP_EXP_SHIFT;
    uint64_t kbits;
    memcpy(&kbits, &kd, sizeof kbits);
    kd = kd - OP_EXP_SHIFT;
    const double r = (x - kd * OP_EXP_LN2_N_HI) - kd * OP_EXP_LN2_N_LO;
    double u = OP_EXP_C5 + r * OP_EXP_C6;
    u = OP_EXP_C4 + r * u;
    u = OP_EXP_C3 + r * u;
    u = OP_EXP_C2 + r * u;
    const double q = r + (r * r) * u; /* e^r - 1 */
    const int64_t k = (int64_t)(kbits - OP_EXP_SHIFT_BITS);
    uint64_t sbits;
    memcpy(&sbits, &op_exp_tab[k & 31], sizeof sbits);
    sbits += (uint64_t)(k >> 5) << 52; /* times 2^(k div 32) */
    double sc;
    memcpy(&sc, &sbits, sizeof sc);
    const float y = (float)(sc + sc * q);
    return xf != xf ? xf + xf : y;
}

/* ---- scores, in place on rows already in fp32 ---- */
void op_sigmoid_f32(float *v, int64_t n);      /* v = 1 / (1 + exp(-v)) */
void op_softmax_exp_f32(float *v, int64_t n);  /* v = exp(v - max v), max by "if (v > m) m = v" from v[0] */
#define OP_SOFTMAX_ROWS 4 /* rows finished together: their serial sums overlap */
/* v[r] *= 1 / sum(v[r]) for n <= OP_SOFTMAX_ROWS rows, each sum left to right */
void op_softmax_finish(float *const *v, int n, int64_t e);
/* sigmoid of every bf16 / fp16 value (indexed by its bits), built once per process; NULL for other dtypes */
const float *op_sigmoid_table(aclDataType dt);

#endif /* ACLNN_MOE_OP_MATH_H_ */
