/*
 * Shared helpers of the operator implementations (libopapi): argument checks that return the NPU's status
 * codes with a message naming the operator, the parameter and the rule, and dtype-generic element access so
 * that kernels read fp16/bf16/fp32 (any strides) as fp32 and store with round-to-nearest-even.
 *
 * Status code convention (spec/semantics.md, "Generic aclnn error codes"):
 *   161001 ACLNN_ERR_PARAM_NULLPTR  a required tensor (or out-parameter) is NULL
 *   161002 ACLNN_ERR_PARAM_INVALID  dtype / format not supported, or a data-dependent value out of range
 *   561002 ACLNN_ERR_INNER_TILING_ERROR  shape or attribute rule broken (the NPU's tiling/infershape checks)
 */
#ifndef ACLNN_MOE_OP_COMMON_H_
#define ACLNN_MOE_OP_COMMON_H_

#include <stdint.h>
#include <string.h>
#include "../common/host_internal.h"
#include "../common/half.h"

#define OP_TRY(expr)                          \
    do {                                      \
        aclnnStatus op_try_status_ = (expr);  \
        if (op_try_status_ != ACLNN_SUCCESS)  \
            return op_try_status_;            \
    } while (0)

/* ---- dtype lists for op_check_dtype, terminated by ACL_DT_UNDEFINED ---- */
extern const aclDataType OP_FLOAT_TYPES[]; /* float16, bfloat16, float32 */
extern const aclDataType OP_INDEX_TYPES[]; /* int32, int64 */
extern const aclDataType OP_INT32_TYPE[];
extern const aclDataType OP_FLOAT32_TYPE[];

/* ---- declarative checks (phase 1) ----
 * Each operator declares its tensor and int-array parameters once, in prototype order, in a static table; one call
 * checks them in CANN's order, each pass over every parameter before the next pass:
 *   1. handle liveness: a non-NULL handle must be a live aclCreateTensor / aclCreateIntArray result  -> 161002
 *      (checked against the live-handle sets, before anything is dereferenced)
 *   2. null: required entries (and those in `also_required`) must be given                          -> 161001
 *   3. dtype in the entry's list; 4. dtype equal to the entry's same_as reference (when both given)  -> 161002
 *   5. format ND (plain);  6. rank in the entry's rank mask;  7. element count < 2^63  -> 161002, shape_status
 * The per-operator shape and attribute rules follow as code. op_create_executor binds the tensors of the same
 * handle array (int arrays skipped) as inputs then outputs, in table order; the workspaceSize / executor NULL
 * checks live in acl_host_executor_create. */
#define OP_IN 0x0u
#define OP_OUT 0x1u
#define OP_OPTIONAL 0x2u          /* may be NULL (not bound: an absent optional tensor is a NULL executor slot) */
#define OP_INT_ARRAY 0x4u         /* an aclIntArray*: liveness and null only */
#define OP_OR_F32_WITH_BF16 0x8u  /* same_as, or float32 when the reference is bfloat16 (mixed precision) */
#define OP_RANK(r) (1u << (r))
#define OP_RANKS_FROM(r) ((uint16_t)(0x1ffu & ~((1u << (r)) - 1u))) /* rank r .. ACL_HOST_MAX_DIMS */
#define OP_NO_REF (-1)

typedef struct {
    const char *name;          /* the C parameter name, as in the prototype */
    uint8_t flags;             /* OP_IN / OP_OUT | OP_OPTIONAL | OP_INT_ARRAY | OP_OR_F32_WITH_BF16 */
    const aclDataType *dtypes; /* allowed dtypes (ACL_DT_UNDEFINED-terminated), NULL: any */
    int8_t same_as;            /* index of the entry whose dtype this one must have, OP_NO_REF: none */
    uint16_t ranks;            /* allowed ranks, OP_RANK(2) | OP_RANK(3); 0: any */
} OpParamSpec;

