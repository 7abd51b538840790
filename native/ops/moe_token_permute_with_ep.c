/*
 * aclnnMoeTokenPermuteWithEp: MoE token permute restricted to an expert-parallel window of the sorted rows.
 *
 *   flat  = indices.reshape(-1)                      p = t*K + k
 *   first = stable_argsort(flat)                     ties -> lower p
 *   sortedIndicesOut[first[j]] = j                   destination row of (t, k) in the full sorted order
 *   n_out = end - start; n_out <= 0 -> n_out += T*K; n_out = clamp(n_out, 0, T*K)
 *   rows start <= d < start + n_out go to permuteTokensOut[d - start] = tokens[p // K]
 *                                          permuteProbsOut[d - start]  = probs.flat[p]
 *
 * rangeOptional NULL (or of size 0) falls back to MoeTokenPermute: start = 0, end = numOutTokens (the official
 * tiling's `rangePtr == nullptr` branch): numOutTokens 0 keeps every row and 0 < n <= T*K the first n rows; other
 * values are rejected (561002) by the same start/end check as an explicit range (unlike MoeTokenPermute, negative
 * numOutTokens do not mean "all but the last |n|" here).
 *
 * Official kernel detail (ops-transformer moe_token_permute_with_ep/op_kernel/moe_index_copy.h): when the resolved
 * n_out equals T*K the kernel takes its "no numOutTokens" path and writes row d at d, without subtracting start.
 * That only happens for start == end (including the range {0, 0}); we reproduce it: the whole permutation is output.
 * Output rows with start + r >= T*K (possible when end < start) are never written by the NPU kernel (their content
 * is undefined there); here they are zero-filled so that results are deterministic.
 *
 * permuteProbsOut is written only when probsOptional is given (then it must be 1-D [n_out] with the probs dtype, as
 * the official tiling checks); with probsOptional NULL it may be NULL and is neither checked nor written.
 */
#include "aclnnop/aclnn_moe_token_permute_with_ep.h"
#include "op_common.h"

#define PERMUTE_EP_SORT_LIMIT 16777215 /* indices are sorted as fp32 keys on the NPU: T*K and values below this */
#define PERMUTE_EP_MAX_TOPK 512

typedef struct {
    int64_t t, k, h;      /* tokens [T, H] (H = product of trailing dims), indices [T, K] */
    int64_t start;        /* effective window start (0 when n_out == T*K, see above) */
    int64_t n_out;        /* rows of permuteTokensOut */
    int has_probs;
} PermuteEpParams;

/* View a tensor of rank >= 2 as 2-D [dim0, product of the other dims]; returns 0 if the trailing dims cannot be
 * merged into one strided dimension. */
static int permute_ep_view2d(const aclTensor *src, aclTensor *dst)
{
    *dst = *src;
    if (src->ndim == 2) return 1;
    int64_t cols = 1, inner = 1;
    for (int d = 1; d < src->ndim; d++) cols *= src->dims[d];
    for (int d = src->ndim - 1; d >= 1; d--)
        if (src->dims[d] != 1) { inner = src->strides[d]; break; }
    if (cols != 0) {
        int64_t expect = inner;
        for (int d = src->ndim - 1; d >= 1; d--) {
            if (src->dims[d] == 1) continue;
            if (src->strides[d] != expect) return 0;
            expect = src->strides[d] * src->dims[d];
        }
    }
    dst->ndim = 2;
    dst->dims[1] = cols;
    dst->strides[1] = inner;
    return 1;
}

typedef struct {
    const PermuteEpParams *p;
    aclTensor tokens, out_tokens;           /* 2-D views */
    const aclTensor *probs, *out_probs;
    const int64_t *order;                   /* order[j] = flat position of the j-th sorted row */
    int64_t n;                              /* T*K */
} PermuteEpGather;

/* permuteTokensOut row r comes from token order[start + r] / K (zeros past the sorted list, see above) */
static int64_t permute_ep_src_row(const void *vctx, int64_t r)
{
    const PermuteEpGather *c = vctx;
    const int64_t d = c->p->start + r;
    return d < c->n ? c->order[d] / c->p->k : -1;
}

static void permute_ep_probs(const PermuteEpGather *c)
{
    const PermuteEpParams *p = c->p;
    const aclTensor *pr = c->probs;
    const size_t es = (size_t)op_elem_size(pr);
    for (int64_t r = 0; r < p->n_out; r++) {
        const int64_t d = p->start + r;
        if (d >= c->n) {
            memset(op_ptr2(c->out_probs, r, 0), 0, es);
            continue;
        }
        const int64_t src = c->order[d];
        const char *from = pr->ndim == 2 ? op_ptr2(pr, src / p->k, src % p->k) : op_ptr2(pr, src, 0);
        memcpy(op_ptr2(c->out_probs, r, 0), from, es);
    }
}

