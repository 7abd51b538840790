/*
 * aclnnMoeTokenPermute: sort the (token, slot) pairs by expert id and gather the token rows in that order.
 *
 *   flat  = indices.reshape(-1)                   p = t*K + k (row-major)
 *   first = stable_argsort(flat)                  ascending expert id, ties -> lower p
 *   sortedIndicesOut[first[j]] = j                the destination row of pair p (a scatter index)
 *   n_out = numOutTokens <= 0 ? numOutTokens + T*K : numOutTokens, clamped to [0, T*K]
 *   permuteTokensOut[j] = tokens[first[j] // K]   for j < n_out
 *
 * Validation is the A2/A3 one (the generated MoeTokenPermute op: its tiling failures are 561002). The NPU sorts the
 * ids as fp32 keys, hence the documented limit of 16777215 on T*K and on the id values: ids outside
 * [0, 16777215) are an error here (161002, reported before anything is written). int8 tokens are accepted (the op
 * def lists them); they are copied like any other dtype. T*K == 0 and H == 0 are valid empty cases.
 */
#include "aclnnop/aclnn_moe_token_permute.h"
#include "op_common.h"

#define PERMUTE_SORT_LIMIT 16777215 /* indices are sorted as fp32 keys on the NPU: T*K and values below this */
#define PERMUTE_MAX_TOPK 512

static const aclDataType PERMUTE_TOKEN_TYPES[] = {ACL_FLOAT16, ACL_BF16, ACL_FLOAT, ACL_INT8, ACL_DT_UNDEFINED};

typedef struct {
    int64_t t, k, h; /* tokens [T, H] (H = product of the trailing dims), indices [T, K] */
    int64_t n_out;   /* rows of permuteTokensOut */
} PermuteParams;

typedef struct {
    const int64_t *order; /* order[j] = flat position of the j-th sorted pair */
    int64_t k;
} PermuteGather;

static int64_t permute_src_row(const void *vctx, int64_t j)
{
    const PermuteGather *g = vctx;
    return g->order[j] / g->k;
}

/* A tensor of rank >= 2 as [dim0, product of the other dims]; 0 when the trailing dims are not one strided run.
 * TODO(ops-permute): use the shared view helper once native-ops lands it in op_common. */
static int permute_view2d(const aclTensor *src, aclTensor *dst)
{
    *dst = *src;
    if (src->ndim == 2) return 1;
    int64_t cols = 1, inner = 1, expect = 0;
    for (int d = 1; d < src->ndim; d++) cols *= src->dims[d];
    for (int d = src->ndim - 1; d >= 1; d--) {
        if (src->dims[d] == 1) continue;
        if (expect == 0) inner = expect = src->strides[d];
        if (cols != 0 && src->strides[d] != expect) return 0;
        expect = src->strides[d] * src->dims[d];
    }
    dst->ndim = 2;
    dst->dims[1] = cols;
    dst->strides[1] = inner;
    return 1;
}

static aclnnStatus permute_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    static const char *api = "aclnnMoeTokenPermute";
    const PermuteParams *p = ex->params;
    const int64_t n = p->t * p->k;
    if (n == 0) return ACLNN_SUCCESS;
    if (ws == NULL || wsSize < (uint64_t)n * 4u * sizeof(int64_t))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: workspace of %llu bytes is too small", api,
                              (unsigned long long)wsSize);
    int64_t *keys = ws;           /* n: expert ids, then the inverse permutation */
    int64_t *order = keys + n;    /* n */
    int64_t *scratch = order + n; /* 2n */

    op_read_all_i64(ex->inputs[1], keys);
    int64_t max_key = 0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t v = keys[i];
        if (v < 0 || v >= PERMUTE_SORT_LIMIT)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: indices[%lld] = %lld is outside [0, %d)", api,
                                  (long long)i, (long long)v, PERMUTE_SORT_LIMIT);
        if (v > max_key) max_key = v;
    }
    op_stable_argsort_i64(keys, n, max_key + 1, order, scratch);
    for (int64_t j = 0; j < n; j++) keys[order[j]] = j;
    op_write_all_i64(ex->outputs[1], keys);

    aclTensor tokens, out;
    permute_view2d(ex->inputs[0], &tokens); /* checked in phase 1 */
    permute_view2d(ex->outputs[0], &out);
    PermuteGather g = {order, p->k};
    op_gather_rows(&out, &tokens, p->n_out, p->h, permute_src_row, &g);
    return ACLNN_SUCCESS;
}

