/*
 * aclnnMoeGatingTopKSoftmax: softmax of each row of router logits and its top-k experts, with the k-major row index
 * that aclnnMoeInitRouting (V1) expects (see moe_gating_top_k_softmax_rows.h for the computation).
 *
 * Numerics: the NPU kernels compute bf16 in fp32 and store y with CAST_ROUND (nearest, ties away from zero); fp16
 * is computed natively in fp16 there, while the official golden computes it in fp32 and casts: fp16 follows the
 * golden here (fp32, nearest-even on the store). The softmax is exp(x - max) times the reciprocal of the sum, as
 * in the NPU's k-full-load kernel. A row holding NaN scores NaN everywhere and ranks experts 0..k-1, as the kernel
 * writes for a NaN sum.
 *
 * Validation is the generated op's (tiling failures 561002, moe_gating_top_k_softmax_tiling_base.cpp): x 2-D or
 * 3-D with no zero dimension and none above INT32_MAX, finishedOptional bool of shape x.shape[:-1],
 * 1 <= k <= E and k <= 1024; the outputs must be x.shape[:-1] + [k] (the tiling checks the leading dims only).
 */
#include "aclnnop/aclnn_moe_gating_top_k_softmax.h"
#include "moe_gating_top_k_softmax_rows.h"
#include "op_math.h"

#define GTS_MAX_K 1024
#define GTS_MAX_DIM 2147483647LL
#define GTS_ALIGN(x) (((uint64_t)(x) + 63u) & ~(uint64_t)63u)

/* ---------------------------------------------------------------- the shared row kernel */

typedef struct {
    const GtsParams *p;
    aclTensor x, y, idx, extra; /* 2-D views [rows, E or k]; extra: rowIdx [rows, k] or softmax [rows, E] */
    const aclTensor *finished;
    char *scratch;
    uint64_t chunk_bytes;
    int64_t n_chunks;
} GtsCtx;

static uint64_t gts_chunk_bytes(const GtsParams *p)
{
    return GTS_ALIGN(p->e * sizeof(float)) + GTS_ALIGN(2 * p->e * sizeof(uint64_t)) +
           GTS_ALIGN(p->k * sizeof(float)) * 2;
}

static int64_t gts_chunks(const GtsParams *p)
{
    int64_t n = acl_host_num_threads();
    int64_t by_work = p->rows * p->e / OP_PARALLEL_MIN_WORK; /* about OP_PARALLEL_MIN_WORK scores per chunk */
    if (n > by_work) n = by_work;
    if (n > p->rows) n = p->rows;
    return n < 1 ? 1 : n;
}

uint64_t gts_workspace(const GtsParams *p)
{
    return p->rows == 0 ? 0 : (uint64_t)gts_chunks(p) * gts_chunk_bytes(p);
}

/* fp32 -> bf16, nearest with ties away from zero (AscendC CAST_ROUND); NaN stays a quiet NaN */
static inline uint16_t gts_bf16_round_away(float f)
{
    const uint32_t u = host_f32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x8000u) >> 16);
}

static void gts_store_y(const aclTensor *y, int64_t row, int64_t k, const float *v)
{
    if (y->dtype != ACL_BF16) {
        op_store_row_f32(y, row, k, v); /* fp32 as is, fp16 nearest-even */
        return;
    }
    for (int64_t j = 0; j < k; j++) *(uint16_t *)op_ptr2(y, row, j) = gts_bf16_round_away(v[j]);
}

