/* Shared helpers of the operator implementations; see op_common.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "op_common.h"

/* ---------------------------------------------------------------- checks */

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

aclnnStatus op_check_shape(const char *api, const char *param, const aclTensor *t, int ndim, const int64_t *dims)
{
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->dims[i] == dims[i];
    if (same) return ACLNN_SUCCESS;
    char want[160], got[160];
    format_shape(want, sizeof want, ndim, dims);
    format_shape(got, sizeof got, t->ndim, t->dims);
    return acl_host_error(ACLNN_ERR_INNER_TILING_ERROR, "%s: %s must have shape %s, got %s", api, param, want, got);
}

static aclnnStatus fail(aclnnStatus status, const char *api, const char *fmt, va_list ap)
{
    char rule[768];
    vsnprintf(rule, sizeof rule, fmt, ap);
    return acl_host_error(status, "%s: %s", api, rule);
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

static int64_t row_stride(const aclTensor *t) { return t->ndim > 1 ? t->strides[t->ndim - 1] : 1; }

void op_load_row_f32(const aclTensor *t, int64_t row, int64_t n, float *dst)
{
    const char *p = op_ptr2(t, row, 0);
    int64_t s = row_stride(t);
    if (s == 1) {
        switch (t->dtype) {
        case ACL_FLOAT: memcpy(dst, p, (size_t)n * 4); return;
        case ACL_FLOAT16: for (int64_t j = 0; j < n; j++) dst[j] = host_f16_to_f32(((const uint16_t *)p)[j]); return;
        case ACL_BF16: for (int64_t j = 0; j < n; j++) dst[j] = host_bf16_to_f32(((const uint16_t *)p)[j]); return;
        default: break;
        }
    }
    int64_t es = op_elem_size(t);
    for (int64_t j = 0; j < n; j++) dst[j] = op_load_f(t->dtype, p + j * s * es);
}

void op_store_row_f32(const aclTensor *t, int64_t row, int64_t n, const float *src)
{
    char *p = op_ptr2(t, row, 0);
    int64_t s = row_stride(t);
    if (s == 1) {
        switch (t->dtype) {
        case ACL_FLOAT: memcpy(p, src, (size_t)n * 4); return;
        case ACL_FLOAT16: for (int64_t j = 0; j < n; j++) ((uint16_t *)p)[j] = host_f32_to_f16(src[j]); return;
        case ACL_BF16: for (int64_t j = 0; j < n; j++) ((uint16_t *)p)[j] = host_f32_to_bf16(src[j]); return;
        default: break;
        }
    }
    int64_t es = op_elem_size(t);
    for (int64_t j = 0; j < n; j++) op_store_f(t->dtype, p + j * s * es, src[j]);
}

void op_copy_row(const aclTensor *dst, int64_t dst_row, const aclTensor *src, int64_t src_row, int64_t n)
{
    char *d = op_ptr2(dst, dst_row, 0);
    const char *s = op_ptr2(src, src_row, 0);
    int64_t es = op_elem_size(dst), ds = row_stride(dst), ss = row_stride(src);
    if (ds == 1 && ss == 1) {
        memcpy(d, s, (size_t)(n * es));
        return;
    }
    for (int64_t j = 0; j < n; j++) memcpy(d + j * ds * es, s + j * ss * es, (size_t)es);
}

void op_zero_row(const aclTensor *t, int64_t row, int64_t n)
{
    char *d = op_ptr2(t, row, 0);
    int64_t es = op_elem_size(t), s = row_stride(t);
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
