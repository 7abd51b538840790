/*
 * aclnnMoeTokenUnpermuteWithRoutingMap: the inverse of aclnnMoeTokenPermuteWithRoutingMap.
 *
 * T = probsOptional dim 0, else restoreShapeOptional[0]; L = len(sortedIndices).
 * paddedMode false (K = L / T slots per token; -1 marks an unused slot):
 *   permuteProbs[0..nnz) = probsOptional.masked_select(routingMapOptional) (row-major, i.e. token-major), the rest 0
 *   unpermutedTokens[t] = sum over k ascending of permutedTokens[d] * permuteProbs[t*K + k], d = sortedIndices[t*K+k],
 *     skipping d < 0, d >= rows and zero weights; fp32 accumulation, one rounding (the kernel of
 *     moe_token_unpermute_with_routing_map_not_pad.h is MoeTokenUnpermute's, with the masked probs per slot)
 *   outIndex[i] = i and permuteTokenId[i] = i // K: the NPU does not write them in this mode; they are defined
 *     here as the padded mode's (order, token) pair of the slot layout, where slot i belongs to token i // K.
 * paddedMode true (E = probsOptional dim 1, C = L / E; sortedIndices holds token ids, expert-major):
 *   permuteProbs[i] = probsOptional[sortedIndices[i], i // C]
 *   permuteTokenId, outIndex = stable ascending sort of sortedIndices (values, positions)
 *   unpermutedTokens[permuteTokenId[i]] += permutedTokens[outIndex[i]] * permuteProbs[outIndex[i]], i ascending,
 *     accumulated in fp32 and rounded once; the product is rounded to the tokens dtype first unless the probs are
 *     fp32 with 16-bit tokens (the op_api multiplies with l0 Mul in the tokens dtype, mixed precision in fp32).
 *   Token ids outside [0, T) are an error (161002): the NPU's index-add would write out of bounds.
 *
 * Hand-written op_api: null -> 161001 (probsOptional and restoreShapeOptional both absent included), dtype and rank
 * -> 161002, the kernel tiling and output copies -> 561103. Stricter than the NPU (which only warns): routingMap
 * must be int8/uint8/bool with the shape of probsOptional, and must be given with probs when paddedMode is false
 * (161001); its int8/uint8 values must be 0 or 1; the masked probs must fit in L slots (161002).
 */
#include "aclnnop/aclnn_moe_token_unpermute_with_routing_map.h"
#include "moe_unpermute_rows.h"

#define URM_ALIGN(x) (((uint64_t)(x) + 63u) & ~(uint64_t)63u)

static const aclDataType URM_MAP_TYPES[] = {ACL_INT8, ACL_UINT8, ACL_BOOL, ACL_DT_UNDEFINED};

typedef struct {
    int64_t t, h, rows, len; /* unpermutedTokens [T, H], permutedTokens [rows, H], sortedIndices [len] */
    int64_t k, e, cap;       /* slots per token (non-padded) / experts and capacity (padded) */
    int padded, has_probs, has_map, mixed;
} UrmParams;

static uint64_t urm_ws(const UrmParams *p)
{
    if (p->len == 0) return 0;
    uint64_t ws = 3 * URM_ALIGN(p->len * sizeof(int64_t)) + URM_ALIGN(p->len * sizeof(float));
    ws += p->padded ? URM_ALIGN((p->t + 1) * sizeof(int64_t)) + (uint64_t)p->h * 2u * sizeof(float) *
                                                                     (uint64_t)acl_host_num_threads()
                    : moe_unpermute_rows_workspace(p->t, p->h);
    return ws;
}

typedef struct {
    const UrmParams *p;
    const aclTensor *permuted, *out;
    const int64_t *order, *seg; /* stable order of the token ids; token t owns order[seg[t] .. seg[t+1]) */
    const float *prob;          /* per position, NULL without probs */
    float *scratch;
    int64_t n_chunks;
} UrmPadCtx;