static void gts_range(void *vctx, int64_t begin, int64_t end)
{
    const GtsCtx *c = vctx;
    const GtsParams *p = c->p;
    const int64_t e = p->e, k = p->k;
    for (int64_t chunk = begin; chunk < end; chunk++) {
        char *s = c->scratch + (uint64_t)chunk * c->chunk_bytes;
        float *v = (float *)s;
        uint64_t *keys = (uint64_t *)(s + GTS_ALIGN(e * sizeof(float)));
        uint64_t *buf = keys + e;
        float *w = (float *)((char *)keys + GTS_ALIGN(2 * e * sizeof(uint64_t)));
        int32_t *top = (int32_t *)((char *)w + GTS_ALIGN(k * sizeof(float)));
        const int64_t r0 = p->rows * chunk / c->n_chunks, r1 = p->rows * (chunk + 1) / c->n_chunks;
        for (int64_t r = r0; r < r1; r++) {
            op_load_row_f32(&c->x, r, e, v);
            if (p->renorm == 0) {
                op_softmax_exp_f32(v, e);
                float *rowp = v;
                op_softmax_finish(&rowp, 1, e);
                if (p->has_softmax) op_store_row_f32(&c->extra, r, e, v);
            }
            for (int64_t i = 0; i < e; i++) keys[i] = op_key(v[i], i);
            op_topk_desc(keys, e, k, buf);
            for (int64_t j = 0; j < k; j++) {
                top[j] = (int32_t)op_key_index(keys[j]);
                w[j] = v[top[j]];
            }
            if (p->renorm == 1) {
                float *rowp = w;
                op_softmax_exp_f32(w, k);
                op_softmax_finish(&rowp, 1, k);
            }
            if (p->has_finished && *(const uint8_t *)op_ptr_flat(c->finished, r))
                for (int64_t j = 0; j < k; j++) top[j] = (int32_t)e;
            gts_store_y(&c->y, r, k, w);
            for (int64_t j = 0; j < k; j++) {
                op_store_i(ACL_INT32, op_ptr2(&c->idx, r, j), top[j]);
                if (p->has_row_idx) op_store_i(ACL_INT32, op_ptr2(&c->extra, r, j), j * p->rows + r);
            }
        }
    }
}

aclnnStatus gts_run(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    (void)wsSize; /* phase 2 guarantees ex->workspace_size bytes */
    const GtsParams *p = ex->params;
    if (p->rows == 0) return ACLNN_SUCCESS;
    GtsCtx c;
    memset(&c, 0, sizeof c);
    c.p = p;
    const aclTensor *x = ex->inputs[0];
    /* views were checked in phase 1: [rows, E] over the leading dims */
    op_view2d(x, x->ndim - 1, &c.x);
    op_view2d(ex->outputs[0], ex->outputs[0]->ndim - 1, &c.y);
    op_view2d(ex->outputs[1], ex->outputs[1]->ndim - 1, &c.idx);
    if (ex->outputs[2]) op_view2d(ex->outputs[2], ex->outputs[2]->ndim - 1, &c.extra);
    c.finished = ex->inputs[1];
    c.chunk_bytes = gts_chunk_bytes(p);
    c.n_chunks = (int64_t)(ex->workspace_size / c.chunk_bytes);
    if (c.n_chunks > gts_chunks(p)) c.n_chunks = gts_chunks(p);
    if (c.n_chunks < 1) return acl_host_error(ACLNN_ERR_INNER, "aclnn gating softmax: no workspace for a chunk");
    c.scratch = ws;
    acl_host_parallel_for(c.n_chunks, 1, gts_range, &c);
    return ACLNN_SUCCESS;
}

/* ---------------------------------------------------------------- aclnnMoeGatingTopKSoftmax */

static const aclDataType GTS_BOOL_TYPE[] = {ACL_BOOL, ACL_DT_UNDEFINED};

