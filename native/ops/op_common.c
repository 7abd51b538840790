/* Shared helpers of the operator implementations; see op_common.h. */
/* the row sums below must round every operation as written (bit-exact references): never fuse into an FMA */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "op_common.h"

/* ---------------------------------------------------------------- checks */

const aclDataType OP_FLOAT_TYPES[] = {ACL_FLOAT16, ACL_BF16, ACL_FLOAT, ACL_DT_UNDEFINED};
const aclDataType OP_INDEX_TYPES[] = {ACL_INT32, ACL_INT64, ACL_DT_UNDEFINED};
const aclDataType OP_INT32_TYPE[] = {ACL_INT32, ACL_DT_UNDEFINED};
const aclDataType OP_FLOAT32_TYPE[] = {ACL_FLOAT, ACL_DT_UNDEFINED};

aclnnStatus op_check_not_null(const char *api, const char *param, const void *ptr)
{
    if (ptr) return ACLNN_SUCCESS;
    return acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "%s: %s must not be a null pointer", api, param);
}

aclnnStatus op_check_dtype(const char *api, const char *param, const aclTensor *t, const aclDataType *allowed)
{
    char list[256] = "";
    size_t used = 0;
    for (const aclDataType *a = allowed; *a != ACL_DT_UNDEFINED; a++) {
        if (t->dtype == *a) return ACLNN_SUCCESS;
        int n = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", acl_host_dtype_name(*a));
        if (n > 0 && used + (size_t)n < sizeof list) used += (size_t)n;
    }
    return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: %s has dtype %s, expected one of [%s]", api, param,
                          acl_host_dtype_name(t->dtype), list);
}

aclnnStatus op_check_same_dtype(const char *api, const char *param, const aclTensor *t, const char *ref_param,
                                const aclTensor *ref)
{
    if (t->dtype == ref->dtype) return ACLNN_SUCCESS;
    return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: %s has dtype %s but must have the dtype of %s (%s)", api,
                          param, acl_host_dtype_name(t->dtype), ref_param, acl_host_dtype_name(ref->dtype));
}

aclnnStatus op_check_format(const char *api, const char *param, const aclTensor *t)
{
    switch (t->format) {
    case ACL_FORMAT_ND: case ACL_FORMAT_NCHW: case ACL_FORMAT_NHWC: case ACL_FORMAT_NCL: case ACL_FORMAT_NCDHW:
    case ACL_FORMAT_NC: case ACL_FORMAT_HWCN: case ACL_FORMAT_NDHWC:
        return ACLNN_SUCCESS;
    default:
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: %s has format %d; only ND (plain) formats are supported",
                              api, param, (int)t->format);
    }
}

aclnnStatus op_check_ndim(const char *api, const char *param, const aclTensor *t, int ndim)
{
    if (t->ndim == ndim) return ACLNN_SUCCESS;
    return acl_host_error(ACLNN_ERR_INNER_TILING_ERROR, "%s: %s must be %d-D, got %d-D", api, param, ndim, t->ndim);
}

static void format_shape(char *buf, size_t cap, int ndim, const int64_t *dims)
{
    size_t used = 0;
    buf[0] = 0;
    used += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
}

static aclnnStatus check_shape(aclnnStatus status, const char *api, const char *param, const aclTensor *t, int ndim,
                               const int64_t *dims)
{
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->dims[i] == dims[i];
    if (same) return ACLNN_SUCCESS;
    char want[160], got[160];
    format_shape(want, sizeof want, ndim, dims);
    format_shape(got, sizeof got, t->ndim, t->dims);
    return acl_host_error(status, "%s: %s must have shape %s, got %s", api, param, want, got);
}

aclnnStatus op_check_shape(const char *api, const char *param, const aclTensor *t, int ndim, const int64_t *dims)
{
    return check_shape(ACLNN_ERR_INNER_TILING_ERROR, api, param, t, ndim, dims);
}

aclnnStatus op_check_shape_of(const OpSpec *op, const char *param, const aclTensor *t, int ndim, const int64_t *dims)
{
    return check_shape(op->shape_status, op->api, param, t, ndim, dims);
}

static aclnnStatus fail(aclnnStatus status, const char *api, const char *fmt, va_list ap)
{
    char rule[768];
    vsnprintf(rule, sizeof rule, fmt, ap);
    return acl_host_error(status, "%s: %s", api, rule);
}

aclnnStatus op_fail_shape(const OpSpec *op, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    aclnnStatus st = fail(op->shape_status, op->api, fmt, ap);
    va_end(ap);
    return st;
}

/* "2-D", "1-D or 2-D", "at least 2-D" */
static void format_ranks(char *buf, size_t cap, uint16_t mask)
{
    int lo = -1, hi = -1, count = 0;
    for (int r = 0; r <= ACL_HOST_MAX_DIMS; r++)
        if (mask & (1u << r)) { if (lo < 0) lo = r; hi = r; count++; }
    if (count > 2 && hi == ACL_HOST_MAX_DIMS && count == hi - lo + 1) { snprintf(buf, cap, "at least %d-D", lo); return; }
    size_t used = 0;
    buf[0] = 0;
    for (int r = lo; r <= hi && used < cap; r++)
        if (mask & (1u << r))
            used += (size_t)snprintf(buf + used, cap - used, "%s%d-D", used ? " or " : "", r);
}