static void urm_pad_range(void *vctx, int64_t begin, int64_t end)
{
    const UrmPadCtx *c = vctx;
    const UrmParams *p = c->p;
    const int64_t h = p->h;
    const aclDataType dt = c->permuted->dtype;
    const int round16 = c->prob && !p->mixed && dt != ACL_FLOAT; /* product in the tokens dtype */
    for (int64_t chunk = begin; chunk < end; chunk++) {
        float *acc = c->scratch + chunk * 2 * h, *row = acc + h;
        const int64_t t0 = p->t * chunk / c->n_chunks, t1 = p->t * (chunk + 1) / c->n_chunks;
        for (int64_t t = t0; t < t1; t++) {
            for (int64_t j = 0; j < h; j++) acc[j] = 0.0f;
            for (int64_t s = c->seg[t]; s < c->seg[t + 1]; s++) {
                const int64_t i = c->order[s];
                op_load_row_f32(c->permuted, i, h, row);
                if (c->prob) {
                    const float w = c->prob[i];
                    for (int64_t j = 0; j < h; j++) {
                        float prod = row[j] * w;
                        if (round16) /* the product rounded to the 16-bit tokens dtype */
                            prod = dt == ACL_FLOAT16 ? host_f16_to_f32(host_f32_to_f16(prod))
                                                     : host_bf16_to_f32(host_f32_to_bf16(prod));
                        acc[j] += prod;
                    }
                } else {
                    for (int64_t j = 0; j < h; j++) acc[j] += row[j];
                }
            }
            op_store_row_f32(c->out, t, h, acc);
        }
    }
}