typedef struct {
    const char *api;           /* "aclnnMoeFoo" */
    aclnnStatus shape_status;  /* 561002 (generated ops' tiling) or 561103 (hand-written V2 op_api) */
    int n;
    const OpParamSpec *params;
} OpSpec;
#define OP_SPEC(api, status, table) {api, status, (int)(sizeof(table) / sizeof((table)[0])), table}

/* handles[i] is the argument of params[i]; also_required: bit i makes entry i required for this call.
 * Entries whose handle the caller set to NULL because the call ignores them are neither checked nor bound. */
aclnnStatus op_check_params(const OpSpec *op, const void *const *handles, uint32_t also_required);
aclnnStatus op_create_executor(const OpSpec *op, const void *const *handles, acl_host_kernel_fn kernel,
                               const void *params, size_t params_size, uint64_t workspace_size,
                               uint64_t *workspaceSize, aclOpExecutor **executor);
/* Kernel contract: acl_host_executor_run has checked that the workspace holds ex->workspace_size bytes of device
 * memory (non-NULL when > 0); kernels size their scratch from that, never from the caller's workspaceSize. */

/* a shape / attribute rule broken: op->shape_status with "api: rule" */
aclnnStatus op_fail_shape(const OpSpec *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* shape must equal dims[0..ndim) -> op->shape_status */
aclnnStatus op_check_shape_of(const OpSpec *op, const char *param, const aclTensor *t, int ndim, const int64_t *dims);

/* ---- limits shared by several operators (the NPU tilings') ---- */
#define OP_MAX_EXPERTS 2048 /* MoeGatingTopK expert count, MoeComputeExpertTokens numExperts */
#define OP_MAX_TOPK 512     /* MoeTokenPermuteWithEp / MoeTokenUnpermuteWithEp top-k */

/* ---- range attributes ([start, end] int arrays) ----
 * NULL or an empty array keeps *start / *end (the operator's fallback); otherwise the array must have 2 values,
 * both >= 0 (row positions; this also keeps every later `d - start` free of overflow) -> op->shape_status.
 * The handle must have passed op_check_params (live). */
aclnnStatus op_read_range(const OpSpec *op, const char *param, const aclIntArray *range, int64_t *start,
                          int64_t *end);

/* MoeTokenPermuteWithEp's window over the n sorted rows (n > 0, 0 <= start, end <= n): n_out = end - start, plus n
 * when that is <= 0, at most n. When n_out is n the kernel writes row d at d (its "no numOutTokens" path), so the
 * effective start is 0. */
static inline void op_permute_window(int64_t start, int64_t end, int64_t n, int64_t *eff_start, int64_t *n_out)
{
    int64_t m = end - start;
    if (m <= 0) m += n;
    if (m > n) m = n;
    if (m < 0) m = 0;
    *n_out = m;
    *eff_start = m == n ? 0 : start;
}

/* ---- overflow-checked shape arithmetic: 1 and *r = a*b (a, b >= 0), or 0 when it passes INT64_MAX ---- */
static inline int op_mul_ok(int64_t a, int64_t b, int64_t *r) { return !__builtin_mul_overflow(a, b, r); }

/* *n = product of dims[1..ndim) (the hidden size of a [rows, ...] tensor); 0 when it overflows */
static inline int op_trailing_numel(const aclTensor *t, int64_t *n)
{
    *n = 1;
    for (int d = 1; d < t->ndim; d++)
        if (!op_mul_ok(*n, t->dims[d], n)) return 0;
    return 1;
}

/* View a tensor as 2-D [product of dims[0..split), product of dims[split..ndim)] in *dst (a kernel-local
 * descriptor on the same storage); returns 0 when one of the two groups cannot be merged into one strided
 * dimension (a view whose steps differ), or its size overflows. */
int op_view2d(const aclTensor *src, int split, aclTensor *dst);

/* ---- single checks (phase 1); each returns ACLNN_SUCCESS or records a message and returns the status ---- */
aclnnStatus op_check_not_null(const char *api, const char *param, const void *ptr);
/* dtype must be one of `allowed` (terminated by ACL_DT_UNDEFINED) -> 161002 */
aclnnStatus op_check_dtype(const char *api, const char *param, const aclTensor *t, const aclDataType *allowed);
aclnnStatus op_check_same_dtype(const char *api, const char *param, const aclTensor *t, const char *ref_param,
                                const aclTensor *ref);
/* format must be ND (or a plain format: NCHW/NHWC/NCL/NCDHW/NC, which describe ND data) -> 161002 */
aclnnStatus op_check_format(const char *api, const char *param, const aclTensor *t);
aclnnStatus op_check_ndim(const char *api, const char *param, const aclTensor *t, int ndim);      /* -> 561002 */
/* shape must equal dims[0..ndim) -> 561002 */
aclnnStatus op_check_shape(const char *api, const char *param, const aclTensor *t, int ndim, const int64_t *dims);
/* formatted 561002 / 161002 helpers for rules on attributes */
aclnnStatus op_fail_tiling(const char *api, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
aclnnStatus op_fail_param(const char *api, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- parallel grain ----
 * The least work (elements read or written) worth a chunk of its own on the pool: about 20 us on the 2-core
 * development VM, where waking a sleeping worker costs the caller some 10 us; smaller chunks made the measured
 * operators slower, not faster. Kernels derive their grain (rows per chunk) from it. */
#define OP_PARALLEL_MIN_WORK 16384
/* the same for byte copies (row gathers): 256 KB per chunk at least (about 15-20 us from the caches here; with
 * 64 KB a one-token DeepSeek-V3 gather of 8 rows woke a worker and ran 1.5-2.5x slower than in the caller) */
#define OP_PARALLEL_MIN_BYTES (256 * 1024)

/* ---- cache sizes (read at run time) ----
 * op_cache_bytes(2 or 3): the L2 / L3 data (or unified) cache of cpu0 in bytes, from sysfs
 * (/sys/devices/system/cpu/cpu0/cache/index<N>/{level,type,size}), else sysconf(_SC_LEVEL*_CACHE_SIZE), else the
 * fallbacks below; probed once.
 * op_nt_min_bytes(): outputs of at least this many bytes are written with streaming stores (op_gather_rows):
 * ACLNN_MOE_NT_MIN_BYTES when set (bytes, K/M/G suffix), else OP_NT_L3_NUM/OP_NT_L3_DEN of the L3. Measured: on the
 * 2-core Cascade Lake (L3 35.8 MB) streaming stores made 29 MB and 117 MB gathers 10-35 % faster and 7-15 MB ones
 * 1.5-2x slower (24 MB was the fixed threshold then). On the 2-core EPYC (Milan) KVM guest, L3 32 MB, under load,
 * gathers of H=7168 bf16 rows followed by a read of the output (the consumer), plain / streaming, median of 21:
 * 5 MB 0.34 / 0.66 ms, 7 MB 0.67 / 1.07 ms, 10 MB 7.7 / 6.9 ms, 12 MB 7.3 / 4.5 ms, 15 MB 11.9 / 6.9 ms,
 * 29 MB 24 / 23.6 ms, 117 MB 73 / 67 ms: a guest sees only part of a shared L3, and plain stores fall off a
 * cliff from about a quarter of it; hence L3/4 (8 MB here) by default.
 * op_set_nt_min_bytes: the same, set by a benchmark or test (not exported). */
#define OP_FALLBACK_L2_BYTES ((uint64_t)1 << 20)
#define OP_FALLBACK_L3_BYTES ((uint64_t)32 << 20)
#define OP_NT_L3_NUM 1
#define OP_NT_L3_DEN 4
uint64_t op_cache_bytes(int level);
uint64_t op_nt_min_bytes(void);
void op_set_nt_min_bytes(uint64_t bytes);
/* bytes of the next source row a gather prefetches (4096; 0: none): a benchmark hook, not exported */
void op_set_gather_prefetch_bytes(size_t bytes);

/* ---- run-time ISA dispatch ----
 * SIMD kernels are compiled with target attributes (the build stays portable, no -march) and chosen at run time;
 * each has a portable twin doing the same IEEE operations in the same order, so both give the same bits.
 * -DACLNN_MOE_NO_X86_SIMD builds the portable paths only (to test them on x86). */
#if (defined(__x86_64__) || defined(__i386__)) && !defined(ACLNN_MOE_NO_X86_SIMD)
#define OP_X86_SIMD 1
#include <immintrin.h>
#define OP_TARGET_AVX2 __attribute__((target("avx2,f16c")))
#define OP_TARGET_AVX512 __attribute__((target("avx2,f16c,avx512f,avx512bw,avx512dq,avx512vl")))
#else
#define OP_X86_SIMD 0
#endif
int op_cpu_avx2(void);   /* AVX2 + F16C usable (always 0 without OP_X86_SIMD) */
int op_cpu_avx512(void); /* AVX-512 F/BW/DQ/VL usable (always 0 without OP_X86_SIMD) */

/* ---- element access (phase 2) ---- */
static inline int64_t op_elem_size(const aclTensor *t) { return acl_host_dtype_size(t->dtype); }

/* address of element with the given multi-index */
static inline char *op_ptr(const aclTensor *t, const int64_t *idx)
{
    int64_t off = t->offset;
    for (int d = 0; d < t->ndim; d++) off += idx[d] * t->strides[d];
    return (char *)t->data + off * op_elem_size(t);
}

/* address of element (row, col) of a 2-D tensor, or of element i of a 1-D tensor (row = i, col ignored) */
static inline char *op_ptr2(const aclTensor *t, int64_t row, int64_t col)
{
    int64_t off = t->offset + row * t->strides[0] + (t->ndim > 1 ? col * t->strides[1] : 0);
    return (char *)t->data + off * op_elem_size(t);
}

/* element stride along a row: that of the last dim of a 2-D (or higher) tensor, 1 for a 1-D one */
static inline int64_t op_row_stride(const aclTensor *t) { return t->ndim > 1 ? t->strides[t->ndim - 1] : 1; }

/* fp16 rounding of an fp32 value: exact fp16 arithmetic on fp16 operands (24 >= 2*11 + 2 significand bits) */
static inline float op_r16(float v) { return host_f16_to_f32(host_f32_to_f16(v)); }

/* flat (row-major logical) index -> element address, any rank */
char *op_ptr_flat(const aclTensor *t, int64_t flat);

/* read a float element (fp32/fp16/bf16) as fp32; store fp32 with RNE */
static inline float op_load_f(aclDataType dt, const void *p)
{
    switch (dt) {
    case ACL_FLOAT16: return host_f16_to_f32(*(const uint16_t *)p);
    case ACL_BF16: return host_bf16_to_f32(*(const uint16_t *)p);
    case ACL_DOUBLE: return (float)*(const double *)p;
    default: return *(const float *)p;
    }
}
static inline void op_store_f(aclDataType dt, void *p, float v)
{
    switch (dt) {
    case ACL_FLOAT16: *(uint16_t *)p = host_f32_to_f16(v); break;
    case ACL_BF16: *(uint16_t *)p = host_f32_to_bf16(v); break;
    default: *(float *)p = v; break;
    }
}
/* read an integer element (int32/int64/int8/uint8/int16/bool) as int64 */
static inline int64_t op_load_i(aclDataType dt, const void *p)
{
    switch (dt) {
    case ACL_INT64: return *(const int64_t *)p;
    case ACL_INT32: return *(const int32_t *)p;
    case ACL_INT16: return *(const int16_t *)p;
    case ACL_INT8: return *(const int8_t *)p;
    case ACL_UINT8: case ACL_BOOL: return *(const uint8_t *)p;
    default: return 0;
    }
}
static inline void op_store_i(aclDataType dt, void *p, int64_t v)
{
    switch (dt) {
    case ACL_INT64: *(int64_t *)p = v; break;
    case ACL_INT32: *(int32_t *)p = (int32_t)v; break;
    case ACL_INT16: *(int16_t *)p = (int16_t)v; break;
    default: *(int8_t *)p = (int8_t)v; break;
    }
}

/* Row helpers for 2-D tensors (1-D: row i is the single element i, n must be 1).
 * Fast paths when the row is contiguous (last stride 1). */
/* n elements of dtype dt, s elements apart, from / to base, as fp32 (stores round to nearest even) */
void op_load_seg_f32(aclDataType dt, const void *base, int64_t s, int64_t n, float *dst);
void op_store_seg_f32(aclDataType dt, void *base, int64_t s, int64_t n, const float *src);
static inline void op_load_row_f32(const aclTensor *t, int64_t row, int64_t n, float *dst)
{
    op_load_seg_f32(t->dtype, op_ptr2(t, row, 0), op_row_stride(t), n, dst);
}
static inline void op_store_row_f32(const aclTensor *t, int64_t row, int64_t n, const float *src)
{
    op_store_seg_f32(t->dtype, op_ptr2(t, row, 0), op_row_stride(t), n, src);
}
/* copy row `src_row` of `src` into row `dst_row` of `dst` (same dtype, any element size, n elements) */
void op_copy_row(const aclTensor *dst, int64_t dst_row, const aclTensor *src, int64_t src_row, int64_t n);
/* zero row of a 2-D tensor */
void op_zero_row(const aclTensor *t, int64_t row, int64_t n);

/* ---- weighted row sums (MoeFinalizeRouting, MoeTokenUnpermuteWithEp) ----
 * out[0..n) = x1 + x2 + the terms in order, term = (x + bias) * scale, all rows contiguous in dtype dt; x1, x2
 * and bias may be NULL (the sum then starts from 0). Computed in fp32 as acc = acc + ((x + bias) * scale), one
 * operation at a time, and rounded once to nearest even on the store; with fp16_native (fp16 only) every one of
 * those operations is rounded to fp16, as the NPU's native fp16 arithmetic does. Vectorised with AVX-512 or
 * AVX2/F16C when the CPU has them (the rows are walked in lockstep, the accumulator stays in a register); every
 * path gives the same bits (but for the sign and payload of a NaN result, which C leaves to the compiler). */
typedef struct {
    const void *x;    /* the row */
    const void *bias; /* NULL, or a row added to x before the scale */
    float scale;
} OpRowTerm;
#define OP_ROW_MAX_TERMS 64 /* callers keep their terms on the stack up to this count */
void op_row_weighted_sum(aclDataType dt, int fp16_native, void *out, const void *x1, const void *x2,
                         const OpRowTerm *terms, int64_t nterms, int64_t n);

/* ---- row gathers (MoeInitRouting, MoeInitRoutingV2, MoeTokenPermuteWithEp) ----
 * dst row r = src row src_row(ctx, r) for r in [0, nrows), or zeros where src_row returns -1; dst and src are 2-D
 * views of the same dtype with h elements per row, any strides. Parallel over the rows. Large contiguous outputs
 * are written with non-temporal stores on x86-64: no read-for-ownership of the destination lines, so less DRAM
 * traffic (the copies are bytes, so every path gives the same result). */
typedef int64_t (*op_row_source_fn)(const void *ctx, int64_t r);
void op_gather_rows(const aclTensor *dst, const aclTensor *src, int64_t nrows, int64_t h, op_row_source_fn src_row,
                    const void *ctx);

/* Whole-tensor index reads: gather every element (row-major logical order) of an integer tensor into int64 */
void op_read_all_i64(const aclTensor *t, int64_t *dst);
void op_write_all_i64(const aclTensor *t, const int64_t *src);

/* Stable sort helpers used by the routing ops: sorts keys ascending, ties by original position (stable),
 * producing the permutation `order` (order[j] = original position of the j-th smallest key).
 * `scratch` must hold 2*n int64 values. Counting or radix sort over the key range [0, key_limit). */
void op_stable_argsort_i64(const int64_t *keys, int64_t n, int64_t key_limit, int64_t *order, int64_t *scratch);

#endif /* ACLNN_MOE_OP_COMMON_H_ */
