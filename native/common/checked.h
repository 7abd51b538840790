/*
 * Overflow-checked size and extent arithmetic, shared by every library of the host runtime: descriptor
 * validation (aclCreateTensor, the arrays), executor checks and the operators' shape arithmetic all go through
 * these, so that no product of caller-controlled integers can wrap silently. Each returns 0 on success and -1 on
 * overflow (leaving *out unspecified); the caller turns -1 into a status code naming the parameter.
 */
#ifndef ACLNN_MOE_CHECKED_H_
#define ACLNN_MOE_CHECKED_H_

#include <stdint.h>

static inline int host_mul_i64(int64_t a, int64_t b, int64_t *out) { return __builtin_mul_overflow(a, b, out) ? -1 : 0; }
static inline int host_add_i64(int64_t a, int64_t b, int64_t *out) { return __builtin_add_overflow(a, b, out) ? -1 : 0; }
static inline int host_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}
static inline int host_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return __builtin_add_overflow(a, b, out) ? -1 : 0;
}

/* product of n non-negative extents (1 for n == 0) */
static inline int host_dims_product(const int64_t *dims, int n, int64_t *out)
{
    int64_t p = 1;
    for (int i = 0; i < n; i++)
        if (host_mul_i64(p, dims[i], &p)) return -1;
    *out = p;
    return 0;
}

/* 1 + the largest element offset a strided view reaches (offset + sum (dims[i]-1)*strides[i]); 0 for an empty
 * view, which touches nothing. Dims, strides and offset are non-negative. */
static inline int host_view_extent(const int64_t *dims, const int64_t *strides, int n, int64_t offset, int64_t *out)
{
    for (int i = 0; i < n; i++)
        if (dims[i] == 0) { *out = 0; return 0; }
    int64_t last = offset;
    for (int i = 0; i < n; i++) {
        int64_t step;
        if (host_mul_i64(dims[i] - 1, strides[i], &step) || host_add_i64(last, step, &last)) return -1;
    }
    return host_add_i64(last, 1, out);
}

#endif /* ACLNN_MOE_CHECKED_H_ */