aclnnStatus op_check_params(const OpSpec *op, const void *const *h, uint32_t also_required)
{
    const char *api = op->api;
    const OpParamSpec *ps = op->params;
    /* 1. liveness: nothing is dereferenced before every given handle is known to be live */
    for (int i = 0; i < op->n; i++) {
        if (!h[i]) continue;
        const int live = (ps[i].flags & OP_INT_ARRAY) ? acl_host_int_array_live((const aclIntArray *)h[i])
                                                      : acl_host_tensor_live((const aclTensor *)h[i]);
        if (!live)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: %s (%p) is not a live %s (destroyed or never created)",
                                  api, ps[i].name, h[i], (ps[i].flags & OP_INT_ARRAY) ? "aclIntArray" : "aclTensor");
    }
    for (int i = 0; i < op->n; i++) /* 2. null */
        if (!h[i] && (!(ps[i].flags & OP_OPTIONAL) || (also_required >> i & 1u)))
            OP_TRY(op_check_not_null(api, ps[i].name, h[i]));
    for (int i = 0; i < op->n; i++) /* 3. dtype lists */
        if (h[i] && !(ps[i].flags & OP_INT_ARRAY) && ps[i].dtypes)
            OP_TRY(op_check_dtype(api, ps[i].name, (const aclTensor *)h[i], ps[i].dtypes));
    for (int i = 0; i < op->n; i++) { /* 4. same-dtype groups (skipped when the reference is absent) */
        const int r = ps[i].same_as;
        if (!h[i] || r < 0 || !h[r]) continue;
        const aclTensor *t = (const aclTensor *)h[i], *ref = (const aclTensor *)h[r];
        if ((ps[i].flags & OP_OR_F32_WITH_BF16) && ref->dtype == ACL_BF16 && t->dtype == ACL_FLOAT) continue;
        OP_TRY(op_check_same_dtype(api, ps[i].name, t, ps[r].name, ref));
    }
    for (int i = 0; i < op->n; i++) /* 5. format */
        if (h[i] && !(ps[i].flags & OP_INT_ARRAY)) OP_TRY(op_check_format(api, ps[i].name, (const aclTensor *)h[i]));
    for (int i = 0; i < op->n; i++) { /* 6. rank */
        if (!h[i] || (ps[i].flags & OP_INT_ARRAY) || !ps[i].ranks) continue;
        const aclTensor *t = (const aclTensor *)h[i];
        if (t->ndim >= 0 && t->ndim <= ACL_HOST_MAX_DIMS && (ps[i].ranks >> t->ndim & 1u)) continue;
        char want[64];
        format_ranks(want, sizeof want, ps[i].ranks);
        return acl_host_error(op->shape_status, "%s: %s must be %s, got %d-D", api, ps[i].name, want, t->ndim);
    }
    for (int i = 0; i < op->n; i++) { /* 7. element counts fit int64, so that shape arithmetic on them cannot wrap */
        if (!h[i] || (ps[i].flags & OP_INT_ARRAY)) continue;
        const aclTensor *t = (const aclTensor *)h[i];
        int64_t n = 1;
        for (int d = 0; d < t->ndim; d++)
            if (!op_mul_ok(n, t->dims[d], &n))
                return acl_host_error(op->shape_status, "%s: %s has more than 2^63 elements", api, ps[i].name);
        /* an output with stride 0 on a dim of size > 1 writes its elements over each other (and lets a tiny block
         * stand for an endless loop of work); inputs may broadcast */
        for (int d = 0; (ps[i].flags & OP_OUT) && d < t->ndim; d++)
            if (t->strides[d] == 0 && t->dims[d] > 1)
                return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: %s has stride 0 on dim %d (size %lld): an output "
                                      "must not overlap itself", api, ps[i].name, d, (long long)t->dims[d]);
    }
    return ACLNN_SUCCESS;
}

aclnnStatus op_read_range(const OpSpec *op, const char *param, const aclIntArray *range, int64_t *start,
                          int64_t *end)
{
    if (!range || range->size == 0) return ACLNN_SUCCESS;
    if (range->size != 2)
        return op_fail_shape(op, "%s must have 2 elements [start, end], got %llu", param,
                             (unsigned long long)range->size);
    if (range->values[0] < 0 || range->values[1] < 0)
        return op_fail_shape(op, "%s [%lld, %lld]: start and end must not be negative", param,
                             (long long)range->values[0], (long long)range->values[1]);
    *start = range->values[0];
    *end = range->values[1];
    return ACLNN_SUCCESS;
}

aclnnStatus op_create_executor(const OpSpec *op, const void *const *h, acl_host_kernel_fn kernel, const void *params,
                               size_t params_size, uint64_t workspace_size, uint64_t *workspaceSize,
                               aclOpExecutor **executor)
{
    const aclTensor *ins[ACL_HOST_MAX_TENSORS], *outs[ACL_HOST_MAX_TENSORS];
    int ni = 0, no = 0;
    for (int i = 0; i < op->n; i++) {
        if (op->params[i].flags & OP_INT_ARRAY) continue;
        if (op->params[i].flags & OP_OUT) {
            if (no < ACL_HOST_MAX_TENSORS) outs[no] = (const aclTensor *)h[i];
            no++;
        } else {
            if (ni < ACL_HOST_MAX_TENSORS) ins[ni] = (const aclTensor *)h[i];
            ni++;
        }
    }
    return acl_host_executor_create(op->api, kernel, ins, ni, outs, no, params, params_size, workspace_size,
                                    workspaceSize, executor);
}

aclnnStatus op_fail_tiling(const char *api, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    aclnnStatus st = fail(ACLNN_ERR_INNER_TILING_ERROR, api, fmt, ap);
    va_end(ap);
    return st;
}

aclnnStatus op_fail_param(const char *api, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    aclnnStatus st = fail(ACLNN_ERR_PARAM_INVALID, api, fmt, ap);
    va_end(ap);
    return st;
}

/* ---------------------------------------------------------------- run-time ISA dispatch */

#if OP_X86_SIMD
static int cpu_flags(void)
{
    static _Atomic int cached = -1; /* racing first calls compute the same value */
    int f0 = atomic_load_explicit(&cached, memory_order_relaxed);
    if (f0 >= 0) return f0;
    {
        __builtin_cpu_init();
        int f = 0;
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c")) f |= 1;
        if ((f & 1) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
            f |= 2;
        atomic_store_explicit(&cached, f, memory_order_relaxed);
        return f;
    }
}
int op_cpu_avx2(void) { return cpu_flags() & 1; }
int op_cpu_avx512(void) { return (cpu_flags() >> 1) & 1; }
#else
int op_cpu_avx2(void) { return 0; }
int op_cpu_avx512(void) { return 0; }
#endif

/* ---------------------------------------------------------------- cache sizes */

/* a sysfs cache size ("32768K", "1M", "512") in bytes, 0 when unreadable */
static uint64_t read_size_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char buf[64] = {0};
    const size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *end = NULL;
    unsigned long long v = strtoull(buf, &end, 10);
    if (end == buf) return 0;
    if (*end == 'K' || *end == 'k') v <<= 10;
    else if (*end == 'M' || *end == 'm') v <<= 20;
    else if (*end == 'G' || *end == 'g') v <<= 30;
    return (uint64_t)v;
}

