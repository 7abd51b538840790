/*
 * aclnnMoeTokenPermuteWithRoutingMap: MoE permute driven by a [T, E] token-to-expert mask (MindSpeed's form).
 *
 * dropAndPad false (topK = numOutTokens // T, n_out = topK * T):
 *   rows are listed expert-major: for e ascending, for t ascending with routingMap[t, e]: dest = running count,
 *   permuteTokensOut[dest] = tokens[t], permuteProbsOutOptional[dest] = probs[t, e]           (dest < n_out)
 *   sortedIndicesOut (the stable argsort of the token id of each row, i.e. token-major destinations):
 *     - when the mask has exactly T*topK entries: token t's destinations (ascending) fill the positions
 *       [c_0 + ... + c_{t-1}, ...) (the official golden, `sort(masked_select(...), stable)[1]`);
 *     - otherwise (every row has at most topK entries): token t's r-th destination goes to slot t*topK + r and
 *       unused slots hold -1, as the NPU's non-aligned path (moe_routing_rank_multi_core.h,
 *       moe_sortindices_scatter_multi_core.h) writes them; the rows past the mask's entries are zero here (the NPU
 *       leaves them unwritten).
 *   A row with more than topK entries outside the aligned case makes the NPU write colliding slots (undefined):
 *   it is an error here (161002).
 * dropAndPad true (capacity C = numOutTokens // E, n_out = C * E):
 *   sortedIndicesOut[e*C + j] = j-th token of expert e's column ordered true-first, then by token (the stable
 *   descending argsort of the official golden: columns with fewer than C entries are padded with unrouted tokens),
 *   permuteTokensOut[e*C + j] = tokens[that token], permuteProbsOutOptional[e*C + j] = probs[that token, e].
 *
 * Hand-written op_api: shape/attribute failures found by the op_api are 161002, those of the kernel's tiling
 * 561103 (the l0 op returns nullptr). routingMap int8 values other than 0 and 1 are rejected (161002): the NPU's
 * rank computation would count them as their value.
 */
#include "aclnnop/aclnn_moe_token_permute_with_routing_map.h"
#include "op_common.h"

#define RM_SORT_LIMIT 16777215
#define RM_ALIGN(x) (((uint64_t)(x) + 63u) & ~(uint64_t)63u)

static const aclDataType RM_MAP_TYPES[] = {ACL_INT8, ACL_BOOL, ACL_DT_UNDEFINED};

typedef struct {
    int64_t t, e, h;
    int64_t n_out;     /* rows of every output */
    int64_t topk, cap; /* dropAndPad false / true */
    int drop, has_probs;
} RmPermuteParams;

static int64_t rm_src_row(const void *vctx, int64_t r)
{
    return ((const int64_t *)vctx)[r];
}

static uint64_t rm_ws(const RmPermuteParams *p)
{
    if (p->t == 0 || p->e == 0) return 0;
    /* mask bytes, per-row source token, per-expert column starts (E + 1) */
    return RM_ALIGN(p->t * p->e) + RM_ALIGN((p->n_out + 1) * sizeof(int64_t)) +
           RM_ALIGN((p->e + 1) * sizeof(int64_t)) + RM_ALIGN((p->t + 1) * sizeof(int64_t));
}

static void rm_copy_prob(const aclTensor *out, int64_t r, const aclTensor *probs, int64_t t, int64_t e)
{
    memcpy(op_ptr2(out, r, 0), op_ptr2(probs, t, e), (size_t)op_elem_size(probs));
}