static aclnnStatus urm_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    static const char *api = "aclnnMoeTokenUnpermuteWithRoutingMap";
    const UrmParams *p = ex->params;
    const aclTensor *permuted = ex->inputs[0], *sorted = ex->inputs[1], *map = ex->inputs[2], *probs = ex->inputs[3];
    const aclTensor *out = ex->outputs[0], *out_index = ex->outputs[1], *token_id = ex->outputs[2];
    const aclTensor *out_probs = p->has_probs ? ex->outputs[3] : NULL;
    const int64_t L = p->len;
    if (L == 0 || (!p->padded && p->rows == 0)) { /* the op_api's empty case: zeros everywhere */
        for (int64_t t = 0; t < p->t; t++) op_zero_row(out, t, p->h);
        for (int64_t i = 0; i < L; i++) {
            op_store_i(ACL_INT32, op_ptr2(out_index, i, 0), 0);
            op_store_i(ACL_INT32, op_ptr2(token_id, i, 0), 0);
            if (out_probs) op_store_f(out_probs->dtype, op_ptr2(out_probs, i, 0), 0.0f);
        }
        return ACLNN_SUCCESS;
    }
    wsSize = ex->workspace_size; /* phase 2 guarantees phase 1's block; size scratch from it, not the claim */
    int64_t *idx = ws;
    int64_t *order = (int64_t *)((char *)idx + URM_ALIGN(L * sizeof(int64_t)));
    int64_t *tmp = (int64_t *)((char *)order + URM_ALIGN(L * sizeof(int64_t))); /* with order: 2L of scratch */
    float *prob = (float *)((char *)tmp + URM_ALIGN(L * sizeof(int64_t)));
    char *rest = (char *)prob + URM_ALIGN(L * sizeof(float));
    op_read_all_i64(sorted, idx);

    if (!p->padded) {
        if (p->has_probs) {
            int64_t m = 0;
            for (int64_t t = 0; t < p->t; t++)
                for (int64_t e = 0; e < p->e; e++) {
                    const uint8_t v = *(const uint8_t *)op_ptr2(map, t, e);
                    if (map->dtype != ACL_BOOL && v > 1)
                        return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                                              "%s: routingMapOptional[%lld, %lld] = %d, must be 0 or 1", api,
                                              (long long)t, (long long)e, (int)v);
                    if (!v) continue;
                    if (m == L)
                        return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                                              "%s: routingMapOptional selects more than len(sortedIndices) = %lld "
                                              "entries", api, (long long)L);
                    prob[m++] = op_load_f(probs->dtype, op_ptr2(probs, t, e));
                }
            for (int64_t i = m; i < L; i++) prob[i] = 0.0f;
            for (int64_t i = 0; i < L; i++) op_store_f(out_probs->dtype, op_ptr2(out_probs, i, 0), prob[i]);
        }
        for (int64_t i = 0; i < L; i++) {
            op_store_i(ACL_INT32, op_ptr2(out_index, i, 0), i);
            op_store_i(ACL_INT32, op_ptr2(token_id, i, 0), i / p->k);
        }
        UnpermuteRows u = {permuted, out, idx, p->has_probs ? prob : NULL, p->t, p->k, p->h, p->rows};
        moe_unpermute_rows(&u, rest, wsSize - (uint64_t)(rest - (char *)ws));
        return ACLNN_SUCCESS;
    }

    for (int64_t i = 0; i < L; i++)
        if (idx[i] < 0 || idx[i] >= p->t)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: sortedIndices[%lld] = %lld is not a token id in "
                                  "[0, %lld)", api, (long long)i, (long long)idx[i], (long long)p->t);
    if (p->has_probs)
        for (int64_t i = 0; i < L; i++) {
            prob[i] = op_load_f(probs->dtype, op_ptr2(probs, idx[i], i / p->cap));
            op_store_f(out_probs->dtype, op_ptr2(out_probs, i, 0), prob[i]);
        }
    op_stable_argsort_i64(idx, L, p->t, order, tmp);
    int64_t *seg = (int64_t *)rest;
    for (int64_t t = 0; t <= p->t; t++) seg[t] = 0;
    for (int64_t i = 0; i < L; i++) seg[idx[i] + 1]++;
    for (int64_t t = 0; t < p->t; t++) seg[t + 1] += seg[t];
    for (int64_t s = 0; s < L; s++) {
        op_store_i(ACL_INT32, op_ptr2(out_index, s, 0), order[s]);
        op_store_i(ACL_INT32, op_ptr2(token_id, s, 0), idx[order[s]]);
    }
    if (p->h == 0 || p->t == 0) return ACLNN_SUCCESS;
    char *rows_ws = rest + URM_ALIGN((p->t + 1) * sizeof(int64_t));
    int64_t n_chunks = acl_host_num_threads();
    if (n_chunks > p->t) n_chunks = p->t;
    const uint64_t fit = (wsSize - (uint64_t)(rows_ws - (char *)ws)) / ((uint64_t)p->h * 2u * sizeof(float));
    if ((uint64_t)n_chunks > fit) n_chunks = (int64_t)fit; /* phase 1 sized it for this many; never more */
    if (n_chunks < 1) return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: workspace too small", api);
    UrmPadCtx c = {p, permuted, out, order, seg, p->has_probs ? prob : NULL,
                   (float *)rows_ws, n_chunks};
    acl_host_parallel_for(n_chunks, 1, urm_pad_range, &c);
    return ACLNN_SUCCESS;
}

static aclnnStatus urm_fail_copy(const OpSpec *op, const char *name, const aclTensor *t, int64_t len)
{
    return op_fail_shape(op, "%s must be 1-D [%lld] (the length of sortedIndices), got %d-D", name, (long long)len,
                         t->ndim);
}