/* the data (or unified) cache of a level, from sysfs (cpu0), else sysconf; 0 when neither tells */
static uint64_t probe_cache_bytes(int level)
{
    uint64_t best = 0;
    for (int i = 0; i < 16; i++) {
        char path[128], type[32] = {0};
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        int lv = 0;
        const int got = fscanf(f, "%d", &lv);
        fclose(f);
        if (got != 1 || lv != level) continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        if ((f = fopen(path, "r"))) {
            if (fscanf(f, "%31s", type) != 1) type[0] = 0;
            fclose(f);
        }
        if (strcmp(type, "Instruction") == 0) continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        const uint64_t b = read_size_file(path);
        if (b > best) best = b;
    }
#if defined(_SC_LEVEL3_CACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE)
    if (!best) {
        const long v = sysconf(level == 3 ? _SC_LEVEL3_CACHE_SIZE : level == 2 ? _SC_LEVEL2_CACHE_SIZE
                                                                               : _SC_LEVEL1_DCACHE_SIZE);
        if (v > 0) best = (uint64_t)v;
    }
#endif
    return best;
}

static _Atomic uint64_t g_l2_bytes, g_l3_bytes, g_nt_min_bytes; /* 0: not probed yet (racing probes agree) */

uint64_t op_cache_bytes(int level)
{
    _Atomic uint64_t *slot = level == 2 ? &g_l2_bytes : &g_l3_bytes;
    uint64_t v = atomic_load_explicit(slot, memory_order_relaxed);
    if (v) return v;
    v = probe_cache_bytes(level);
    if (!v) v = level == 2 ? OP_FALLBACK_L2_BYTES : OP_FALLBACK_L3_BYTES;
    atomic_store_explicit(slot, v, memory_order_relaxed);
    return v;
}

/* ACLNN_MOE_NT_MIN_BYTES (bytes, K/M/G suffix allowed; "0" or a huge value turn streaming stores always on /
 * off), else OP_NT_L3_NUM / OP_NT_L3_DEN of the L3 */
uint64_t op_nt_min_bytes(void)
{
    uint64_t v = atomic_load_explicit(&g_nt_min_bytes, memory_order_relaxed);
    if (v) return v;
    const char *env = getenv("ACLNN_MOE_NT_MIN_BYTES");
    int have = 0;
    if (env && *env) {
        char *end = NULL;
        unsigned long long e = strtoull(env, &end, 10);
        if (end != env) {
            if (*end == 'K' || *end == 'k') e <<= 10;
            else if (*end == 'M' || *end == 'm') e <<= 20;
            else if (*end == 'G' || *end == 'g') e <<= 30;
            v = e ? (uint64_t)e : 1u;
            have = 1;
        }
    }
    if (!have) v = op_cache_bytes(3) / OP_NT_L3_DEN * OP_NT_L3_NUM;
    if (!v) v = 1;
    atomic_store_explicit(&g_nt_min_bytes, v, memory_order_relaxed);
    return v;
}

void op_set_nt_min_bytes(uint64_t bytes) { atomic_store_explicit(&g_nt_min_bytes, bytes ? bytes : 1u, memory_order_relaxed); }

/* ---------------------------------------------------------------- element access */

char *op_ptr_flat(const aclTensor *t, int64_t flat)
{
    int64_t off = t->offset;
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t n = t->dims[d];
        if (n == 0) break;
        off += (flat % n) * t->strides[d];
        flat /= n;
    }
    return (char *)t->data + off * op_elem_size(t);
}

/* dims [a, b) of t as one dimension of *size elements *stride apart; 0 if they are not equally spaced */
static int merge_dims(const aclTensor *t, int a, int b, int64_t *size, int64_t *stride)
{
    int64_t n = 1, inner = 1;
    for (int d = a; d < b; d++)
        if (!op_mul_ok(n, t->dims[d], &n)) return 0;
    for (int d = b - 1; d >= a; d--)
        if (t->dims[d] != 1) { inner = t->strides[d]; break; }
    if (n != 0) {
        uint64_t expect = (uint64_t)inner;
        for (int d = b - 1; d >= a; d--) {
            if (t->dims[d] == 1) continue;
            if ((uint64_t)t->strides[d] != expect) return 0;
            expect = (uint64_t)t->strides[d] * (uint64_t)t->dims[d]; /* wraps only past the last dim used */
        }
    }
    *size = n;
    *stride = inner;
    return 1;
}

int op_view2d(const aclTensor *src, int split, aclTensor *dst)
{
    *dst = *src;
    if (src->ndim == 2 && split == 1) return 1;
    if (split < 1 || split >= src->ndim) return 0;
    int64_t rows, rs, cols, cs;
    if (!merge_dims(src, 0, split, &rows, &rs) || !merge_dims(src, split, src->ndim, &cols, &cs)) return 0;
    dst->ndim = 2;
    dst->dims[0] = rows;
    dst->strides[0] = rs;
    dst->dims[1] = cols;
    dst->strides[1] = cs;
    return 1;
}

void op_load_seg_f32(aclDataType dt, const void *base, int64_t s, int64_t n, float *dst)
{
    const char *p = base;
    if (s == 1) {
        switch (dt) {
        case ACL_FLOAT: memcpy(dst, p, (size_t)n * 4); return;
        case ACL_FLOAT16: for (int64_t j = 0; j < n; j++) dst[j] = host_f16_to_f32(((const uint16_t *)p)[j]); return;
        case ACL_BF16: for (int64_t j = 0; j < n; j++) dst[j] = host_bf16_to_f32(((const uint16_t *)p)[j]); return;
        default: break;
        }
    }
    const int64_t step = s * acl_host_dtype_size(dt);
    for (int64_t j = 0; j < n; j++) dst[j] = op_load_f(dt, p + j * step);
}

void op_store_seg_f32(aclDataType dt, void *base, int64_t s, int64_t n, const float *src)
{
    char *p = base;
    if (s == 1) {
        switch (dt) {
        case ACL_FLOAT: memcpy(p, src, (size_t)n * 4); return;
        case ACL_FLOAT16: for (int64_t j = 0; j < n; j++) ((uint16_t *)p)[j] = host_f32_to_f16(src[j]); return;
        case ACL_BF16: for (int64_t j = 0; j < n; j++) ((uint16_t *)p)[j] = host_f32_to_bf16(src[j]); return;
        default: break;
        }
    }
    const int64_t step = s * acl_host_dtype_size(dt);
    for (int64_t j = 0; j < n; j++) op_store_f(dt, p + j * step, src[j]);
}

