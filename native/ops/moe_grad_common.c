/*
 * Kernels of the routing family's backward operators (see moe_grad_common.h).
 *
 * Fixed summation orders (no order depends on threads):
 *  - gather family, MOE_GRAD_SUM_SEQUENTIAL: k ascending, acc = acc + row (MoeTokenPermuteGrad and
 *    MoeTokenPermuteWithEpGrad run the unpermute kernel, which adds the K rows of a token in order);
 *  - gather family, MOE_GRAD_SUM_TREE: the K rows (zeros for skipped ones) are added pairwise as a binary tree,
 *    ((r0 + r1) + (r2 + r3)) + ..., K padded with zero rows to a power of two: MoeInitRoutingV2Grad's kernel adds
 *    its row bins with a doubling stride (BinaryAdd); the tree shape beyond that is [inferred];
 *  - dot products (probs / scales gradients): 64 lanes, lane l accumulating elements j = l (mod 64) in order, then
 *    the lanes folded by halves (32, 16, ..., 1), the shape of the NPU's BlockReduceSum / ReduceSum over 64-float
 *    repeats (its exact reduction tree is hardware-defined [unconfirmed]).
 */
#include <stdarg.h>
#include <stdio.h>

#include "moe_grad_common.h"

#define GRAD_LANES 64
#define GRAD_ALIGN(x) (((x) + 63u) & ~(uint64_t)63u)

/* the rank-2 or rank-3 tensor t as [rows, H] (the leading dims merged) */
static int view_rows(const aclTensor *t, aclTensor *dst) { return op_view2d(t, t->ndim - 1, dst); }

/* Map every index value through the rule: rows[p] = selected row or -1. Error on an illegal value. */
static aclnnStatus map_indices(const char *api, int64_t *rows, int64_t n, const MoeGradIndexRule *r)
{
    for (int64_t p = 0; p < n; p++) {
        int64_t v = rows[p];
        if (v == -1 && r->allow_drop) continue;
        if (v < 0 && r->hi == INT64_MAX)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: %s[%lld] = %lld is negative", api, r->name,
                                  (long long)p, (long long)v);
        if (v < r->lo || v >= r->hi)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: %s[%lld] = %lld is outside [%lld, %lld)%s", api,
                                  r->name, (long long)p, (long long)v, (long long)(r->allow_drop ? -1 : r->lo),
                                  (long long)r->hi, r->allow_drop ? " (-1: dropped)" : "");
        rows[p] = (v >= r->wstart && v < r->wend) ? v - r->wstart : -1;
    }
    return ACLNN_SUCCESS;
}

/* The executor input slot of a role tensor: op_create_executor binds the table's input tensors in order (absent
 * optional ones as NULL slots, int arrays skipped), so it is the count of input tensor entries before its entry.
 * -1 for an unused role. */
static int slot_of(const OpSpec *op, const void *const *handles, const aclTensor *t)
{
    if (t == NULL) return -1;
    for (int i = 0, slot = 0; i < op->n; i++) {
        const uint8_t f = op->params[i].flags;
        if ((f & OP_INT_ARRAY) || (f & OP_OUT)) continue;
        if (handles[i] == (const void *)t) return slot;
        slot++;
    }
    return -1;
}

static int64_t chunk_count(int64_t items)
{
    int64_t n = acl_host_num_threads();
    if (n > items) n = items;
    return n < 1 ? 1 : n;
}

static float dot_lanes(const float *v, const float *g, int64_t h)
{
    float lanes[GRAD_LANES] = {0};
    int64_t j = 0;
    for (; j + GRAD_LANES <= h; j += GRAD_LANES)
        for (int l = 0; l < GRAD_LANES; l++) {
            float prod = v[j + l] * g[j + l];
            lanes[l] += prod;
        }
    for (int l = 0; j + l < h; l++) {
        float prod = v[j + l] * g[j + l];
        lanes[l] += prod;
    }
    for (int w = GRAD_LANES / 2; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) lanes[l] += lanes[l + w];
    return lanes[0];
}

/* =========================================================================================== gather family */

