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

static aclnnStatus permute_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    static const char *api = "aclnnMoeTokenPermute";
    const PermuteParams *p = ex->params;
    const int64_t n = p->t * p->k;
    if (n == 0) return ACLNN_SUCCESS;
    (void)wsSize; /* phase 2 guarantees ex->workspace_size bytes: 4*T*K int64 */
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
    op_view2d(ex->inputs[0], 1, &tokens); /* checked in phase 1 */
    op_view2d(ex->outputs[0], 1, &out);
    PermuteGather g = {order, p->k};
    op_gather_rows(&out, &tokens, p->n_out, p->h, permute_src_row, &g);
    return ACLNN_SUCCESS;
}

aclnnStatus aclnnMoeTokenPermuteGetWorkspaceSize(const aclTensor *tokens, const aclTensor *indices,
                                                 int64_t numOutTokens, bool paddedMode,
                                                 const aclTensor *permuteTokensOut, const aclTensor *sortedIndicesOut,
                                                 uint64_t *workspaceSize, aclOpExecutor **executor)
{
    enum { TOKENS, INDICES, PERMUTED_OUT, SORTED_OUT };
    static const OpParamSpec params[] = {
        [TOKENS] = {"tokens", OP_IN, PERMUTE_TOKEN_TYPES, OP_NO_REF, OP_RANKS_FROM(2)},
        [INDICES] = {"indices", OP_IN, OP_INDEX_TYPES, OP_NO_REF, OP_RANK(1) | OP_RANK(2)},
        [PERMUTED_OUT] = {"permuteTokensOut", OP_OUT, PERMUTE_TOKEN_TYPES, TOKENS, OP_RANKS_FROM(2)},
        [SORTED_OUT] = {"sortedIndicesOut", OP_OUT, OP_INT32_TYPE, OP_NO_REF, OP_RANK(1)},
    };
    static const OpSpec op = OP_SPEC("aclnnMoeTokenPermute", ACLNN_ERR_INNER_TILING_ERROR, params);
    const void *h[] = {tokens, indices, permuteTokensOut, sortedIndicesOut};
    OP_TRY(op_check_params(&op, h, 0));

    /* 561002: the tiling's attribute and shape rules (moe_token_permute_tiling.cpp) */
    if (paddedMode) return op_fail_shape(&op, "paddedMode true is not supported (only false)");
    const int64_t t = tokens->dims[0];
    if (indices->dims[0] != t)
        return op_fail_shape(&op, "tokens dim 0 (%lld) must equal indices dim 0 (%lld)", (long long)t,
                             (long long)indices->dims[0]);
    const int64_t k = indices->ndim == 2 ? indices->dims[1] : 1;
    if (k > OP_MAX_TOPK)
        return op_fail_shape(&op, "indices dim 1 (top-k, %lld) must not exceed %d", (long long)k, OP_MAX_TOPK);
    const int64_t n = t * k; /* both below 2^63 and k <= 512: the product of a live tensor's dims */
    if (n >= PERMUTE_SORT_LIMIT)
        return op_fail_shape(&op, "indices has %lld elements, must be fewer than %d", (long long)n,
                             PERMUTE_SORT_LIMIT);
    int64_t h_size, out_cols;
    if (!op_trailing_numel(tokens, &h_size) || !op_trailing_numel(permuteTokensOut, &out_cols))
        return op_fail_shape(&op, "the hidden size of tokens or permuteTokensOut overflows int64");
    int64_t n_out = numOutTokens <= 0 ? numOutTokens + n : numOutTokens; /* negative: Python-slice semantics */
    if (numOutTokens < -n) n_out = 0;                                       /* (and no overflow on the sum) */
    if (n_out > n) n_out = n;
    if (n_out < 0) n_out = 0;
    if (sortedIndicesOut->dims[0] != n)
        return op_fail_shape(&op, "sortedIndicesOut must be [T*K = %lld], got [%lld]", (long long)n,
                             (long long)sortedIndicesOut->dims[0]);
    if (out_cols != h_size)
        return op_fail_shape(&op, "permuteTokensOut hidden size must be %lld (that of tokens), got %lld",
                             (long long)h_size, (long long)out_cols);
    if (permuteTokensOut->dims[0] != n_out)
        return op_fail_shape(&op, "permuteTokensOut dim 0 must be %lld (numOutTokens %lld resolved against T*K = "
                             "%lld), got %lld", (long long)n_out, (long long)numOutTokens, (long long)n,
                             (long long)permuteTokensOut->dims[0]);
    aclTensor v;
    if (!op_view2d(tokens, 1, &v) || !op_view2d(permuteTokensOut, 1, &v))
        return op_fail_param("aclnnMoeTokenPermute", "tokens / permuteTokensOut: the trailing dims of this strided "
                             "view cannot be merged into one");
    PermuteParams p = {t, k, h_size, n_out};
    return op_create_executor(&op, h, permute_kernel, &p, sizeof p, (uint64_t)n * 4u * sizeof(int64_t),
                              workspaceSize, executor);
}

aclnnStatus aclnnMoeTokenPermute(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                 aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeTokenPermute");
}