void op_copy_row(const aclTensor *dst, int64_t dst_row, const aclTensor *src, int64_t src_row, int64_t n)
{
    char *d = op_ptr2(dst, dst_row, 0);
    const char *s = op_ptr2(src, src_row, 0);
    int64_t es = op_elem_size(dst), ds = op_row_stride(dst), ss = op_row_stride(src);
    if (ds == 1 && ss == 1) {
        memcpy(d, s, (size_t)(n * es));
        return;
    }
    for (int64_t j = 0; j < n; j++) memcpy(d + j * ds * es, s + j * ss * es, (size_t)es);
}

void op_zero_row(const aclTensor *t, int64_t row, int64_t n)
{
    char *d = op_ptr2(t, row, 0);
    int64_t es = op_elem_size(t), s = op_row_stride(t);
    if (s == 1) {
        memset(d, 0, (size_t)(n * es));
        return;
    }
    for (int64_t j = 0; j < n; j++) memset(d + j * s * es, 0, (size_t)es);
}

void op_read_all_i64(const aclTensor *t, int64_t *dst)
{
    int64_t n = acl_host_numel(t);
    if (acl_host_is_contiguous(t)) {
        const char *p = (const char *)t->data + t->offset * op_elem_size(t);
        if (t->dtype == ACL_INT64) { memcpy(dst, p, (size_t)n * 8); return; }
        if (t->dtype == ACL_INT32) { for (int64_t i = 0; i < n; i++) dst[i] = ((const int32_t *)p)[i]; return; }
    }
    for (int64_t i = 0; i < n; i++) dst[i] = op_load_i(t->dtype, op_ptr_flat(t, i));
}

void op_write_all_i64(const aclTensor *t, const int64_t *src)
{
    int64_t n = acl_host_numel(t);
    if (acl_host_is_contiguous(t)) {
        char *p = (char *)t->data + t->offset * op_elem_size(t);
        if (t->dtype == ACL_INT64) { memcpy(p, src, (size_t)n * 8); return; }
        if (t->dtype == ACL_INT32) { for (int64_t i = 0; i < n; i++) ((int32_t *)p)[i] = (int32_t)src[i]; return; }
    }
    for (int64_t i = 0; i < n; i++) op_store_i(t->dtype, op_ptr_flat(t, i), src[i]);
}

/* ---------------------------------------------------------------- stable argsort */

/* Counting sort when the key range is small next to n, else an LSD radix sort on 11-bit digits. Both are
 * stable, so equal keys keep their original order: the lower position wins, as the official goldens'
 * stable argsort does. Keys must lie in [0, key_limit). */
void op_stable_argsort_i64(const int64_t *keys, int64_t n, int64_t key_limit, int64_t *order, int64_t *scratch)
{
    if (n <= 0) return;
    if (key_limit <= n + 4096) {
        int64_t *count = scratch; /* key_limit + 1 <= 2n fits in scratch when n >= 4096; else allocate */
        int64_t *heap = NULL;
        if (key_limit + 1 > 2 * n) {
            heap = (int64_t *)calloc((size_t)key_limit + 1, sizeof(int64_t));
            count = heap;
        } else {
            memset(count, 0, (size_t)(key_limit + 1) * sizeof(int64_t));
        }
        if (count) {
            for (int64_t i = 0; i < n; i++) count[keys[i] + 1]++;
            for (int64_t k = 0; k < key_limit; k++) count[k + 1] += count[k];
            for (int64_t i = 0; i < n; i++) order[count[keys[i]]++] = i;
            free(heap);
            return;
        }
    }
    /* radix: order and scratch[0..n) ping-pong */
    int64_t *cur = order, *tmp = scratch;
    for (int64_t i = 0; i < n; i++) cur[i] = i;
    int bits = 0;
    while (bits < 63 && ((int64_t)1 << bits) < key_limit) bits++;
    int64_t count[2049];
    for (int shift = 0; shift < bits; shift += 11) {
        memset(count, 0, sizeof count);
        for (int64_t i = 0; i < n; i++) count[((keys[cur[i]] >> shift) & 2047) + 1]++;
        for (int d = 0; d < 2048; d++) count[d + 1] += count[d];
        for (int64_t i = 0; i < n; i++) tmp[count[(keys[cur[i]] >> shift) & 2047]++] = cur[i];
        int64_t *sw = cur; cur = tmp; tmp = sw;
    }
    if (cur != order) memcpy(order, cur, (size_t)n * sizeof(int64_t));
}

/* ---------------------------------------------------------------- weighted row sums */

/* host_f32_to_bf16 without a branch, so that the portable loops vectorise */
static inline uint16_t rws_f2bf(float f)
{
    const uint32_t u = host_f32_to_bits(f);
    const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)(((u & 0x7fffffffu) > 0x7f800000u) ? ((u >> 16) | 0x40u) : r);
}

