/*
 * aclnnMoeTokenUnpermute: put the expert outputs back in token order, summing each token's K rows weighted by its
 * routing probabilities (the inverse of aclnnMoeTokenPermute).
 *
 *   K = probsOptional dim 1 (1 without probs), T = len(sortedIndices) / K
 *   out[t] = sum over k ascending of permutedTokens[d] * probs[t, k],  d = sortedIndices[t*K + k]
 *            skipping d >= rows of permutedTokens (rows dropped by numOutTokens) and probs[t, k] == 0
 *   accumulated in fp32, the first term as x * p and each next one added, rounded once to nearest-even
 *   (op_kernel/moe_token_unpermute.h: Cast to fp32, Muls, Add, Cast CAST_RINT).
 *
 * Validation is the A2/A3 one (the generated MoeTokenUnpermute op: its tiling failures are 561002). Deviations:
 *   - out must be [T, H] (the NPU tiling does not check it, the infershape defines it);
 *   - paddedMode true is rejected (561002) as documented ("only false"); the A2/A3 tiling ignores it;
 *   - restoreShapeOptional is ignored, as documented for paddedMode false (torch_npu passes [1] by default);
 *   - a negative sortedIndices value that would be read (no probs, or probs[t, k] != 0) is an error (161002)
 *     where the NPU would read out of bounds; with probs[t, k] == 0 it is skipped as on the NPU, which
 *     vLLM-Ascend relies on when it masks the -1 rows of init_routing_v2 with zero weights.
 */
#include "aclnnop/aclnn_moe_token_unpermute.h"
#include "moe_unpermute_rows.h"

#define UNPERMUTE_ALIGN(x) (((uint64_t)(x) + 63u) & ~(uint64_t)63u)

/* ---------------------------------------------------------------- the shared combine */

typedef struct {
    const UnpermuteRows *u;
    float *scratch; /* per chunk: 2*H floats */
    int64_t n_chunks;
} UnpermuteRowsCtx;

static int64_t unpermute_rows_chunks(int64_t t)
{
    int64_t n = acl_host_num_threads();
    if (n > t) n = t;
    return n < 1 ? 1 : n;
}

uint64_t moe_unpermute_rows_workspace(int64_t t, int64_t h)
{
    return (uint64_t)unpermute_rows_chunks(t) * (uint64_t)h * 2u * sizeof(float);
}

static void unpermute_rows_range(void *vctx, int64_t begin, int64_t end)
{
    const UnpermuteRowsCtx *c = vctx;
    const UnpermuteRows *u = c->u;
    const int64_t h = u->h;
    /* contiguous rows go through op_row_weighted_sum (vectorised, same operations and rounding) */
    const int fast = u->permuted->strides[1] == 1 && u->out->strides[1] == 1 && u->k <= OP_ROW_MAX_TERMS;
    for (int64_t chunk = begin; chunk < end; chunk++) {
        float *acc = fast ? NULL : c->scratch + chunk * 2 * h, *row = fast ? NULL : acc + h; /* strided path */
        const int64_t t0 = u->t * chunk / c->n_chunks, t1 = u->t * (chunk + 1) / c->n_chunks;
        for (int64_t t = t0; t < t1; t++) {
            OpRowTerm terms[OP_ROW_MAX_TERMS];
            int64_t nterms = 0;
            if (!fast)
                for (int64_t j = 0; j < h; j++) acc[j] = 0.0f;
            for (int64_t k = 0; k < u->k; k++) {
                const int64_t d = u->idx[t * u->k + k];
                if (d < 0 || d >= u->rows) continue;
                const float prob = u->prob ? u->prob[t * u->k + k] : 1.0f;
                if (prob == 0.0f) continue;
                if (fast) {
                    terms[nterms].x = op_ptr2(u->permuted, d, 0);
                    terms[nterms].bias = NULL;
                    terms[nterms].scale = prob;
                    nterms++;
                } else {
                    op_load_row_f32(u->permuted, d, h, row);
                    for (int64_t j = 0; j < h; j++) {
                        const float prod = row[j] * prob;
                        acc[j] += prod;
                    }
                }
            }
            if (fast) op_row_weighted_sum(u->out->dtype, 0, op_ptr2(u->out, t, 0), NULL, NULL, terms, nterms, h);
            else op_store_row_f32(u->out, t, h, acc);
        }
    }
}

void moe_unpermute_rows(const UnpermuteRows *u, void *scratch, uint64_t scratch_bytes)
{
    if (u->t <= 0 || u->h <= 0) return;
    if (u->permuted->strides[1] == 1 && u->out->strides[1] == 1 && u->k <= OP_ROW_MAX_TERMS) {
        /* contiguous rows need no scratch: one "chunk" per token, handed out dynamically in grains of about
         * OP_PARALLEL_MIN_WORK elements moved (a small call runs in the caller, without waking the pool) */
        UnpermuteRowsCtx c = {u, NULL, u->t};
        acl_host_parallel_for(u->t, 1 + OP_PARALLEL_MIN_WORK / u->h / (u->k + 1), unpermute_rows_range, &c);
        return;
    }
    int64_t n_chunks = unpermute_rows_chunks(u->t);
    const uint64_t fit = scratch_bytes / ((uint64_t)u->h * 2u * sizeof(float));
    if ((uint64_t)n_chunks > fit) n_chunks = (int64_t)fit; /* phase 1 sized it for this many; never more */
    if (n_chunks < 1) return;
    UnpermuteRowsCtx c = {u, scratch, n_chunks};
    acl_host_parallel_for(n_chunks, 1, unpermute_rows_range, &c);
}