static aclnnStatus rm_permute_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    static const char *api = "aclnnMoeTokenPermuteWithRoutingMap";
    const RmPermuteParams *p = ex->params;
    if (p->t == 0 || p->e == 0) return ACLNN_SUCCESS;
    (void)wsSize; /* phase 2 guarantees ex->workspace_size = rm_ws(p) bytes */
    const int64_t T = p->t, E = p->e;
    uint8_t *mask = ws;
    int64_t *src = (int64_t *)((char *)ws + RM_ALIGN(T * E));      /* n_out source tokens (-1: zero row) */
    int64_t *col = (int64_t *)((char *)src + RM_ALIGN((p->n_out + 1) * sizeof(int64_t))); /* E + 1 */
    int64_t *cnt = (int64_t *)((char *)col + RM_ALIGN((E + 1) * sizeof(int64_t)));        /* T + 1 */
    const aclTensor *map = ex->inputs[1], *probs = ex->inputs[2];
    const aclTensor *out_probs = p->has_probs ? ex->outputs[1] : NULL, *sorted = ex->outputs[2];

    /* read and check the mask before anything is written */
    for (int64_t t = 0; t < T; t++)
        for (int64_t e = 0; e < E; e++) {
            const uint8_t v = *(const uint8_t *)op_ptr2(map, t, e);
            if (map->dtype == ACL_INT8 && v > 1)
                return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: routingMap[%lld, %lld] = %d, must be 0 or 1",
                                      api, (long long)t, (long long)e, (int)(int8_t)v);
            mask[t * E + e] = v != 0;
        }

    if (p->drop) {
        const int64_t C = p->cap;
        for (int64_t e = 0; e < E; e++) {
            int64_t j = 0;
            for (int pass = 1; pass >= 0 && j < C; pass--) /* selected tokens first, then the others */
                for (int64_t t = 0; t < T && j < C; t++)
                    if (mask[t * E + e] == pass) src[e * C + j++] = t;
        }
        for (int64_t r = 0; r < p->n_out; r++) {
            op_store_i(ACL_INT32, op_ptr2(sorted, r, 0), src[r]);
            if (out_probs) rm_copy_prob(out_probs, r, probs, src[r], r / C);
        }
    } else {
        const int64_t K = p->topk;
        int64_t nnz = 0, max_row = 0;
        for (int64_t e = 0; e < E; e++) col[e] = 0;
        for (int64_t t = 0; t < T; t++) {
            int64_t c = 0;
            for (int64_t e = 0; e < E; e++)
                if (mask[t * E + e]) { col[e]++; c++; }
            cnt[t] = c;
            nnz += c;
            if (c > max_row) max_row = c;
        }
        const int aligned = nnz == T * K;
        if (!aligned && max_row > K)
            for (int64_t t = 0; t < T; t++)
                if (cnt[t] > K)
                    return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                                          "%s: routingMap row %lld selects %lld experts, more than numOutTokens / T = "
                                          "%lld (and the map does not hold exactly T*%lld entries)",
                                          api, (long long)t, (long long)cnt[t], (long long)K, (long long)K);
        /* exclusive column starts: the first destination of each expert */
        for (int64_t e = 0, s = 0; e < E; e++) { const int64_t c = col[e]; col[e] = s; s += c; }
        for (int64_t r = 0; r < p->n_out; r++) src[r] = -1;
        if (!aligned)
            for (int64_t r = 0; r < p->n_out; r++) op_store_i(ACL_INT32, op_ptr2(sorted, r, 0), -1);
        int64_t slot = 0;
        for (int64_t t = 0; t < T; t++) {
            if (!aligned) slot = t * K;
            for (int64_t e = 0; e < E; e++) {
                if (!mask[t * E + e]) continue;
                const int64_t dest = col[e]++; /* tokens are visited in ascending order within each column */
                op_store_i(ACL_INT32, op_ptr2(sorted, slot++, 0), dest);
                src[dest] = t;
                if (out_probs) rm_copy_prob(out_probs, dest, probs, t, e);
            }
        }
        if (out_probs) /* rows past the mask's entries: deterministic zeros */
            for (int64_t r = nnz; r < p->n_out; r++) memset(op_ptr2(out_probs, r, 0), 0, (size_t)op_elem_size(out_probs));
    }
    op_gather_rows(ex->outputs[0], ex->inputs[0], p->n_out, p->h, rm_src_row, src);
    return ACLNN_SUCCESS;
}

