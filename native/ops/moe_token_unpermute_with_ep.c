/*
 * aclnnMoeTokenUnpermuteWithEp: the inverse of MoeTokenPermuteWithEp, gathering back the rows of this rank's window.
 *
 *   for t in [0, T): acc = 0 (fp32)
 *     for k ascending: d = sortedIndices[t*K + k]
 *       if start <= d < end and (no probs or probs[t, k] != 0): acc += float(permutedTokens[d - start]) * prob
 *     out[t] = RNE(acc)
 *
 * Range handling:
 *   - rangeOptional given ([start, end]): used as is, like the official kernel (moe_token_unpermute_with_ep.h);
 *     an empty window (start >= end, e.g. {0, 0}) contributes nothing and the output is all zeros, as on the NPU.
 *   - rangeOptional NULL (or of size 0): the documented fallback to MoeTokenUnpermute, i.e. start = 0 and
 *     end = rows of permutedTokens (rows dropped by numOutTokens are skipped). Note: the official tiling sets
 *     start = end = 0 in this case, which would make the kernel output zeros; we follow the documentation.
 * Safety: the NPU trusts the range; here a row d inside the window with d - start >= rows of permutedTokens that
 * would be read, or any negative sortedIndices value, is an error (ACLNN_ERR_PARAM_INVALID) reported before any
 * output is written.
 * probsOptional may have a different float dtype than permutedTokens (the official tiling keys on the probs dtype).
 * restoreShapeOptional: CANN documents it as "nullptr only"; we accept NULL or a 2-element array equal to [T, H].
 */
#include "aclnnop/aclnn_moe_token_unpermute_with_ep.h"
#include "op_common.h"


typedef struct {
    int64_t t, k, h, rows; /* out [T, H], sortedIndices [T*K], permutedTokens [rows, H] */
    int64_t start, end;
    int has_probs;
} UnpermuteEpParams;

typedef struct {
    const UnpermuteEpParams *p;
    const aclTensor *permuted, *probs, *out;
    const int64_t *idx;   /* sortedIndices as int64 */
    float *scratch;       /* per chunk: 2*H floats */
    int64_t n_chunks;
} UnpermuteEpCtx;

/* Strided layouts (or more than OP_ROW_MAX_TERMS terms): acc += float(row) * prob through an fp32 copy of the row,
 * the same operations as op_row_weighted_sum */
static void unpermute_ep_accumulate(const aclTensor *t, int64_t r, int64_t h, float prob, float *acc, float *tmp)
{
    op_load_row_f32(t, r, h, tmp);
    for (int64_t j = 0; j < h; j++) {
        float prod = tmp[j] * prob;
        acc[j] += prod;
    }
}

static void unpermute_ep_chunks(void *vctx, int64_t begin, int64_t end)
{
    const UnpermuteEpCtx *c = vctx;
    const UnpermuteEpParams *p = c->p;
    const int64_t h = p->h;
    const int fast = c->permuted->strides[1] == 1 && c->out->strides[1] == 1 && p->k <= OP_ROW_MAX_TERMS;
    for (int64_t chunk = begin; chunk < end; chunk++) {
        float *acc = fast ? NULL : c->scratch + chunk * 2 * h; /* scratch: the strided path only */
        float *row = fast ? NULL : acc + h;
        int64_t t0 = p->t * chunk / c->n_chunks, t1 = p->t * (chunk + 1) / c->n_chunks;
        for (int64_t t = t0; t < t1; t++) {
            OpRowTerm T[OP_ROW_MAX_TERMS];
            int64_t n = 0;
            if (!fast)
                for (int64_t j = 0; j < h; j++) acc[j] = 0.0f;
            for (int64_t k = 0; k < p->k; k++) {
                int64_t d = c->idx[t * p->k + k];
                /* the last bound only matters when the workspace overlaps `out` (a caller error): validated data
                 * never reaches it */
                if (d < p->start || d >= p->end || d - p->start >= p->rows) continue;
                float prob = 1.0f;
                if (p->has_probs) {
                    prob = op_load_f(c->probs->dtype, op_ptr2(c->probs, t, k));
                    if (prob == 0.0f) continue;
                }
                if (fast) {
                    T[n].x = op_ptr2(c->permuted, d - p->start, 0);
                    T[n].bias = NULL;
                    T[n].scale = prob;
                    n++;
                } else {
                    unpermute_ep_accumulate(c->permuted, d - p->start, h, prob, acc, row);
                }
            }
            /* fp32 accumulation and one rounding for every dtype (fp16 included, unlike finalize) */
            if (fast) op_row_weighted_sum(c->out->dtype, 0, op_ptr2(c->out, t, 0), NULL, NULL, T, n, h);
            else op_store_row_f32(c->out, t, h, acc);
        }
    }
}