typedef struct {
    int64_t t, k, h;
    MoeGradIndexRule rule;
    int sum_order, has_probs, levels;
    int s_grad, s_idx, s_probs; /* executor input slots */
} GatherParams;

typedef struct {
    const GatherParams *p;
    aclTensor grad;           /* 2-D view */
    const aclTensor *out;
    const int64_t *rows;
    float *scratch;
    int64_t n_chunks, per_chunk;
} GatherCtx;

static void gather_chunks(void *vctx, int64_t begin, int64_t end)
{
    const GatherCtx *c = vctx;
    const GatherParams *p = c->p;
    const int64_t h = p->h;
    for (int64_t chunk = begin; chunk < end; chunk++) {
        float *acc = c->scratch + chunk * c->per_chunk, *tmp = acc + h, *lv = tmp + h;
        const int64_t t0 = p->t * chunk / c->n_chunks, t1 = p->t * (chunk + 1) / c->n_chunks;
        for (int64_t t = t0; t < t1; t++) {
            const int64_t *rw = c->rows + t * p->k;
            if (p->sum_order == MOE_GRAD_SUM_SEQUENTIAL) {
                for (int64_t j = 0; j < h; j++) acc[j] = 0.0f;
                for (int64_t k = 0; k < p->k; k++) {
                    if (rw[k] < 0) continue;
                    op_load_row_f32(&c->grad, rw[k], h, tmp);
                    for (int64_t j = 0; j < h; j++) acc[j] += tmp[j];
                }
            } else {
                /* binary counter: level l holds the sum of the last complete block of 2^l rows */
                uint64_t have = 0;
                for (int64_t k = 0; k < p->k; k++) {
                    if (rw[k] >= 0) op_load_row_f32(&c->grad, rw[k], h, tmp);
                    else for (int64_t j = 0; j < h; j++) tmp[j] = 0.0f;
                    int l = 0;
                    while (have & (1ull << l)) {
                        const float *left = lv + (int64_t)l * h;
                        for (int64_t j = 0; j < h; j++) tmp[j] = left[j] + tmp[j];
                        have &= ~(1ull << l);
                        l++;
                    }
                    memcpy(lv + (int64_t)l * h, tmp, (size_t)h * sizeof(float));
                    have |= 1ull << l;
                }
                /* the partial blocks of a K that is not a power of two: zero padding leaves them as they are */
                int first = 1;
                for (int l = 0; l < p->levels; l++) {
                    if (!(have & (1ull << l))) continue;
                    const float *left = lv + (int64_t)l * h;
                    if (first) memcpy(acc, left, (size_t)h * sizeof(float));
                    else for (int64_t j = 0; j < h; j++) acc[j] = left[j] + acc[j];
                    first = 0;
                }
                if (first) for (int64_t j = 0; j < h; j++) acc[j] = 0.0f;
            }
            op_store_row_f32(c->out, t, h, acc);
        }
    }
}

static int tree_levels(int64_t k)
{
    int l = 1;
    while ((1ll << (l - 1)) < k) l++;
    return l + 1;
}