static aclnnStatus permute_ep_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    static const char *api = "aclnnMoeTokenPermuteWithEp";
    const PermuteEpParams *p = ex->params;
    const aclTensor *indices = ex->inputs[1];
    const int64_t n = p->t * p->k;
    if (n == 0) return ACLNN_SUCCESS;
    if (wsSize < (uint64_t)n * 4u * sizeof(int64_t) || ws == NULL)
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: workspace of %llu bytes is too small", api,
                              (unsigned long long)wsSize);
    int64_t *keys = ws;          /* n: expert ids, later the inverse permutation */
    int64_t *order = keys + n;   /* n */
    int64_t *scratch = order + n; /* 2n */

    op_read_all_i64(indices, keys);
    int64_t max_key = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = keys[i];
        if (v < 0 || v >= PERMUTE_EP_SORT_LIMIT)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: indices[%lld] = %lld is outside [0, %d)", api,
                                  (long long)i, (long long)v, PERMUTE_EP_SORT_LIMIT);
        if (v > max_key) max_key = v;
    }
    op_stable_argsort_i64(keys, n, max_key + 1, order, scratch);
    for (int64_t j = 0; j < n; j++) keys[order[j]] = j;
    op_write_all_i64(ex->outputs[1], keys);

    PermuteEpGather g;
    g.p = p;
    g.probs = ex->inputs[2];
    g.out_probs = ex->outputs[2];
    g.order = order;
    g.n = n;
    if (!permute_ep_view2d(ex->inputs[0], &g.tokens) || !permute_ep_view2d(ex->outputs[0], &g.out_tokens))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: tokens / permuteTokensOut view cannot be read as 2-D",
                              api);
    if (p->has_probs) permute_ep_probs(&g);
    op_gather_rows(&g.out_tokens, &g.tokens, p->n_out, p->h, permute_ep_src_row, &g);
    return ACLNN_SUCCESS;
}