/* the portable path, on columns [j0, j1) through fp32 tiles on the stack */
#define RWS_TILE 512
static void rws_portable(aclDataType dt, int native, void *out, const void *x1, const void *x2,
                         const OpRowTerm *terms, int64_t nterms, int64_t j0, int64_t j1)
{
    float acc[RWS_TILE];
    for (int64_t c0 = j0; c0 < j1; c0 += RWS_TILE) {
        const int64_t m = j1 - c0 < RWS_TILE ? j1 - c0 : RWS_TILE;
        if (dt == ACL_FLOAT) {
            for (int64_t j = 0; j < m; j++) acc[j] = x1 ? ((const float *)x1)[c0 + j] : 0.0f;
            if (x2) for (int64_t j = 0; j < m; j++) acc[j] = acc[j] + ((const float *)x2)[c0 + j];
            for (int64_t t = 0; t < nterms; t++) {
                const float *x = (const float *)terms[t].x + c0, *b = (const float *)terms[t].bias;
                const float s = terms[t].scale;
                if (b) for (int64_t j = 0; j < m; j++) acc[j] = acc[j] + (x[j] + b[c0 + j]) * s;
                else for (int64_t j = 0; j < m; j++) acc[j] = acc[j] + x[j] * s;
            }
            memcpy((float *)out + c0, acc, (size_t)m * sizeof(float));
        } else if (dt == ACL_BF16) {
            for (int64_t j = 0; j < m; j++) acc[j] = x1 ? host_bf16_to_f32(((const uint16_t *)x1)[c0 + j]) : 0.0f;
            if (x2) for (int64_t j = 0; j < m; j++) acc[j] = acc[j] + host_bf16_to_f32(((const uint16_t *)x2)[c0 + j]);
            for (int64_t t = 0; t < nterms; t++) {
                const uint16_t *x = (const uint16_t *)terms[t].x + c0, *b = (const uint16_t *)terms[t].bias;
                const float s = terms[t].scale;
                if (b)
                    for (int64_t j = 0; j < m; j++)
                        acc[j] = acc[j] + (host_bf16_to_f32(x[j]) + host_bf16_to_f32(b[c0 + j])) * s;
                else for (int64_t j = 0; j < m; j++) acc[j] = acc[j] + host_bf16_to_f32(x[j]) * s;
            }
            for (int64_t j = 0; j < m; j++) ((uint16_t *)out)[c0 + j] = rws_f2bf(acc[j]);
        } else { /* fp16 */
            for (int64_t j = 0; j < m; j++) acc[j] = x1 ? host_f16_to_f32(((const uint16_t *)x1)[c0 + j]) : 0.0f;
            if (x2)
                for (int64_t j = 0; j < m; j++) {
                    const float v = acc[j] + host_f16_to_f32(((const uint16_t *)x2)[c0 + j]);
                    acc[j] = native ? op_r16(v) : v;
                }
            for (int64_t t = 0; t < nterms; t++) {
                const uint16_t *x = (const uint16_t *)terms[t].x + c0, *b = (const uint16_t *)terms[t].bias;
                const float s = terms[t].scale;
                for (int64_t j = 0; j < m; j++) {
                    float v = host_f16_to_f32(x[j]);
                    if (b) {
                        v = v + host_f16_to_f32(b[c0 + j]);
                        if (native) v = op_r16(v);
                    }
                    v = v * s;
                    if (native) v = op_r16(v);
                    v = acc[j] + v;
                    acc[j] = native ? op_r16(v) : v;
                }
            }
            for (int64_t j = 0; j < m; j++) ((uint16_t *)out)[c0 + j] = host_f32_to_f16(acc[j]);
        }
    }
}

#if OP_X86_SIMD
/* The expert rows are gathered in routing order, so the hardware prefetcher restarts on every row: a software
 * prefetch 2 KB ahead keeps more loads in flight (about 20-25 % faster when the rows come from DRAM). */
#define RWS_PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 3)
#define RWS_F16_RNE (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

/* ---- AVX2 + F16C: 8 columns at a time ---- */
OP_TARGET_AVX2 static inline __m256 rws8_bf16(const uint16_t *p)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}
OP_TARGET_AVX2 static inline __m256 rws8_f16(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
OP_TARGET_AVX2 static inline __m256 rws8_r16(__m256 v) { return _mm256_cvtph_ps(_mm256_cvtps_ph(v, RWS_F16_RNE)); }
/* host_f32_to_bf16 on 8 lanes: nearest even, NaN kept quiet */
OP_TARGET_AVX2 static inline __m128i rws8_to_bf16(__m256 v)
{
    const __m256i u = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                           _mm256_set1_epi32(0x7f800000));
    r = _mm256_blendv_epi8(r, _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40)), nan);
    return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
}
/* host_f32_to_f16 on 8 lanes: the conversion rounds to nearest even; NaN becomes the canonical sign|0x7e00 */
OP_TARGET_AVX2 static inline __m128i rws8_to_f16(__m256 v)
{
    const __m128i h = _mm256_cvtps_ph(v, RWS_F16_RNE);
    const __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
    const __m128i nan16 = _mm_packs_epi32(_mm256_castsi256_si128(_mm256_castps_si256(nan)),
                                          _mm256_extracti128_si256(_mm256_castps_si256(nan), 1));
    const __m128i canon = _mm_or_si128(_mm_and_si128(h, _mm_set1_epi16((short)0x8000)), _mm_set1_epi16(0x7e00));
    return _mm_blendv_epi8(h, canon, nan16);
}

/* 32 columns per step (4 accumulators): the per-term overhead (pointer, bias test, broadcast, prefetch) is paid once
 * per 64-byte line of a bf16/fp16 row instead of once per 16 bytes, which kept the 8-column loop instruction-bound
 * at DRAM sizes. Every element sees the same operations in the same order as in the 8-column loop. */
#define RWS_W 32
#define RWS_WIDE(LOAD, T, PF, FINISH, STORE)                                                                   \
    for (; j + RWS_W <= n; j += RWS_W) {                                                                       \
        __m256 a0, a1, a2, a3;                                                                                 \
        if (x1) {                                                                                              \
            const T *p1 = (const T *)x1 + j;                                                                   \
            a0 = LOAD(p1); a1 = LOAD(p1 + 8); a2 = LOAD(p1 + 16); a3 = LOAD(p1 + 24);                          \
        } else {                                                                                               \
            a0 = a1 = a2 = a3 = _mm256_setzero_ps();                                                           \
        }                                                                                                      \
        if (x2) {                                                                                              \
            const T *p2 = (const T *)x2 + j;                                                                   \
            a0 = FINISH(_mm256_add_ps(a0, LOAD(p2))); a1 = FINISH(_mm256_add_ps(a1, LOAD(p2 + 8)));            \
            a2 = FINISH(_mm256_add_ps(a2, LOAD(p2 + 16))); a3 = FINISH(_mm256_add_ps(a3, LOAD(p2 + 24)));      \
        }                                                                                                      \
        for (int64_t t = 0; t < nterms; t++) {                                                                 \
            const T *x = (const T *)terms[t].x + j;                                                            \
            PF;                                                                                                \
            __m256 v0 = LOAD(x), v1 = LOAD(x + 8), v2 = LOAD(x + 16), v3 = LOAD(x + 24);                       \
            if (terms[t].bias) {                                                                               \
                const T *b = (const T *)terms[t].bias + j;                                                     \
                v0 = FINISH(_mm256_add_ps(v0, LOAD(b))); v1 = FINISH(_mm256_add_ps(v1, LOAD(b + 8)));          \
                v2 = FINISH(_mm256_add_ps(v2, LOAD(b + 16))); v3 = FINISH(_mm256_add_ps(v3, LOAD(b + 24)));    \
            }                                                                                                  \
            const __m256 sc = _mm256_set1_ps(terms[t].scale);                                                  \
            a0 = FINISH(_mm256_add_ps(a0, FINISH(_mm256_mul_ps(v0, sc))));                                     \
            a1 = FINISH(_mm256_add_ps(a1, FINISH(_mm256_mul_ps(v1, sc))));                                     \
            a2 = FINISH(_mm256_add_ps(a2, FINISH(_mm256_mul_ps(v2, sc))));                                     \
            a3 = FINISH(_mm256_add_ps(a3, FINISH(_mm256_mul_ps(v3, sc))));                                     \
        }                                                                                                      \
        STORE(0, a0); STORE(8, a1); STORE(16, a2); STORE(24, a3);                                              \
    }