static int64_t unpermute_ep_chunk_count(int64_t t)
{
    int64_t n = acl_host_num_threads();
    if (n < 1) n = 1;
    if (n > t) n = t;
    return n < 1 ? 1 : n;
}

#define UNPERMUTE_EP_ALIGN(x) (((x) + 63u) & ~(uint64_t)63u)

static aclnnStatus unpermute_ep_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    (void)wsSize; /* scratch is sized by ex->workspace_size (see op_common.h), never by the caller's claim */
    static const char *api = "aclnnMoeTokenUnpermuteWithEp";
    const UnpermuteEpParams *p = ex->params;
    const int64_t n = p->t * p->k;
    if (n == 0) return ACLNN_SUCCESS;
    const uint64_t idx_bytes = UNPERMUTE_EP_ALIGN((uint64_t)n * sizeof(int64_t));
    const uint64_t chunk_bytes = (uint64_t)p->h * 2u * sizeof(float);
    int64_t *idx = ws;
    const aclTensor *probs = ex->inputs[2];

    /* data checks before anything is written */
    op_read_all_i64(ex->inputs[1], idx);
    for (int64_t i = 0; i < n; i++) {
        int64_t d = idx[i];
        if (d < 0)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: sortedIndices[%lld] = %lld is negative", api,
                                  (long long)i, (long long)d);
        if (d < p->start || d >= p->end || d - p->start < p->rows) continue; /* start >= 0: no overflow */
        if (p->has_probs && op_load_f(probs->dtype, op_ptr2(probs, i / p->k, i % p->k)) == 0.0f) continue;
        return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                              "%s: sortedIndices[%lld] = %lld selects row %lld of permutedTokens, which has %lld "
                              "rows (range [%lld, %lld))",
                              api, (long long)i, (long long)d, (long long)(d - p->start), (long long)p->rows,
                              (long long)p->start, (long long)p->end);
    }
    if (p->h == 0) return ACLNN_SUCCESS;

    const aclTensor *permuted = ex->inputs[0], *out = ex->outputs[0];
    if (permuted->strides[1] == 1 && out->strides[1] == 1 && p->k <= OP_ROW_MAX_TERMS) {
        /* contiguous rows need no scratch: one "chunk" per token, handed out dynamically in grains of about
         * OP_PARALLEL_MIN_WORK elements moved (a small call runs in the caller, without waking the pool) */
        UnpermuteEpCtx c = {p, permuted, probs, out, idx, NULL, p->t};
        acl_host_parallel_for(p->t, 1 + OP_PARALLEL_MIN_WORK / p->h / (p->k + 1), unpermute_ep_chunks, &c);
        return ACLNN_SUCCESS;
    }
    int64_t n_chunks = unpermute_ep_chunk_count(p->t);
    uint64_t fit = (ex->workspace_size - idx_bytes) / chunk_bytes;
    if ((uint64_t)n_chunks > fit) n_chunks = (int64_t)fit;
    UnpermuteEpCtx c = {p, permuted, probs, out, idx, (float *)((char *)ws + idx_bytes), n_chunks};
    acl_host_parallel_for(n_chunks, 1, unpermute_ep_chunks, &c);
    return ACLNN_SUCCESS;
}