static aclnnStatus gather_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    const GatherParams *p = ex->params;
    const char *api = ex->api;
    const int64_t n = p->t * p->k;
    if (n == 0) return ACLNN_SUCCESS;
    const uint64_t idx_bytes = GRAD_ALIGN((uint64_t)n * sizeof(int64_t));
    wsSize = ex->workspace_size; /* the kernel contract: scratch sized from the executor's own size */
    const int64_t per_chunk = p->h * (2 + (p->sum_order == MOE_GRAD_SUM_TREE ? p->levels : 0));
    if (ws == NULL || wsSize < idx_bytes + (uint64_t)per_chunk * sizeof(float))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: workspace of %llu bytes is too small", api,
                              (unsigned long long)wsSize);
    int64_t *rows = ws;
    op_read_all_i64(ex->inputs[p->s_idx], rows);
    OP_TRY(map_indices(api, rows, n, &p->rule));

    GatherCtx c;
    c.p = p;
    if (!view_rows(ex->inputs[p->s_grad], &c.grad))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: the gradient view cannot be read as 2-D", api);
    if (p->has_probs) {
        const aclTensor *pg = ex->inputs[p->s_probs], *po = ex->outputs[1];
        const size_t es = (size_t)op_elem_size(po);
        for (int64_t i = 0; i < n; i++) {
            char *dst = po->ndim == 2 ? op_ptr2(po, i / p->k, i % p->k) : op_ptr_flat(po, i);
            if (rows[i] >= 0) memcpy(dst, op_ptr_flat(pg, rows[i]), es);
            else memset(dst, 0, es);
        }
    }
    if (p->h == 0) return ACLNN_SUCCESS;
    c.out = ex->outputs[0];
    c.rows = rows;
    c.scratch = (float *)((char *)ws + idx_bytes);
    c.per_chunk = per_chunk;
    c.n_chunks = chunk_count(p->t);
    uint64_t fit = (wsSize - idx_bytes) / ((uint64_t)per_chunk * sizeof(float));
    if ((uint64_t)c.n_chunks > fit) c.n_chunks = (int64_t)fit;
    acl_host_parallel_for(c.n_chunks, 1, gather_chunks, &c);
    return ACLNN_SUCCESS;
}

aclnnStatus moe_grad_gather_create(const OpSpec *op, const void *const *handles, const aclTensor *grad,
                                   const aclTensor *indices, const aclTensor *probsGrad, int64_t t, int64_t k,
                                   MoeGradIndexRule rule, int sum_order, uint64_t *workspaceSize,
                                   aclOpExecutor **executor)
{
    aclTensor v;
    if (!view_rows(grad, &v))
        return op_fail_param(op->api, "the gradient input: the leading dims of this strided view cannot be merged");
    GatherParams p = {t, k, v.dims[1], rule, sum_order, probsGrad != NULL, tree_levels(k),
                      slot_of(op, handles, grad), slot_of(op, handles, indices), slot_of(op, handles, probsGrad)};
    uint64_t ws = 0;
    if (t * k > 0) {
        const int64_t per_chunk = p.h * (2 + (sum_order == MOE_GRAD_SUM_TREE ? p.levels : 0));
        const uint64_t chunks = (uint64_t)chunk_count(t);
        if (p.h > (INT64_C(1) << 48) || (uint64_t)per_chunk * sizeof(float) > UINT64_MAX / 4 / chunks)
            return op_fail_shape(op, "the hidden size (%lld) is too large", (long long)p.h);
        ws = GRAD_ALIGN((uint64_t)(t * k) * sizeof(int64_t)) + chunks * (uint64_t)per_chunk * sizeof(float);
    }
    return op_create_executor(op, handles, gather_kernel, &p, sizeof p, ws, workspaceSize, executor);
}

/* ========================================================================================== scatter family */

typedef struct {
    int64_t t, k, h, rows_out, x_rows;
    MoeGradIndexRule rule;
    int has_scales, has_x, has_bias, has_gs;
    int s_grad, s_idx, s_scales, s_x, s_bias, s_experts; /* executor input slots (-1: unused) */
} ScatterParams;

typedef struct {
    const ScatterParams *p;
    const aclTensor *grad, *scales, *bias, *gs;
    aclTensor x, gx; /* 2-D views */
    const int64_t *rows, *src, *experts;
    float *scratch;
    int64_t n_chunks;
} ScatterCtx;

static float scale_of(const ScatterCtx *c, int64_t p)
{
    const int64_t k = c->p->k;
    return c->p->has_scales ? op_load_f(c->scales->dtype, op_ptr2(c->scales, p / k, p % k)) : 1.0f;
}

/* gradX rows: each one is written by the one index that selects it, or zeroed */
static void scatter_rows(void *vctx, int64_t begin, int64_t end)
{
    const ScatterCtx *c = vctx;
    const ScatterParams *p = c->p;
    const int64_t h = p->h;
    for (int64_t chunk = begin; chunk < end; chunk++) {
        float *g = c->scratch + chunk * 3 * h;
        const int64_t r0 = p->rows_out * chunk / c->n_chunks, r1 = p->rows_out * (chunk + 1) / c->n_chunks;
        for (int64_t r = r0; r < r1; r++) {
            const int64_t src = c->src[r];
            if (src < 0) {
                op_zero_row(&c->gx, r, h);
                continue;
            }
            op_load_row_f32(c->grad, src / p->k, h, g);
            const float s = scale_of(c, src);
            for (int64_t j = 0; j < h; j++) g[j] = g[j] * s;
            op_store_row_f32(&c->gx, r, h, g);
        }
    }
}