/* ---------------------------------------------------------------- aclnnMoeTokenUnpermute */

typedef struct {
    int64_t t, k, h, rows;
    int has_probs;
} UnpermuteParams;

static uint64_t unpermute_ws(const UnpermuteParams *p)
{
    const int64_t n = p->t * p->k;
    if (n == 0) return 0;
    return UNPERMUTE_ALIGN(n * sizeof(int64_t)) + UNPERMUTE_ALIGN(n * sizeof(float)) +
           moe_unpermute_rows_workspace(p->t, p->h);
}

static aclnnStatus unpermute_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    static const char *api = "aclnnMoeTokenUnpermute";
    const UnpermuteParams *p = ex->params;
    const int64_t n = p->t * p->k;
    if (n == 0) return ACLNN_SUCCESS;
    wsSize = ex->workspace_size; /* phase 2 guarantees phase 1's block; size scratch from it, not the claim */
    int64_t *idx = ws;
    float *prob = (float *)((char *)ws + UNPERMUTE_ALIGN(n * sizeof(int64_t)));
    char *scratch = (char *)prob + UNPERMUTE_ALIGN(n * sizeof(float));
    const aclTensor *probs = ex->inputs[2];

    op_read_all_i64(ex->inputs[1], idx);
    if (p->has_probs)
        for (int64_t i = 0; i < n; i++) prob[i] = op_load_f(probs->dtype, op_ptr2(probs, i / p->k, i % p->k));
    /* data checks before anything is written */
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] >= 0 || (p->has_probs && prob[i] == 0.0f)) continue;
        return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                              "%s: sortedIndices[%lld] = %lld is negative (only a slot whose probs entry is 0 may "
                              "hold a negative index)", api, (long long)i, (long long)idx[i]);
    }
    UnpermuteRows u = {ex->inputs[0], ex->outputs[0], idx, p->has_probs ? prob : NULL, p->t, p->k, p->h, p->rows};
    moe_unpermute_rows(&u, scratch, wsSize - (uint64_t)(scratch - (char *)ws));
    return ACLNN_SUCCESS;
}

aclnnStatus aclnnMoeTokenUnpermuteGetWorkspaceSize(const aclTensor *permutedTokens, const aclTensor *sortedIndices,
                                                   const aclTensor *probsOptional, bool paddedMode,
                                                   const aclIntArray *restoreShapeOptional, aclTensor *out,
                                                   uint64_t *workspaceSize, aclOpExecutor **executor)
{
    enum { PERMUTED, SORTED, PROBS, RESTORE, OUT };
    static const OpParamSpec params[] = {
        [PERMUTED] = {"permutedTokens", OP_IN, OP_FLOAT_TYPES, OP_NO_REF, OP_RANK(2)},
        [SORTED] = {"sortedIndices", OP_IN, OP_INT32_TYPE, OP_NO_REF, OP_RANK(1)},
        [PROBS] = {"probsOptional", OP_IN | OP_OPTIONAL, OP_FLOAT_TYPES, OP_NO_REF, OP_RANK(2)},
        [RESTORE] = {"restoreShapeOptional", OP_IN | OP_OPTIONAL | OP_INT_ARRAY, NULL, OP_NO_REF, 0},
        [OUT] = {"out", OP_OUT, OP_FLOAT_TYPES, PERMUTED, OP_RANK(2)},
    };
    static const OpSpec op = OP_SPEC("aclnnMoeTokenUnpermute", ACLNN_ERR_INNER_TILING_ERROR, params);
    /* restoreShapeOptional is checked for liveness only: documented as unused when paddedMode is false */
    const void *h[] = {permutedTokens, sortedIndices, probsOptional, restoreShapeOptional, out};
    OP_TRY(op_check_params(&op, h, 0));

    /* 561002: the tiling's rules (moe_token_unpermute_tiling.cpp InputParamCheck) and the infershape's out */
    if (paddedMode) return op_fail_shape(&op, "paddedMode true is not supported (only false)");
    const int64_t rows = permutedTokens->dims[0], h_size = permutedTokens->dims[1], n = sortedIndices->dims[0];
    int64_t t = n, k = 1;
    if (probsOptional != NULL) {
        t = probsOptional->dims[0];
        k = probsOptional->dims[1];
        if (n != t * k) /* t*k: the element count of a live tensor, below 2^63 */
            return op_fail_shape(&op, "sortedIndices length (%lld) must equal probsOptional dim 0 * dim 1 (%lld)",
                                 (long long)n, (long long)(t * k));
        if (k > OP_MAX_TOPK)
            return op_fail_shape(&op, "probsOptional dim 1 (top-k, %lld) must not exceed %d", (long long)k,
                                 OP_MAX_TOPK);
    }
    const int64_t out_dims[2] = {t, h_size};
    OP_TRY(op_check_shape_of(&op, "out", out, 2, out_dims));

    UnpermuteParams p = {t, k, h_size, rows, probsOptional != NULL};
    return op_create_executor(&op, h, unpermute_kernel, &p, sizeof p, unpermute_ws(&p), workspaceSize, executor);
}

aclnnStatus aclnnMoeTokenUnpermute(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                   aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeTokenUnpermute");
}