aclnnStatus aclnnMoeTokenUnpermuteWithEpGetWorkspaceSize(const aclTensor *permutedTokens,
                                                         const aclTensor *sortedIndices,
                                                         const aclTensor *probsOptional, int64_t numTopk,
                                                         const aclIntArray *rangeOptional, bool paddedMode,
                                                         const aclIntArray *restoreShapeOptional,
                                                         const aclTensor *out, uint64_t *workspaceSize,
                                                         aclOpExecutor **executor)
{
    enum { PERMUTED, SORTED, PROBS, RANGE, RESTORE, OUT };
    static const OpParamSpec params[] = {
        [PERMUTED] = {"permutedTokens", OP_IN, OP_FLOAT_TYPES, OP_NO_REF, OP_RANK(2)},
        [SORTED] = {"sortedIndices", OP_IN, OP_INT32_TYPE, OP_NO_REF, OP_RANK(1)},
        /* may have another float dtype than permutedTokens (the official tiling keys on the probs dtype) */
        [PROBS] = {"probsOptional", OP_IN | OP_OPTIONAL, OP_FLOAT_TYPES, OP_NO_REF, OP_RANK(2)},
        [RANGE] = {"rangeOptional", OP_INT_ARRAY | OP_OPTIONAL, NULL, OP_NO_REF, 0},
        [RESTORE] = {"restoreShapeOptional", OP_INT_ARRAY | OP_OPTIONAL, NULL, OP_NO_REF, 0},
        [OUT] = {"out", OP_OUT, NULL, PERMUTED, OP_RANK(2)},
    };
    static const OpSpec op = OP_SPEC("aclnnMoeTokenUnpermuteWithEp", ACLNN_ERR_INNER_TILING_ERROR, params);
    const void *h_args[] = {permutedTokens, sortedIndices, probsOptional, rangeOptional, restoreShapeOptional, out};
    OP_TRY(op_check_params(&op, h_args, 0));

    /* 561002: attributes and shapes (official tiling MoeTokenUnpermuteWithEpInputParamCheck / Init) */
    if (numTopk < 1) return op_fail_shape(&op, "numTopk must be at least 1, got %lld", (long long)numTopk);
    if (paddedMode) return op_fail_shape(&op, "paddedMode true is not supported (only false)");
    const int64_t rows = permutedTokens->dims[0], h = permutedTokens->dims[1], n = sortedIndices->dims[0];
    int64_t start = 0, end = rows;
    OP_TRY(op_read_range(&op, "rangeOptional", rangeOptional, &start, &end));
    if (numTopk > OP_MAX_TOPK)
        return op_fail_shape(&op, "numTopk (%lld) must not exceed %d", (long long)numTopk, OP_MAX_TOPK);
    if (probsOptional != NULL) {
        if (probsOptional->dims[1] != numTopk)
            return op_fail_shape(&op, "numTopk (%lld) must equal probsOptional dim 1 (%lld)", (long long)numTopk,
                                  (long long)probsOptional->dims[1]);
        int64_t pn;
        if (!op_mul_ok(probsOptional->dims[0], probsOptional->dims[1], &pn) || n != pn)
            return op_fail_shape(&op, "sortedIndices length (%lld) must equal probsOptional dim 0 * dim 1 (%lld * %lld)",
                                 (long long)n, (long long)probsOptional->dims[0], (long long)probsOptional->dims[1]);
    }
    if (n % numTopk != 0)
        return op_fail_shape(&op, "sortedIndices length (%lld) must be a multiple of numTopk (%lld)", (long long)n,
                              (long long)numTopk);
    const int64_t t = n / numTopk;
    if (restoreShapeOptional != NULL && restoreShapeOptional->size != 0) {
        if (restoreShapeOptional->size != 2 || restoreShapeOptional->values[0] != t ||
            restoreShapeOptional->values[1] != h)
            return op_fail_shape(&op, "restoreShapeOptional must be NULL or [T, H] = [%lld, %lld]", (long long)t,
                                  (long long)h);
    }
    const int64_t out_dims[2] = {t, h};
    OP_TRY(op_check_shape_of(&op, "out", out, 2, out_dims));

    UnpermuteEpParams p = {t, numTopk, h, rows, start, end, probsOptional != NULL};
    uint64_t ws = 0;
    if (n > 0) {
        /* per chunk two fp32 rows of H; n and H are element counts of tensors, so below 2^60 each */
        const uint64_t chunk = (uint64_t)h * 2u * sizeof(float), chunks = (uint64_t)unpermute_ep_chunk_count(t);
        if (h > (INT64_C(1) << 56) || chunk > UINT64_MAX / 2 / chunks)
            return op_fail_shape(&op, "permutedTokens hidden size H (%lld) is too large", (long long)h);
        ws = UNPERMUTE_EP_ALIGN((uint64_t)n * sizeof(int64_t)) + chunks * chunk;
    }
    return op_create_executor(&op, h_args, unpermute_ep_kernel, &p, sizeof p, ws, workspaceSize, executor);
}

aclnnStatus aclnnMoeTokenUnpermuteWithEp(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                         aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeTokenUnpermuteWithEp");
}