#define RWS_ID(v) (v)
#define RWS_LD_F32(p) _mm256_loadu_ps(p)
#define RWS_ST_F32(o, v) _mm256_storeu_ps((float *)out + j + (o), (v))
#define RWS_ST_BF16(o, v) _mm_storeu_si128((__m128i *)((uint16_t *)out + j + (o)), rws8_to_bf16(v))
#define RWS_ST_F16(o, v) _mm_storeu_si128((__m128i *)((uint16_t *)out + j + (o)), rws8_to_f16(v))

OP_TARGET_AVX2 static int64_t rws_avx2_wide(aclDataType dt, int native, void *out, const void *x1, const void *x2,
                                            const OpRowTerm *terms, int64_t nterms, int64_t n)
{
    int64_t j = 0;
    if (dt == ACL_FLOAT) {
        RWS_WIDE(RWS_LD_F32, float, (RWS_PREFETCH(x + 512), RWS_PREFETCH(x + 528)), RWS_ID, RWS_ST_F32)
    } else if (dt == ACL_BF16) {
        RWS_WIDE(rws8_bf16, uint16_t, RWS_PREFETCH(x + 1024), RWS_ID, RWS_ST_BF16)
    } else if (!native) {
        RWS_WIDE(rws8_f16, uint16_t, RWS_PREFETCH(x + 1024), RWS_ID, RWS_ST_F16)
    } else {
        RWS_WIDE(rws8_f16, uint16_t, RWS_PREFETCH(x + 1024), rws8_r16, RWS_ST_F16)
    }
    return j;
}

OP_TARGET_AVX2 static int64_t rws_avx2(aclDataType dt, int native, void *out, const void *x1, const void *x2,
                                       const OpRowTerm *terms, int64_t nterms, int64_t n)
{
    const int64_t n8 = n / 8 * 8;
    const int64_t j0 = rws_avx2_wide(dt, native, out, x1, x2, terms, nterms, n);
    if (dt == ACL_FLOAT) {
        for (int64_t j = j0; j < n8; j += 8) {
            __m256 acc = x1 ? _mm256_loadu_ps((const float *)x1 + j) : _mm256_setzero_ps();
            if (x2) acc = _mm256_add_ps(acc, _mm256_loadu_ps((const float *)x2 + j));
            for (int64_t t = 0; t < nterms; t++) {
                const float *x = (const float *)terms[t].x + j;
                if ((j & 15) == 0) RWS_PREFETCH(x + 512);
                __m256 v = _mm256_loadu_ps(x);
                if (terms[t].bias) v = _mm256_add_ps(v, _mm256_loadu_ps((const float *)terms[t].bias + j));
                acc = _mm256_add_ps(acc, _mm256_mul_ps(v, _mm256_set1_ps(terms[t].scale)));
            }
            _mm256_storeu_ps((float *)out + j, acc);
        }
    } else if (dt == ACL_BF16) {
        for (int64_t j = j0; j < n8; j += 8) {
            __m256 acc = x1 ? rws8_bf16((const uint16_t *)x1 + j) : _mm256_setzero_ps();
            if (x2) acc = _mm256_add_ps(acc, rws8_bf16((const uint16_t *)x2 + j));
            for (int64_t t = 0; t < nterms; t++) {
                const uint16_t *x = (const uint16_t *)terms[t].x + j;
                if ((j & 31) == 0) RWS_PREFETCH(x + 1024);
                __m256 v = rws8_bf16(x);
                if (terms[t].bias) v = _mm256_add_ps(v, rws8_bf16((const uint16_t *)terms[t].bias + j));
                acc = _mm256_add_ps(acc, _mm256_mul_ps(v, _mm256_set1_ps(terms[t].scale)));
            }
            _mm_storeu_si128((__m128i *)((uint16_t *)out + j), rws8_to_bf16(acc));
        }
    } else if (!native) { /* fp16 rows, fp32 arithmetic */
        for (int64_t j = j0; j < n8; j += 8) {
            __m256 acc = x1 ? rws8_f16((const uint16_t *)x1 + j) : _mm256_setzero_ps();
            if (x2) acc = _mm256_add_ps(acc, rws8_f16((const uint16_t *)x2 + j));
            for (int64_t t = 0; t < nterms; t++) {
                const uint16_t *x = (const uint16_t *)terms[t].x + j;
                if ((j & 31) == 0) RWS_PREFETCH(x + 1024);
                __m256 v = rws8_f16(x);
                if (terms[t].bias) v = _mm256_add_ps(v, rws8_f16((const uint16_t *)terms[t].bias + j));
                acc = _mm256_add_ps(acc, _mm256_mul_ps(v, _mm256_set1_ps(terms[t].scale)));
            }
            _mm_storeu_si128((__m128i *)((uint16_t *)out + j), rws8_to_f16(acc));
        }
    } else { /* native fp16: rounded after every operation */
        for (int64_t j = j0; j < n8; j += 8) {
            __m256 acc = x1 ? rws8_f16((const uint16_t *)x1 + j) : _mm256_setzero_ps();
            if (x2) acc = rws8_r16(_mm256_add_ps(acc, rws8_f16((const uint16_t *)x2 + j)));
            for (int64_t t = 0; t < nterms; t++) {
                const uint16_t *x = (const uint16_t *)terms[t].x + j;
                if ((j & 31) == 0) RWS_PREFETCH(x + 1024);
                __m256 v = rws8_f16(x);
                if (terms[t].bias) v = rws8_r16(_mm256_add_ps(v, rws8_f16((const uint16_t *)terms[t].bias + j)));
                v = rws8_r16(_mm256_mul_ps(v, _mm256_set1_ps(terms[t].scale)));
                acc = rws8_r16(_mm256_add_ps(acc, v));
            }
            _mm_storeu_si128((__m128i *)((uint16_t *)out + j), rws8_to_f16(acc));
        }
    }
    return n8;
}