aclnnStatus aclnnMoeTokenPermuteGetWorkspaceSize(const aclTensor *tokens, const aclTensor *indices,
                                                 int64_t numOutTokens, bool paddedMode,
                                                 const aclTensor *permuteTokensOut, const aclTensor *sortedIndicesOut,
                                                 uint64_t *workspaceSize, aclOpExecutor **executor)
{
    static const char *api = "aclnnMoeTokenPermute";
    /* 161001 */
    OP_TRY(op_check_not_null(api, "tokens", tokens));
    OP_TRY(op_check_not_null(api, "indices", indices));
    OP_TRY(op_check_not_null(api, "permuteTokensOut", permuteTokensOut));
    OP_TRY(op_check_not_null(api, "sortedIndicesOut", sortedIndicesOut));
    OP_TRY(op_check_not_null(api, "workspaceSize", workspaceSize));
    OP_TRY(op_check_not_null(api, "executor", executor));

    /* 161002: the dtype combinations of the op def, ND formats */
    OP_TRY(op_check_dtype(api, "tokens", tokens, PERMUTE_TOKEN_TYPES));
    OP_TRY(op_check_dtype(api, "indices", indices, OP_INDEX_TYPES));
    OP_TRY(op_check_same_dtype(api, "permuteTokensOut", permuteTokensOut, "tokens", tokens));
    OP_TRY(op_check_dtype(api, "sortedIndicesOut", sortedIndicesOut, OP_INT32_TYPE));
    OP_TRY(op_check_format(api, "tokens", tokens));
    OP_TRY(op_check_format(api, "indices", indices));
    OP_TRY(op_check_format(api, "permuteTokensOut", permuteTokensOut));
    OP_TRY(op_check_format(api, "sortedIndicesOut", sortedIndicesOut));

    /* 561002: the tiling's attribute and shape rules (moe_token_permute_tiling.cpp) */
    if (paddedMode) return op_fail_tiling(api, "paddedMode true is not supported (only false)");
    if (tokens->ndim < 2) return op_fail_tiling(api, "tokens must be at least 2-D [T, H], got %d-D", tokens->ndim);
    if (indices->ndim != 1 && indices->ndim != 2)
        return op_fail_tiling(api, "indices must be 1-D [T] or 2-D [T, K], got %d-D", indices->ndim);
    const int64_t t = tokens->dims[0];
    if (indices->dims[0] != t)
        return op_fail_tiling(api, "tokens dim 0 (%lld) must equal indices dim 0 (%lld)", (long long)t,
                              (long long)indices->dims[0]);
    const int64_t k = indices->ndim == 2 ? indices->dims[1] : 1;
    if (k > PERMUTE_MAX_TOPK)
        return op_fail_tiling(api, "indices dim 1 (top-k, %lld) must not exceed %d", (long long)k, PERMUTE_MAX_TOPK);
    const int64_t n = t * k;
    if (n >= PERMUTE_SORT_LIMIT)
        return op_fail_tiling(api, "indices has %lld elements, must be fewer than %d", (long long)n,
                              PERMUTE_SORT_LIMIT);
    int64_t h = 1;
    for (int d = 1; d < tokens->ndim; d++) h *= tokens->dims[d];
    int64_t n_out = numOutTokens <= 0 ? numOutTokens + n : numOutTokens; /* negative: Python-slice semantics */
    if (n_out > n) n_out = n;
    if (n_out < 0) n_out = 0;

    if (permuteTokensOut->ndim < 2)
        return op_fail_tiling(api, "permuteTokensOut must be at least 2-D, got %d-D", permuteTokensOut->ndim);
    if (sortedIndicesOut->ndim != 1)
        return op_fail_tiling(api, "sortedIndicesOut must be 1-D, got %d-D", sortedIndicesOut->ndim);
    if (sortedIndicesOut->dims[0] != n)
        return op_fail_tiling(api, "sortedIndicesOut must be [T*K = %lld], got [%lld]", (long long)n,
                              (long long)sortedIndicesOut->dims[0]);
    int64_t out_cols = 1;
    for (int d = 1; d < permuteTokensOut->ndim; d++) out_cols *= permuteTokensOut->dims[d];
    if (out_cols != h)
        return op_fail_tiling(api, "permuteTokensOut hidden size must be %lld (that of tokens), got %lld",
                              (long long)h, (long long)out_cols);
    if (permuteTokensOut->dims[0] != n_out)
        return op_fail_tiling(api, "permuteTokensOut dim 0 must be %lld (numOutTokens %lld resolved against T*K = %lld), "
                              "got %lld", (long long)n_out, (long long)numOutTokens, (long long)n,
                              (long long)permuteTokensOut->dims[0]);

    aclTensor v;
    if (!permute_view2d(tokens, &v))
        return op_fail_param(api, "tokens: the trailing dims of this strided view cannot be merged into one");
    if (!permute_view2d(permuteTokensOut, &v))
        return op_fail_param(api, "permuteTokensOut: the trailing dims of this strided view cannot be merged");

    PermuteParams p = {t, k, h, n_out};
    const aclTensor *ins[] = {tokens, indices};
    const aclTensor *outs[] = {permuteTokensOut, sortedIndicesOut};
    return acl_host_executor_create(api, permute_kernel, ins, 2, outs, 2, &p, sizeof p,
                                    (uint64_t)n * 4u * sizeof(int64_t), workspaceSize, executor);
}

aclnnStatus aclnnMoeTokenPermute(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                 aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeTokenPermute");
}