/* gradScale[t, k] = sum_j (x[row] + bias[e])[j] * grad[t][j] */
static void scatter_dots(void *vctx, int64_t begin, int64_t end)
{
    const ScatterCtx *c = vctx;
    const ScatterParams *p = c->p;
    const int64_t h = p->h;
    for (int64_t chunk = begin; chunk < end; chunk++) {
        float *g = c->scratch + chunk * 3 * h, *xv = g + h, *bv = xv + h;
        const int64_t t0 = p->t * chunk / c->n_chunks, t1 = p->t * (chunk + 1) / c->n_chunks;
        for (int64_t t = t0; t < t1; t++) {
            op_load_row_f32(c->grad, t, h, g);
            for (int64_t k = 0; k < p->k; k++) {
                const int64_t i = t * p->k + k, r = c->rows[i];
                float v = 0.0f;
                if (r >= 0 || p->has_bias) {
                    if (r >= 0) op_load_row_f32(&c->x, r, h, xv);
                    if (p->has_bias) {
                        op_load_row_f32(c->bias, c->experts[i], h, bv);
                        if (r >= 0)
                            for (int64_t j = 0; j < h; j++) xv[j] = bv[j] + xv[j];
                        else
                            memcpy(xv, bv, (size_t)h * sizeof(float));
                    }
                    v = dot_lanes(xv, g, h);
                }
                op_store_f(c->gs->dtype, op_ptr2(c->gs, t, k), v);
            }
        }
    }
}

static aclnnStatus scatter_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    const ScatterParams *p = ex->params;
    const char *api = ex->api;
    const int64_t n = p->t * p->k;
    const uint64_t idx_bytes = GRAD_ALIGN((uint64_t)n * sizeof(int64_t));
    const uint64_t src_bytes = GRAD_ALIGN((uint64_t)p->rows_out * sizeof(int64_t));
    const uint64_t fixed = idx_bytes * 2 + src_bytes;
    const uint64_t per_chunk = (uint64_t)p->h * 3u * sizeof(float);
    if (n == 0 && p->rows_out == 0) return ACLNN_SUCCESS;
    wsSize = ex->workspace_size; /* the kernel contract: scratch sized from the executor's own size */
    if (ws == NULL || wsSize < fixed + per_chunk)
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: workspace of %llu bytes is too small", api,
                              (unsigned long long)wsSize);
    ScatterCtx c;
    c.p = p;
    c.grad = ex->inputs[p->s_grad];
    c.scales = p->has_scales ? ex->inputs[p->s_scales] : NULL;
    c.bias = p->has_bias ? ex->inputs[p->s_bias] : NULL;
    c.gs = ex->outputs[1];
    int64_t *rows = ws, *experts = (int64_t *)((char *)ws + idx_bytes), *src = (int64_t *)((char *)ws + 2 * idx_bytes);

    /* data checks, before anything is written */
    op_read_all_i64(ex->inputs[p->s_idx], rows);
    OP_TRY(map_indices(api, rows, n, &p->rule));
    for (int64_t r = 0; r < p->rows_out; r++) src[r] = -1;
    for (int64_t i = 0; i < n; i++) {
        const int64_t r = rows[i];
        if (r < 0) continue;
        if (r >= p->rows_out)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: index %lld selects row %lld of an output with %lld rows",
                                  api, (long long)i, (long long)r, (long long)p->rows_out);
        if (p->has_x && r >= p->x_rows)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: index %lld selects row %lld of an input with %lld rows",
                                  api, (long long)i, (long long)r, (long long)p->x_rows);
        if (src[r] >= 0)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                                  "%s: %s has a duplicate: positions %lld and %lld both select row %lld "
                                  "(indices must be unique, but for -1)",
                                  api, p->rule.name, (long long)src[r], (long long)i, (long long)r);
        src[r] = i;
    }
    if (p->has_bias) {
        const int64_t e = c.bias->dims[0];
        op_read_all_i64(ex->inputs[p->s_experts], experts);
        for (int64_t i = 0; i < n; i++)
            if (experts[i] < 0 || experts[i] >= e)
                return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                                      "%s: expertIdxOptional[%lld, %lld] = %lld is outside [0, %lld) (experts of bias)",
                                      api, (long long)(i / p->k), (long long)(i % p->k), (long long)experts[i],
                                      (long long)e);
    }
    if (!view_rows(ex->outputs[0], &c.gx) || (p->has_x && !view_rows(ex->inputs[p->s_x], &c.x)))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: a 3-D view cannot be read as 2-D", api);
    if (p->h == 0) return ACLNN_SUCCESS;
    c.rows = rows;
    c.src = src;
    c.experts = experts;
    c.scratch = (float *)((char *)ws + fixed);
    uint64_t fit = (wsSize - fixed) / per_chunk;

    c.n_chunks = chunk_count(p->rows_out);
    if ((uint64_t)c.n_chunks > fit) c.n_chunks = (int64_t)fit;
    if (p->rows_out > 0) acl_host_parallel_for(c.n_chunks, 1, scatter_rows, &c);
    if (p->has_gs && p->t > 0) {
        c.n_chunks = chunk_count(p->t);
        if ((uint64_t)c.n_chunks > fit) c.n_chunks = (int64_t)fit;
        acl_host_parallel_for(c.n_chunks, 1, scatter_dots, &c);
    }
    return ACLNN_SUCCESS;
}

