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

typedef struct {
    int64_t t, k, h;      /* tokens [T, H] (H = product of trailing dims), indices [T, K] */
    int64_t start;        /* effective window start (0 when n_out == T*K, see above) */
    int64_t n_out;        /* rows of permuteTokensOut */
    int has_probs;
} PermuteEpParams;

typedef struct {
    const PermuteEpParams *p;
    aclTensor tokens, out_tokens;           /* 2-D views */
    const aclTensor *probs, *out_probs;
    const int64_t *order;                   /* order[j] = flat position of the j-th sorted row */
    int64_t n;                              /* T*K */
} PermuteEpGather;

/* flat position of sorted row d < n. The workspace is re-read after sortedIndicesOut was written: the bound keeps a
 * workspace that overlaps an output (a caller error) from reading outside tokens and probs. */
static inline int64_t permute_ep_pair(const PermuteEpGather *c, int64_t d)
{
    const int64_t o = c->order[d];
    return (uint64_t)o < (uint64_t)c->n ? o : 0;
}

/* permuteTokensOut row r comes from token order[start + r] / K (zeros past the sorted list, see above) */
static int64_t permute_ep_src_row(const void *vctx, int64_t r)
{
    const PermuteEpGather *c = vctx;
    const int64_t d = c->p->start + r;
    return d < c->n ? permute_ep_pair(c, d) / c->p->k : -1;
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
        const int64_t src = permute_ep_pair(c, d);
        const char *from = pr->ndim == 2 ? op_ptr2(pr, src / p->k, src % p->k) : op_ptr2(pr, src, 0);
        memcpy(op_ptr2(c->out_probs, r, 0), from, es);
    }
}