/* ---- AVX-512: 16 columns at a time, the same operations ---- */
OP_TARGET_AVX512 static inline __m512 rws16_bf16(const uint16_t *p)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}
OP_TARGET_AVX512 static inline __m512 rws16_f16(const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
OP_TARGET_AVX512 static inline __m512 rws16_r16(__m512 v) { return _mm512_cvtph_ps(_mm512_cvtps_ph(v, RWS_F16_RNE)); }
OP_TARGET_AVX512 static inline __m256i rws16_to_bf16(__m512 v)
{
    const __m512i u = _mm512_castps_si512(v);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    return _mm512_cvtepi32_epi16(_mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
}
OP_TARGET_AVX512 static inline __m256i rws16_to_f16(__m512 v)
{
    const __m256i h = _mm512_cvtps_ph(v, RWS_F16_RNE);
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    const __m256i canon = _mm256_or_si256(_mm256_and_si256(h, _mm256_set1_epi16((short)0x8000)),
                                          _mm256_set1_epi16(0x7e00));
    return _mm256_mask_blend_epi16(nan, h, canon);
}

OP_TARGET_AVX512 static int64_t rws_avx512(aclDataType dt, int native, void *out, const void *x1, const void *x2,
                                           const OpRowTerm *terms, int64_t nterms, int64_t n)
{
    const int64_t n16 = n / 16 * 16;
    if (dt == ACL_FLOAT) {
        for (int64_t j = 0; j < n16; j += 16) {
            __m512 acc = x1 ? _mm512_loadu_ps((const float *)x1 + j) : _mm512_setzero_ps();
            if (x2) acc = _mm512_add_ps(acc, _mm512_loadu_ps((const float *)x2 + j));
            for (int64_t t = 0; t < nterms; t++) {
                const float *x = (const float *)terms[t].x + j;
                RWS_PREFETCH(x + 512);
                __m512 v = _mm512_loadu_ps(x);
                if (terms[t].bias) v = _mm512_add_ps(v, _mm512_loadu_ps((const float *)terms[t].bias + j));
                acc = _mm512_add_ps(acc, _mm512_mul_ps(v, _mm512_set1_ps(terms[t].scale)));
            }
            _mm512_storeu_ps((float *)out + j, acc);
        }
    } else if (dt == ACL_BF16) {
        for (int64_t j = 0; j < n16; j += 16) {
            __m512 acc = x1 ? rws16_bf16((const uint16_t *)x1 + j) : _mm512_setzero_ps();
            if (x2) acc = _mm512_add_ps(acc, rws16_bf16((const uint16_t *)x2 + j));
            for (int64_t t = 0; t < nterms; t++) {
                const uint16_t *x = (const uint16_t *)terms[t].x + j;
                if ((j & 31) == 0) RWS_PREFETCH(x + 1024);
                __m512 v = rws16_bf16(x);
                if (terms[t].bias) v = _mm512_add_ps(v, rws16_bf16((const uint16_t *)terms[t].bias + j));
                acc = _mm512_add_ps(acc, _mm512_mul_ps(v, _mm512_set1_ps(terms[t].scale)));
            }
            _mm256_storeu_si256((__m256i *)((uint16_t *)out + j), rws16_to_bf16(acc));
        }
    } else if (!native) {
        for (int64_t j = 0; j < n16; j += 16) {
            __m512 acc = x1 ? rws16_f16((const uint16_t *)x1 + j) : _mm512_setzero_ps();
            if (x2) acc = _mm512_add_ps(acc, rws16_f16((const uint16_t *)x2 + j));
            for (int64_t t = 0; t < nterms; t++) {
                const uint16_t *x = (const uint16_t *)terms[t].x + j;
                if ((j & 31) == 0) RWS_PREFETCH(x + 1024);
                __m512 v = rws16_f16(x);
                if (terms[t].bias) v = _mm512_add_ps(v, rws16_f16((const uint16_t *)terms[t].bias + j));
                acc = _mm512_add_ps(acc, _mm512_mul_ps(v, _mm512_set1_ps(terms[t].scale)));
            }
            _mm256_storeu_si256((__m256i *)((uint16_t *)out + j), rws16_to_f16(acc));
        }
    } else {
        for (int64_t j = 0; j < n16; j += 16) {
            __m512 acc = x1 ? rws16_f16((const uint16_t *)x1 + j) : _mm512_setzero_ps();
            if (x2) acc = rws16_r16(_mm512_add_ps(acc, rws16_f16((const uint16_t *)x2 + j)));
            for (int64_t t = 0; t < nterms; t++) {
                const uint16_t *x = (const uint16_t *)terms[t].x + j;
                if ((j & 31) == 0) RWS_PREFETCH(x + 1024);
                __m512 v = rws16_f16(x);
                if (terms[t].bias) v = rws16_r16(_mm512_add_ps(v, rws16_f16((const uint16_t *)terms[t].bias + j)));
                v = rws16_r16(_mm512_mul_ps(v, _mm512_set1_ps(terms[t].scale)));
                acc = rws16_r16(_mm512_add_ps(acc, v));
            }
            _mm256_storeu_si256((__m256i *)((uint16_t *)out + j), rws16_to_f16(acc));
        }
    }
    return n16;
}
#endif

void op_row_weighted_sum(aclDataType dt, int fp16_native, void *out, const void *x1, const void *x2,
                         const OpRowTerm *terms, int64_t nterms, int64_t n)
{
    const int native = fp16_native && dt == ACL_FLOAT16;
    int64_t done = 0;
#if OP_X86_SIMD
    if (op_cpu_avx512()) done = rws_avx512(dt, native, out, x1, x2, terms, nterms, n);
    else if (op_cpu_avx2()) done = rws_avx2(dt, native, out, x1, x2, terms, nterms, n);
#endif
    if (done < n) rws_portable(dt, native, out, x1, x2, terms, nterms, done, n); /* column tail, other CPUs */
}

/* ---------------------------------------------------------------- row gathers */

/* Outputs from op_nt_min_bytes() on bypass the caches (streaming stores: no read-for-ownership of the destination
 * lines); smaller ones stay in the L3, where their consumer reads them next. See op_common.h for the measurements. */

#define GATHER_PREFETCH_BYTES 4096
/* rows of at least this many bytes are worth grouping by source (op_gather_rows) */
#define GATHER_BY_SRC_MIN_ROW_BYTES 2048
static _Atomic size_t g_gather_prefetch = GATHER_PREFETCH_BYTES;
void op_set_gather_prefetch_bytes(size_t bytes) { atomic_store_explicit(&g_gather_prefetch, bytes, memory_order_relaxed); }

typedef struct {
    const aclTensor *dst, *src;
    int64_t h;
    op_row_source_fn src_row;
    const void *ctx;
    int nt; /* non-temporal stores */
    const int64_t *by_src, *src_of; /* optional: item i writes dst row by_src[i] from src row src_of[i] */
} GatherCtx;

#if defined(__x86_64__) && !defined(ACLNN_MOE_NO_X86_SIMD)
#include <emmintrin.h>
/* memcpy / memset with SSE2 streaming stores (baseline x86-64) on the 16-byte aligned body of dst */
static void nt_copy(char *d, const char *s, size_t n)
{
    size_t head = (size_t)(-(uintptr_t)d & 15u);
    if (head > n) head = n;
    memcpy(d, s, head);
    size_t i = head;
    for (; i + 64 <= n; i += 64) {
        for (int q = 0; q < 4; q++)
            _mm_stream_si128((__m128i *)(d + i + 16 * q), _mm_loadu_si128((const __m128i *)(s + i + 16 * q)));
    }
    memcpy(d + i, s + i, n - i);
}
static void nt_zero(char *d, size_t n)
{
    size_t head = (size_t)(-(uintptr_t)d & 15u);
    if (head > n) head = n;
    memset(d, 0, head);
    size_t i = head;
    for (; i + 16 <= n; i += 16) _mm_stream_si128((__m128i *)(d + i), _mm_setzero_si128());
    memset(d + i, 0, n - i);
}
#define GATHER_HAVE_NT 1
#else
#define GATHER_HAVE_NT 0
#endif

static void gather_rows_range(void *vctx, int64_t begin, int64_t end)
{
    const GatherCtx *c = vctx;
    const size_t row_bytes = (size_t)(c->h * op_elem_size(c->dst));
#define GATHER_SRC(i) (c->by_src ? c->src_of[i] : c->src_row(c->ctx, i))
    int64_t next = begin < end ? GATHER_SRC(begin) : -1;
    size_t pf_bytes = op_row_stride(c->src) == 1 ? atomic_load_explicit(&g_gather_prefetch, memory_order_relaxed) : 0;
    if (pf_bytes > row_bytes) pf_bytes = row_bytes;
    for (int64_t i = begin; i < end; i++) {
        const int64_t r = c->by_src ? c->by_src[i] : i, s = next;
        next = i + 1 < end ? GATHER_SRC(i + 1) : -1;
        /* the rows come in routing order: the hardware prefetcher restarts on each one, so the head of the next
         * source row is requested while this one is copied (a repeat of this row is in the caches already) */
        if (next >= 0 && next != s && pf_bytes) {
            const char *q = op_ptr2(c->src, next, 0);
            for (size_t b = 0; b < pf_bytes; b += 64) __builtin_prefetch(q + b, 0, 3);
        }
#if GATHER_HAVE_NT
        if (c->nt) {
            if (s < 0) nt_zero(op_ptr2(c->dst, r, 0), row_bytes);
            else nt_copy(op_ptr2(c->dst, r, 0), op_ptr2(c->src, s, 0), row_bytes);
            continue;
        }
#endif
        if (s < 0) op_zero_row(c->dst, r, c->h);
        else op_copy_row(c->dst, r, c->src, s, c->h);
    }
#if GATHER_HAVE_NT
    if (c->nt) _mm_sfence(); /* the streaming stores are visible before the job is reported done */
#endif
}

void op_gather_rows(const aclTensor *dst, const aclTensor *src, int64_t nrows, int64_t h, op_row_source_fn src_row,
                    const void *ctx)
{
    if (nrows <= 0 || h <= 0) return;
    const int64_t row_bytes = h * op_elem_size(dst);
    GatherCtx c = {dst, src, h, src_row, ctx, 0, NULL, NULL};
    c.nt = GATHER_HAVE_NT && op_row_stride(dst) == 1 && op_row_stride(src) == 1 &&
           (uint64_t)nrows * (uint64_t)row_bytes >= op_nt_min_bytes();
    /* Outputs past the caches that repeat source rows (routing: each token feeds K rows) are written grouped by
     * source row (a stable counting sort of the dst rows): each source row then comes from DRAM once and its
     * repeats from L1/L2, instead of once per copy in routing order. Bytes either way: the same result. */
    const int64_t nsrc = src->dims[0];
    int64_t *mem = NULL;
    if (c.nt && nrows > nsrc && nsrc > 0 && (uint64_t)row_bytes >= GATHER_BY_SRC_MIN_ROW_BYTES)
        mem = malloc(((size_t)nrows * 2 + (size_t)nsrc + 2) * sizeof(int64_t));
    if (mem) {
        int64_t *src_of = mem, *by_src = mem + nrows, *start = by_src + nrows; /* start: [nsrc + 2] */
        memset(start, 0, ((size_t)nsrc + 2) * sizeof(int64_t));
        for (int64_t r = 0; r < nrows; r++) {
            int64_t s = src_row(ctx, r);
            if (s >= nsrc) break; /* not a row of src: left to the plain loop, as before */
            if (s < 0) s = -1;    /* zero rows first */
            src_of[r] = s;
            start[s + 2]++;
            if (r + 1 == nrows) c.by_src = by_src;
        }
    }
    if (c.by_src) {
        int64_t *src_of = mem, *by_src = mem + nrows, *start = by_src + nrows;
        for (int64_t b = 2; b < nsrc + 2; b++) start[b] += start[b - 1];
        for (int64_t r = 0; r < nrows; r++) by_src[start[src_of[r] + 1]++] = r;
        /* src_of is indexed by item from here on (read sequentially): start[s + 1] is now the end of bucket s */
        for (int64_t i = 0, s = -1; s < nsrc; s++)
            while (i < start[s + 1]) src_of[i++] = s;
        c.src_of = src_of;
    }
    acl_host_parallel_for(nrows, 1 + OP_PARALLEL_MIN_BYTES / row_bytes, gather_rows_range, &c);
    free(mem);
}