aclnnStatus moe_grad_scatter_create(const OpSpec *op, const void *const *handles, const aclTensor *grad,
                                    const aclTensor *indices, const aclTensor *scales, const aclTensor *x,
                                    const aclTensor *bias, const aclTensor *expertIdx, int64_t t, int64_t k,
                                    MoeGradIndexRule rule, int use_gs, uint64_t *workspaceSize,
                                    aclOpExecutor **executor)
{
    const aclTensor *gradX = NULL;
    for (int i = 0; i < op->n && gradX == NULL; i++)
        if (op->params[i].flags & OP_OUT) gradX = handles[i];
    aclTensor v;
    if (!view_rows(gradX, &v))
        return op_fail_param(op->api, "the gradient output: the leading dims of this strided view cannot be merged");
    const int64_t rows_out = v.dims[0];
    int64_t x_rows = 0;
    if (x != NULL) {
        if (!view_rows(x, &v))
            return op_fail_param(op->api, "the expanded input: the leading dims of this strided view cannot be merged");
        x_rows = v.dims[0];
    }
    const int has_gs = use_gs && scales != NULL && x != NULL;
    ScatterParams p = {t, k, grad->dims[1], rows_out, x_rows, rule, scales != NULL, x != NULL, bias != NULL, has_gs,
                       slot_of(op, handles, grad), slot_of(op, handles, indices), slot_of(op, handles, scales),
                       slot_of(op, handles, x), slot_of(op, handles, bias), slot_of(op, handles, expertIdx)};
    const uint64_t n = (uint64_t)(t * k);
    const uint64_t chunks = (uint64_t)chunk_count(rows_out > t ? rows_out : t);
    if (p.h > (INT64_C(1) << 48) || (uint64_t)p.h * 3u * sizeof(float) > UINT64_MAX / 4 / chunks)
        return op_fail_shape(op, "the hidden size (%lld) is too large", (long long)p.h);
    uint64_t ws = GRAD_ALIGN(n * sizeof(int64_t)) * 2 + GRAD_ALIGN((uint64_t)rows_out * sizeof(int64_t)) +
                  chunks * (uint64_t)p.h * 3u * sizeof(float);
    if (n == 0 && rows_out == 0) ws = 0;
    return op_create_executor(op, handles, scatter_kernel, &p, sizeof p, ws, workspaceSize, executor);
}