aclnnStatus aclnnMoeGatingTopKSoftmaxGetWorkspaceSize(const aclTensor *x, const aclTensor *finishedOptional,
                                                      int64_t k, const aclTensor *yOut, const aclTensor *expertIdxOut,
                                                      const aclTensor *rowIdxOut, uint64_t *workspaceSize,
                                                      aclOpExecutor **executor)
{
    enum { X, FINISHED, Y_OUT, IDX_OUT, ROW_OUT };
    static const OpParamSpec params[] = {
        [X] = {"x", OP_IN, OP_FLOAT_TYPES, OP_NO_REF, OP_RANK(2) | OP_RANK(3)},
        [FINISHED] = {"finishedOptional", OP_IN | OP_OPTIONAL, GTS_BOOL_TYPE, OP_NO_REF, OP_RANK(1) | OP_RANK(2)},
        [Y_OUT] = {"yOut", OP_OUT, OP_FLOAT_TYPES, X, 0},
        [IDX_OUT] = {"expertIdxOut", OP_OUT, OP_INT32_TYPE, OP_NO_REF, 0},
        [ROW_OUT] = {"rowIdxOut", OP_OUT, OP_INT32_TYPE, OP_NO_REF, 0},
    };
    static const OpSpec op = OP_SPEC("aclnnMoeGatingTopKSoftmax", ACLNN_ERR_INNER_TILING_ERROR, params);
    const void *h[] = {x, finishedOptional, yOut, expertIdxOut, rowIdxOut};
    OP_TRY(op_check_params(&op, h, 0));

    /* 561002: the tiling's shape rules (CheckInShape), then k, then the outputs */
    for (int d = 0; d < x->ndim; d++) {
        if (x->dims[d] == 0) return op_fail_shape(&op, "x dim %d is 0; every dimension must be positive", d);
        if (x->dims[d] > GTS_MAX_DIM)
            return op_fail_shape(&op, "x dim %d (%lld) exceeds %lld", d, (long long)x->dims[d], GTS_MAX_DIM);
    }
    if (finishedOptional) {
        if (finishedOptional->ndim != x->ndim - 1)
            return op_fail_shape(&op, "finishedOptional must be %d-D (the shape of x without its last dim), got "
                                 "%d-D", x->ndim - 1, finishedOptional->ndim);
        for (int d = 0; d < x->ndim - 1; d++)
            if (finishedOptional->dims[d] != x->dims[d])
                return op_fail_shape(&op, "finishedOptional dim %d (%lld) must equal x dim %d (%lld)", d,
                                     (long long)finishedOptional->dims[d], d, (long long)x->dims[d]);
    }
    const int64_t e = x->dims[x->ndim - 1];
    if (k <= 0 || k > e)
        return op_fail_shape(&op, "k (%lld) must be greater than 0 and at most the expert count %lld", (long long)k,
                             (long long)e);
    if (k > GTS_MAX_K) return op_fail_shape(&op, "k (%lld) must not exceed %d", (long long)k, GTS_MAX_K);
    int64_t oshape[3];
    for (int d = 0; d < x->ndim - 1; d++) oshape[d] = x->dims[d];
    oshape[x->ndim - 1] = k;
    OP_TRY(op_check_shape_of(&op, "yOut", yOut, x->ndim, oshape));
    OP_TRY(op_check_shape_of(&op, "expertIdxOut", expertIdxOut, x->ndim, oshape));
    OP_TRY(op_check_shape_of(&op, "rowIdxOut", rowIdxOut, x->ndim, oshape));
    aclTensor v;
    if (!op_view2d(x, x->ndim - 1, &v) || !op_view2d(yOut, x->ndim - 1, &v) ||
        !op_view2d(expertIdxOut, x->ndim - 1, &v) || !op_view2d(rowIdxOut, x->ndim - 1, &v))
        return op_fail_param("aclnnMoeGatingTopKSoftmax", "a strided view whose leading dims cannot be merged into "
                             "one is not supported");

    GtsParams p;
    memset(&p, 0, sizeof p);
    p.rows = acl_host_numel(x) / e;
    if (p.rows * k - 1 > (int64_t)INT32_MAX) /* rowIdxOut holds values up to k*rows - 1 in int32 */
        return op_fail_shape(&op, "k * rows (%lld * %lld) must not exceed 2^31: rowIdxOut is int32", (long long)k,
                             (long long)p.rows);
    p.e = e;
    p.k = k;
    p.has_finished = finishedOptional != NULL;
    p.has_row_idx = 1;
    return op_create_executor(&op, h, gts_run, &p, sizeof p, gts_workspace(&p), workspaceSize, executor);
}

aclnnStatus aclnnMoeGatingTopKSoftmax(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                      aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeGatingTopKSoftmax");
}