aclnnStatus aclnnMoeTokenUnpermuteWithRoutingMapGetWorkspaceSize(
    const aclTensor *permutedTokens, const aclTensor *sortedIndices, const aclTensor *routingMapOptional,
    const aclTensor *probsOptional, bool paddedMode, const aclIntArray *restoreShapeOptional,
    aclTensor *unpermutedTokens, aclTensor *outIndex, aclTensor *permuteTokenId, aclTensor *permuteProbs,
    uint64_t *workspaceSize, aclOpExecutor **executor)
{
    enum { PERMUTED, SORTED, MAP, PROBS, RESTORE, OUT, OUT_INDEX, TOKEN_ID, PROBS_OUT };
    static const OpParamSpec params[] = {
        [PERMUTED] = {"permutedTokens", OP_IN, OP_FLOAT_TYPES, OP_NO_REF, 0},
        [SORTED] = {"sortedIndices", OP_IN, OP_INT32_TYPE, OP_NO_REF, 0},
        [MAP] = {"routingMapOptional", OP_IN | OP_OPTIONAL, URM_MAP_TYPES, OP_NO_REF, 0},
        [PROBS] = {"probsOptional", OP_IN | OP_OPTIONAL, OP_FLOAT_TYPES, OP_NO_REF, 0},
        [RESTORE] = {"restoreShapeOptional", OP_IN | OP_OPTIONAL | OP_INT_ARRAY, NULL, OP_NO_REF, 0},
        [OUT] = {"unpermutedTokens", OP_OUT, OP_FLOAT_TYPES, PERMUTED, 0},
        [OUT_INDEX] = {"outIndex", OP_OUT, OP_INT32_TYPE, SORTED, 0},
        [TOKEN_ID] = {"permuteTokenId", OP_OUT, OP_INT32_TYPE, SORTED, 0},
        [PROBS_OUT] = {"permuteProbs", OP_OUT | OP_OPTIONAL, OP_FLOAT_TYPES, PROBS, 0},
    };
    /* ranks are the op_api's checks (161002), written below; the l0 op's and tiling's rules are 561103 */
    static const OpSpec op = OP_SPEC("aclnnMoeTokenUnpermuteWithRoutingMap", ACLNN_ERR_INNER_NULLPTR, params);
    static const char *api = "aclnnMoeTokenUnpermuteWithRoutingMap";
    const int has_probs = probsOptional != NULL;
    const void *h[] = {permutedTokens, sortedIndices, routingMapOptional, probsOptional, restoreShapeOptional,
                       unpermutedTokens, outIndex, permuteTokenId, has_probs ? permuteProbs : NULL};
    uint32_t required = has_probs ? 1u << PROBS_OUT : 0u;
    if (has_probs && !paddedMode) required |= 1u << MAP; /* it selects the probs of each slot */
    OP_TRY(op_check_params(&op, h, required));
    if (!has_probs && restoreShapeOptional == NULL)
        return acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "%s: probsOptional and restoreShapeOptional must not both be "
                              "NULL (one of them gives the token count)", api);
    /* fp32 probs go with bf16 tokens (the op_api's only mixed case) */
    const int mixed = has_probs && probsOptional->dtype == ACL_FLOAT && permutedTokens->dtype == ACL_BF16;
    if (has_probs && !mixed)
        OP_TRY(op_check_same_dtype(api, "probsOptional", probsOptional, "permutedTokens", permutedTokens));

    /* 161002: ranks (op_api CheckShapeValid); the routingMap / probs agreement is only a warning on the NPU */
    if (permutedTokens->ndim != 2)
        return op_fail_param(api, "permutedTokens must be 2-D [rows, H], got %d-D", permutedTokens->ndim);
    if (sortedIndices->ndim != 1)
        return op_fail_param(api, "sortedIndices must be 1-D, got %d-D", sortedIndices->ndim);
    if (unpermutedTokens->ndim != 2)
        return op_fail_param(api, "unpermutedTokens must be 2-D [T, H], got %d-D", unpermutedTokens->ndim);
    if (has_probs && routingMapOptional != NULL &&
        (routingMapOptional->ndim != 2 || probsOptional->ndim != 2 ||
         routingMapOptional->dims[0] != probsOptional->dims[0] || routingMapOptional->dims[1] != probsOptional->dims[1]))
        return op_fail_param(api, "routingMapOptional must have the shape of probsOptional (2-D [T, E])");

    /* 561103: the l0 op's token count, the tiling's rules and the output copies */
    const int64_t rows = permutedTokens->dims[0], hid = permutedTokens->dims[1], L = sortedIndices->dims[0];
    UrmParams p = {0, hid, rows, L, 1, 0, 0, paddedMode, has_probs, routingMapOptional != NULL, mixed};
    if (has_probs) {
        if (probsOptional->ndim != 2)
            return op_fail_shape(&op, "probsOptional must be 2-D [T, E], got %d-D",
                                  probsOptional->ndim);
        p.t = probsOptional->dims[0];
        p.e = probsOptional->dims[1];
    } else {
        if (restoreShapeOptional->size != 2)
            return op_fail_shape(&op, "restoreShapeOptional must be [T, H] (2 values), got "
                                  "%llu values", (unsigned long long)restoreShapeOptional->size);
        p.t = restoreShapeOptional->values[0];
        if (p.t < 0)
            return op_fail_shape(&op, "restoreShapeOptional[0] (T) must be >= 0, got %lld", (long long)p.t);
    }
    const int64_t out_dims[2] = {p.t, hid};
    if (unpermutedTokens->dims[0] != p.t || unpermutedTokens->dims[1] != hid)
        return op_fail_shape(&op, "unpermutedTokens must be [T, H] = [%lld, %lld], got "
                              "[%lld, %lld]", (long long)out_dims[0], (long long)out_dims[1],
                              (long long)unpermutedTokens->dims[0], (long long)unpermutedTokens->dims[1]);
    if (outIndex->ndim != 1 || outIndex->dims[0] != L) return urm_fail_copy(&op, "outIndex", outIndex, L);
    if (permuteTokenId->ndim != 1 || permuteTokenId->dims[0] != L)
        return urm_fail_copy(&op, "permuteTokenId", permuteTokenId, L);
    if (has_probs && (permuteProbs->ndim != 1 || permuteProbs->dims[0] != L))
        return urm_fail_copy(&op, "permuteProbs", permuteProbs, L);
    const int empty = L == 0 || (!paddedMode && rows == 0);
    if (!empty) {
        if (p.t == 0)
            return op_fail_shape(&op, "the token count T is 0 but sortedIndices has %lld "
                                  "entries", (long long)L);
        if (rows / p.t > OP_MAX_TOPK)
            return op_fail_shape(&op, "top-k (rows of permutedTokens / T = %lld) must not "
                                  "exceed %d", (long long)(rows / p.t), OP_MAX_TOPK);
        if (!paddedMode) {
            if (L % p.t != 0)
                return op_fail_shape(&op, "len(sortedIndices) (%lld) must be a multiple of "
                                      "T (%lld): T*K slots", (long long)L, (long long)p.t);
            p.k = L / p.t;
        } else if (has_probs) {
            if (p.e == 0 || L % p.e != 0)
                return op_fail_shape(&op, "len(sortedIndices) (%lld) must be E*C, a multiple "
                                      "of probsOptional dim 1 (E = %lld)", (long long)L, (long long)p.e);
            p.cap = L / p.e;
            if (rows != L)
                return op_fail_shape(&op, "permutedTokens must have E*C = %lld rows in "
                                      "paddedMode, got %lld", (long long)L, (long long)rows);
        } else if (rows != L) {
            return op_fail_shape(&op, "permutedTokens must have len(sortedIndices) = %lld "
                                  "rows in paddedMode, got %lld", (long long)L, (long long)rows);
        }
    }
    return op_create_executor(&op, h, urm_kernel, &p, sizeof p, empty ? 0 : urm_ws(&p), workspaceSize, executor);
}

aclnnStatus aclnnMoeTokenUnpermuteWithRoutingMap(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                                 const aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeTokenUnpermuteWithRoutingMap");
}