static aclnnStatus permute_ep_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    (void)wsSize; /* scratch is sized by ex->workspace_size (see op_common.h), never by the caller's claim */
    static const char *api = "aclnnMoeTokenPermuteWithEp";
    const PermuteEpParams *p = ex->params;
    const aclTensor *indices = ex->inputs[1];
    const int64_t n = p->t * p->k;
    if (n == 0) return ACLNN_SUCCESS;
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
    if (!op_view2d(ex->inputs[0], 1, &g.tokens) || !op_view2d(ex->outputs[0], 1, &g.out_tokens))
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
    enum { TOKENS, INDICES, PROBS, RANGE, TOKENS_OUT, SORTED_OUT, PROBS_OUT };
    static const OpParamSpec params[] = {
        [TOKENS] = {"tokens", OP_IN, OP_FLOAT_TYPES, OP_NO_REF, OP_RANKS_FROM(2)},
        [INDICES] = {"indices", OP_IN, OP_INDEX_TYPES, OP_NO_REF, OP_RANK(1) | OP_RANK(2)},
        [PROBS] = {"probsOptional", OP_IN | OP_OPTIONAL, NULL, TOKENS, OP_RANK(1) | OP_RANK(2)},
        [RANGE] = {"rangeOptional", OP_INT_ARRAY | OP_OPTIONAL, NULL, OP_NO_REF, 0},
        [TOKENS_OUT] = {"permuteTokensOut", OP_OUT, NULL, TOKENS, OP_RANKS_FROM(2)},
        [SORTED_OUT] = {"sortedIndicesOut", OP_OUT, OP_INT32_TYPE, OP_NO_REF, 0},
        /* required with probsOptional; without it neither checked nor written */
        [PROBS_OUT] = {"permuteProbsOut", OP_OUT | OP_OPTIONAL, NULL, PROBS, OP_RANK(1)},
    };
    static const OpSpec op = OP_SPEC("aclnnMoeTokenPermuteWithEp", ACLNN_ERR_INNER_TILING_ERROR, params);
    const int has_probs = probsOptional != NULL;
    const void *h[] = {tokens, indices, probsOptional, rangeOptional, permuteTokensOut, sortedIndicesOut,
                       has_probs ? permuteProbsOut : NULL};
    OP_TRY(op_check_params(&op, h, has_probs ? 1u << PROBS_OUT : 0));

    /* 561002: attributes (official tiling CheckAndGetAttrsInfo) */
    int64_t start = 0, end = numOutTokens;
    OP_TRY(op_read_range(&op, "rangeOptional", rangeOptional, &start, &end));
    if (paddedMode) return op_fail_shape(&op, "paddedMode true is not supported (only false)");

    /* 561002: input shapes (official tiling CheckInputShape) */
    const int64_t t = tokens->dims[0];
    if (indices->dims[0] != t)
        return op_fail_shape(&op, "tokens dim 0 (%lld) must equal indices dim 0 (%lld)", (long long)t,
                             (long long)indices->dims[0]);
    if (has_probs) {
        if (probsOptional->ndim != indices->ndim)
            return op_fail_shape(&op, "probsOptional must have the rank of indices (%d-D), got %d-D", indices->ndim,
                                 probsOptional->ndim);
        if (probsOptional->dims[0] != t)
            return op_fail_shape(&op, "probsOptional dim 0 (%lld) must equal tokens dim 0 (%lld)",
                                 (long long)probsOptional->dims[0], (long long)t);
        if (indices->ndim == 2 && probsOptional->dims[1] != indices->dims[1])
            return op_fail_shape(&op, "probsOptional dim 1 (%lld) must equal indices dim 1 (%lld)",
                                 (long long)probsOptional->dims[1], (long long)indices->dims[1]);
    }
    int64_t h_in, h_out; /* hidden size: the product of the trailing dims */
    if (!op_trailing_numel(tokens, &h_in) || !op_trailing_numel(permuteTokensOut, &h_out))
        return op_fail_shape(&op, "tokens / permuteTokensOut: the product of the trailing dims overflows int64");
    const int64_t k = indices->ndim == 2 ? indices->dims[1] : 1;
    if (k < 1 || k > OP_MAX_TOPK)
        return op_fail_shape(&op, "indices dim 1 (top-k) must be in [1, %d], got %lld", OP_MAX_TOPK, (long long)k);
    const int64_t n = t * k; /* t < 2^63 / 512: an element count of a tensor whose storage was accepted */
    if (t >= PERMUTE_EP_SORT_LIMIT || n >= PERMUTE_EP_SORT_LIMIT)
        return op_fail_shape(&op, "indices has %lld x %lld elements, must be fewer than %d", (long long)t,
                             (long long)k, PERMUTE_EP_SORT_LIMIT);
    if (start > n || end < 0 || end > n) /* end = numOutTokens without a range */
        return op_fail_shape(&op, "range start (%lld) and end (%lld) must be in [0, T*K = %lld]", (long long)start,
                             (long long)end, (long long)n);
    int64_t eff_start, n_out;
    op_permute_window(start, end, n, &eff_start, &n_out);

    /* 561002: output shapes (official tiling CheckOutputShape) */
    if (sortedIndicesOut->ndim != 1 || sortedIndicesOut->dims[0] != n)
        return op_fail_shape(&op, "sortedIndicesOut must be 1-D [T*K = %lld]", (long long)n);
    if (h_out != h_in)
        return op_fail_shape(&op, "permuteTokensOut hidden size must be %lld, got %lld", (long long)h_in,
                             (long long)h_out);
    if (permuteTokensOut->dims[0] != n_out)
        return op_fail_shape(&op, "permuteTokensOut dim 0 must be %lld (rows of range [%lld, %lld)), got %lld",
                             (long long)n_out, (long long)start, (long long)end, (long long)permuteTokensOut->dims[0]);
    if (has_probs && permuteProbsOut->dims[0] != n_out)
        return op_fail_shape(&op, "permuteProbsOut must be [%lld], got [%lld]", (long long)n_out,
                             (long long)permuteProbsOut->dims[0]);

    /* views of rank > 2 must merge into [rows, H] */
    aclTensor v;
    if (!op_view2d(tokens, 1, &v))
        return op_fail_param(op.api, "tokens: the trailing dims of this strided view cannot be merged into one");
    if (!op_view2d(permuteTokensOut, 1, &v))
        return op_fail_param(op.api, "permuteTokensOut: the trailing dims of this strided view cannot be merged");

    PermuteEpParams p = {t, k, h_in, eff_start, n_out, has_probs};
    const uint64_t ws = (uint64_t)n * 4u * sizeof(int64_t);
    return op_create_executor(&op, h, permute_ep_kernel, &p, sizeof p, ws, workspaceSize, executor);
}

aclnnStatus aclnnMoeTokenPermuteWithEp(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                       aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeTokenPermuteWithEp");
}