aclnnStatus aclnnMoeTokenPermuteWithRoutingMapGetWorkspaceSize(const aclTensor *tokens, const aclTensor *routingMap,
                                                               const aclTensor *probsOptional, int64_t numOutTokens,
                                                               bool dropAndPad, aclTensor *permuteTokensOut,
                                                               aclTensor *permuteProbsOutOptional,
                                                               aclTensor *sortedIndicesOut, uint64_t *workspaceSize,
                                                               aclOpExecutor **executor)
{
    enum { TOKENS, MAP, PROBS, PERMUTED_OUT, PROBS_OUT, SORTED_OUT };
    static const OpParamSpec params[] = {
        [TOKENS] = {"tokens", OP_IN, OP_FLOAT_TYPES, OP_NO_REF, 0},
        [MAP] = {"routingMap", OP_IN, RM_MAP_TYPES, OP_NO_REF, 0},
        [PROBS] = {"probsOptional", OP_IN | OP_OPTIONAL, OP_FLOAT_TYPES, OP_NO_REF, 0},
        [PERMUTED_OUT] = {"permuteTokensOut", OP_OUT, OP_FLOAT_TYPES, TOKENS, 0},
        [PROBS_OUT] = {"permuteProbsOutOptional", OP_OUT | OP_OPTIONAL, OP_FLOAT_TYPES, PROBS, 0},
        [SORTED_OUT] = {"sortedIndicesOut", OP_OUT, OP_INT32_TYPE, OP_NO_REF, 0},
    };
    /* ranks are the op_api's checks (161002), written below; the kernel's tiling rules are 561103 */
    static const OpSpec op = OP_SPEC("aclnnMoeTokenPermuteWithRoutingMap", ACLNN_ERR_INNER_NULLPTR, params);
    static const char *api = "aclnnMoeTokenPermuteWithRoutingMap";
    const int has_probs = probsOptional != NULL;
    /* without probs the probs output is ignored: neither checked nor written */
    const void *h[] = {tokens, routingMap, probsOptional, permuteTokensOut,
                       has_probs ? permuteProbsOutOptional : NULL, sortedIndicesOut};
    OP_TRY(op_check_params(&op, h, has_probs ? 1u << PROBS_OUT : 0u));
    /* fp32 probs go with bf16 tokens (the op_api's only mixed case) */
    if (has_probs && !(probsOptional->dtype == ACL_FLOAT && tokens->dtype == ACL_BF16))
        OP_TRY(op_check_same_dtype(api, "probsOptional", probsOptional, "tokens", tokens));

    /* 161002: the op_api's shape and attribute rules (CheckShapeValid, CheckTokensValid, CheckParams) */
    if (routingMap->ndim != 2) return op_fail_param(api, "routingMap must be 2-D [T, E], got %d-D", routingMap->ndim);
    const int64_t T = routingMap->dims[0], E = routingMap->dims[1];
    if (has_probs) {
        if (probsOptional->ndim != 2)
            return op_fail_param(api, "probsOptional must be 2-D [T, E], got %d-D", probsOptional->ndim);
        if (probsOptional->dims[0] != T || probsOptional->dims[1] != E)
            return op_fail_param(api, "probsOptional must have the shape of routingMap [%lld, %lld], got [%lld, %lld]",
                                 (long long)T, (long long)E, (long long)probsOptional->dims[0],
                                 (long long)probsOptional->dims[1]);
    }
    if (tokens->ndim != 2) return op_fail_param(api, "tokens must be 2-D [T, H], got %d-D", tokens->ndim);
    if (numOutTokens < 0 || numOutTokens > T * E)
        return op_fail_param(api, "numOutTokens (%lld) must be in [0, T*E = %lld]", (long long)numOutTokens,
                             (long long)(T * E));
    int64_t align = dropAndPad ? E : T;
    if (align == 0) align = 1;
    const int64_t n_out = numOutTokens / align * align;
    if (T >= RM_SORT_LIMIT) return op_fail_param(api, "routingMap dim 0 (%lld) must be below %d", (long long)T, RM_SORT_LIMIT);
    if (E >= RM_SORT_LIMIT) return op_fail_param(api, "routingMap dim 1 (%lld) must be below %d", (long long)E, RM_SORT_LIMIT);
    if (permuteTokensOut->ndim < 1 || permuteTokensOut->dims[0] != n_out)
        return op_fail_param(api, "permuteTokensOut dim 0 must be %lld (numOutTokens rounded down to a multiple of "
                             "%s = %lld)", (long long)n_out, dropAndPad ? "E" : "T", (long long)align);
    if (has_probs && (permuteProbsOutOptional->ndim < 1 || permuteProbsOutOptional->dims[0] != n_out))
        return op_fail_param(api, "permuteProbsOutOptional dim 0 must be %lld", (long long)n_out);

    /* 561103: the kernel's tiling (moe_token_permute_with_routing_map_tiling.cpp) and the output copies;
     * an empty routingMap returns before any of it, as the op_api does */
    const int64_t hid = tokens->dims[1];
    RmPermuteParams p = {T, E, hid, n_out, 0, 0, dropAndPad, has_probs};
    if (T != 0 && E != 0) {
        if (tokens->dims[0] != T)
            return op_fail_shape(&op, "tokens dim 0 (%lld) must equal routingMap dim 0 (%lld)",
                                 (long long)tokens->dims[0], (long long)T);
        p.topk = numOutTokens / T;
        if (!dropAndPad && p.topk > OP_MAX_TOPK)
            return op_fail_shape(&op, "numOutTokens / T (%lld) must not exceed %d", (long long)p.topk, OP_MAX_TOPK);
        if ((dropAndPad ? T : T * p.topk) >= RM_SORT_LIMIT)
            return op_fail_shape(&op, "%lld rows to sort, must be fewer than %d",
                                 (long long)(dropAndPad ? T : T * p.topk), RM_SORT_LIMIT);
        if (dropAndPad) p.cap = n_out / E;
        const int64_t tok_dims[2] = {n_out, hid}, idx_dims[1] = {n_out};
        if (permuteTokensOut->ndim != 2 || permuteTokensOut->dims[1] != hid)
            return op_fail_shape(&op, "permuteTokensOut must be [%lld, %lld]", (long long)tok_dims[0],
                                 (long long)tok_dims[1]);
        if (sortedIndicesOut->ndim != 1 || sortedIndicesOut->dims[0] != n_out)
            return op_fail_shape(&op, "sortedIndicesOut must be [%lld]", (long long)idx_dims[0]);
        if (has_probs && permuteProbsOutOptional->ndim != 1)
            return op_fail_shape(&op, "permuteProbsOutOptional must be 1-D [%lld]", (long long)n_out);
    }
    return op_create_executor(&op, h, rm_permute_kernel, &p, sizeof p, rm_ws(&p), workspaceSize, executor);
}

aclnnStatus aclnnMoeTokenPermuteWithRoutingMap(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                               aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeTokenPermuteWithRoutingMap");
}