aclnnStatus aclnnMoeTokenPermuteWithEpGetWorkspaceSize(const aclTensor *tokens, const aclTensor *indices,
                                                       const aclTensor *probsOptional, const aclIntArray *rangeOptional,
                                                       int64_t numOutTokens, bool paddedMode,
                                                       const aclTensor *permuteTokensOut,
                                                       const aclTensor *sortedIndicesOut,
                                                       const aclTensor *permuteProbsOut, uint64_t *workspaceSize,
                                                       aclOpExecutor **executor)
{
    static const char *api = "aclnnMoeTokenPermuteWithEp";
    /* 161001: required tensors */
    OP_TRY(op_check_not_null(api, "tokens", tokens));
    OP_TRY(op_check_not_null(api, "indices", indices));
    OP_TRY(op_check_not_null(api, "permuteTokensOut", permuteTokensOut));
    OP_TRY(op_check_not_null(api, "sortedIndicesOut", sortedIndicesOut));
    if (probsOptional != NULL) OP_TRY(op_check_not_null(api, "permuteProbsOut", permuteProbsOut));
    OP_TRY(op_check_not_null(api, "workspaceSize", workspaceSize));
    OP_TRY(op_check_not_null(api, "executor", executor));

    /* 161002: dtypes and formats */
    OP_TRY(op_check_dtype(api, "tokens", tokens, OP_FLOAT_TYPES));
    OP_TRY(op_check_dtype(api, "indices", indices, OP_INDEX_TYPES));
    OP_TRY(op_check_same_dtype(api, "permuteTokensOut", permuteTokensOut, "tokens", tokens));
    OP_TRY(op_check_dtype(api, "sortedIndicesOut", sortedIndicesOut, OP_INT32_TYPE));
    OP_TRY(op_check_format(api, "tokens", tokens));
    OP_TRY(op_check_format(api, "indices", indices));
    OP_TRY(op_check_format(api, "permuteTokensOut", permuteTokensOut));
    OP_TRY(op_check_format(api, "sortedIndicesOut", sortedIndicesOut));
    if (probsOptional != NULL) {
        OP_TRY(op_check_same_dtype(api, "probsOptional", probsOptional, "tokens", tokens));
        OP_TRY(op_check_same_dtype(api, "permuteProbsOut", permuteProbsOut, "probsOptional", probsOptional));
        OP_TRY(op_check_format(api, "probsOptional", probsOptional));
        OP_TRY(op_check_format(api, "permuteProbsOut", permuteProbsOut));
    }

    /* 561002: attributes (official tiling CheckAndGetAttrsInfo) */
    int64_t start = 0, end = numOutTokens;
    if (rangeOptional != NULL && rangeOptional->size != 0) {
        if (rangeOptional->size != 2)
            return op_fail_tiling(api, "rangeOptional must have 2 elements [start, end], got %llu",
                                  (unsigned long long)rangeOptional->size);
        start = rangeOptional->values[0];
        end = rangeOptional->values[1];
    }
    if (paddedMode) return op_fail_tiling(api, "paddedMode true is not supported (only false)");

    /* 561002: input shapes (official tiling CheckInputShape) */
    if (indices->ndim != 1 && indices->ndim != 2)
        return op_fail_tiling(api, "indices must be 1-D or 2-D, got %d-D", indices->ndim);
    if (tokens->ndim < 2) return op_fail_tiling(api, "tokens must be at least 2-D [T, H], got %d-D", tokens->ndim);
    const int64_t t = tokens->dims[0];
    if (indices->dims[0] != t)
        return op_fail_tiling(api, "tokens dim 0 (%lld) must equal indices dim 0 (%lld)", (long long)t,
                              (long long)indices->dims[0]);
    if (probsOptional != NULL) {
        if (probsOptional->ndim != indices->ndim)
            return op_fail_tiling(api, "probsOptional must have the rank of indices (%d-D), got %d-D", indices->ndim,
                                  probsOptional->ndim);
        if (probsOptional->dims[0] != t)
            return op_fail_tiling(api, "probsOptional dim 0 (%lld) must equal tokens dim 0 (%lld)",
                                  (long long)probsOptional->dims[0], (long long)t);
        if (indices->ndim == 2 && probsOptional->dims[1] != indices->dims[1])
            return op_fail_tiling(api, "probsOptional dim 1 (%lld) must equal indices dim 1 (%lld)",
                                  (long long)probsOptional->dims[1], (long long)indices->dims[1]);
    }
    int64_t h = 1;
    for (int d = 1; d < tokens->ndim; d++) h *= tokens->dims[d];
    const int64_t k = indices->ndim == 2 ? indices->dims[1] : 1;
    if (k < 1 || k > PERMUTE_EP_MAX_TOPK)
        return op_fail_tiling(api, "indices dim 1 (top-k) must be in [1, %d], got %lld", PERMUTE_EP_MAX_TOPK,
                              (long long)k);
    const int64_t n = t * k;
    if (n >= PERMUTE_EP_SORT_LIMIT)
        return op_fail_tiling(api, "indices has %lld elements, must be fewer than %d", (long long)n,
                              PERMUTE_EP_SORT_LIMIT);
    if (start < 0 || start > n || end < 0 || end > n)
        return op_fail_tiling(api, "range start (%lld) and end (%lld) must be in [0, T*K = %lld]", (long long)start,
                              (long long)end, (long long)n);
    int64_t n_out = end - start;
    if (n_out <= 0) n_out += n;
    if (n_out > n) n_out = n;
    if (n_out < 0) n_out = 0;

    /* 561002: output shapes (official tiling CheckOutputShape) */
    if (permuteTokensOut->ndim < 2)
        return op_fail_tiling(api, "permuteTokensOut must be at least 2-D, got %d-D", permuteTokensOut->ndim);
    int64_t out_cols = 1;
    for (int d = 1; d < permuteTokensOut->ndim; d++) out_cols *= permuteTokensOut->dims[d];
    if (sortedIndicesOut->ndim != 1 || sortedIndicesOut->dims[0] != n)
        return op_fail_tiling(api, "sortedIndicesOut must be 1-D [T*K = %lld]", (long long)n);
    if (out_cols != h)
        return op_fail_tiling(api, "permuteTokensOut hidden size must be %lld, got %lld", (long long)h,
                              (long long)out_cols);
    if (permuteTokensOut->dims[0] != n_out)
        return op_fail_tiling(api, "permuteTokensOut dim 0 must be %lld (rows of range [%lld, %lld)), got %lld",
                              (long long)n_out, (long long)start, (long long)end,
                              (long long)permuteTokensOut->dims[0]);
    if (probsOptional != NULL) {
        if (permuteProbsOut->ndim != 1)
            return op_fail_tiling(api, "permuteProbsOut must be 1-D, got %d-D", permuteProbsOut->ndim);
        if (permuteProbsOut->dims[0] != n_out)
            return op_fail_tiling(api, "permuteProbsOut must be [%lld], got [%lld]", (long long)n_out,
                                  (long long)permuteProbsOut->dims[0]);
    }

    /* views of rank > 2 must merge into [rows, H] */
    aclTensor v;
    if (!permute_ep_view2d(tokens, &v))
        return op_fail_param(api, "tokens: the trailing dims of this strided view cannot be merged into one");
    if (!permute_ep_view2d(permuteTokensOut, &v))
        return op_fail_param(api, "permuteTokensOut: the trailing dims of this strided view cannot be merged");

    PermuteEpParams p = {t, k, h, n_out == n ? 0 : start, n_out, probsOptional != NULL};
    const aclTensor *ins[] = {tokens, indices, probsOptional};
    const aclTensor *outs[] = {permuteTokensOut, sortedIndicesOut, probsOptional != NULL ? permuteProbsOut : NULL};
    uint64_t ws = (uint64_t)n * 4u * sizeof(int64_t);
    return acl_host_executor_create(api, permute_ep_kernel, ins, 3, outs, 3, &p, sizeof p, ws, workspaceSize,
                                    executor);
}

aclnnStatus aclnnMoeTokenPermuteWithEp(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                       aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeTokenPermuteWithEp");
}
