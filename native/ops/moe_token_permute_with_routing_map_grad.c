/*
 * aclnnMoeTokenPermuteWithRoutingMapGrad: the backward of MoeTokenPermuteWithRoutingMap.
 *
 * dropAndPad false (K = len(sortedIndices) / tokens_num; sortedIndices are the forward's token-major destinations):
 *   tokenGradOut[t] = sum over k ascending of grad[d], d = sortedIndices[t*K + k], -1 and d >= rows skipped
 *   (the unpermute kernel the op runs: fp32 accumulation, one rounding on store)
 *   probsGradOutOptional = zeros [T, E]; its entries where routingMap is set, expert-major (e ascending, then t),
 *   take permutedProbsOutputGradOptional[0], [1], ... in turn (the op_api's transposed masked scatter).
 * dropAndPad true (C = rows / experts_num; sortedIndices are token ids, expert-major):
 *   tokenGradOut[t] = sum over the positions i ascending with sortedIndices[i] == t of grad[i] (the stable sort +
 *   index add of the op_api, accumulated in fp32 here [inferred]);
 *   probsGradOutOptional[sortedIndices[i], i / C] = permutedProbsOutputGradOptional[i], i ascending (a repeated
 *   pair keeps the last).
 *
 * Hand-written op_api: its own checks (attributes, null, dtypes, ranks) are 161002 (161001 for null); the other
 * shape rules the l0 kernel enforces are 561103 (the l0 op returns nullptr). Index values outside their range
 * (non-drop: [0, T*K) or -1; drop: [0, T)) are ACLNN_ERR_PARAM_INVALID at run time, before anything is written.
 * Threads split the output tokens; every sum has a fixed order, so results do not depend on the thread count.
 */
#include "aclnnop/aclnn_moe_token_permute_with_routing_map_grad.h"
#include "op_common.h"

#define RMG_MAX_TOPK 512
#define RMG_ALIGN(x) (((uint64_t)(x) + 63u) & ~(uint64_t)63u)

static const aclDataType RMG_MAP_TYPES[] = {ACL_INT8, ACL_BOOL, ACL_DT_UNDEFINED};

enum { GRAD, PGRAD, SORTED, MAP, OUT, POUT };

typedef struct {
    int64_t t, e, h, rows, len, k, cap;
    int drop, has_probs, has_map;
} RmgParams;

typedef struct {
    const RmgParams *p;
    const aclTensor *grad, *out;
    const int64_t *start, *src; /* token t sums grad rows src[start[t] .. start[t+1]) in order */
    float *scratch;             /* H floats per chunk */
    int64_t n_chunks;
} RmgCtx;

static void rmg_rows(void *vctx, int64_t begin, int64_t end)
{
    const RmgCtx *c = vctx;
    const int64_t h = c->p->h;
    for (int64_t chunk = begin; chunk < end; chunk++) {
        float *acc = c->scratch + chunk * 2 * h, *tmp = acc + h;
        const int64_t t0 = c->p->t * chunk / c->n_chunks, t1 = c->p->t * (chunk + 1) / c->n_chunks;
        for (int64_t t = t0; t < t1; t++) {
            for (int64_t j = 0; j < h; j++) acc[j] = 0.0f;
            for (int64_t q = c->start[t]; q < c->start[t + 1]; q++) {
                op_load_row_f32(c->grad, c->src[q], h, tmp);
                for (int64_t j = 0; j < h; j++) acc[j] += tmp[j];
            }
            op_store_row_f32(c->out, t, h, acc);
        }
    }
}

static int64_t rmg_chunks(int64_t t)
{
    int64_t n = acl_host_num_threads();
    return n < 1 ? 1 : (n > t ? (t > 0 ? t : 1) : n);
}

static uint64_t rmg_ws(const RmgParams *p)
{
    return RMG_ALIGN((uint64_t)p->len * sizeof(int64_t)) * 2 + RMG_ALIGN((uint64_t)(p->t + 1) * sizeof(int64_t)) +
           (uint64_t)rmg_chunks(p->t) * 2 * (uint64_t)p->h * sizeof(float);
}

static aclnnStatus rmg_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    const RmgParams *p = ex->params;
    const char *api = ex->api;
    (void)wsSize;
    if (p->t == 0) return ACLNN_SUCCESS;
    const uint64_t lb = RMG_ALIGN((uint64_t)p->len * sizeof(int64_t));
    int64_t *idx = ws, *src = (int64_t *)((char *)ws + lb), *start = (int64_t *)((char *)ws + 2 * lb);
    float *scratch = (float *)((char *)start + RMG_ALIGN((uint64_t)(p->t + 1) * sizeof(int64_t)));
    const aclTensor *grad = ex->inputs[0], *pg = p->has_probs ? ex->inputs[1] : NULL;
    const aclTensor *sorted = ex->inputs[2], *map = p->has_map ? ex->inputs[3] : NULL;
    aclTensor *out = ex->outputs[0], *pout = p->has_probs ? ex->outputs[1] : NULL;
    op_read_all_i64(sorted, idx);

    /* validate everything before the first write */
    const int64_t hi = p->drop ? p->t : p->t * p->k;
    for (int64_t i = 0; i < p->len; i++) {
        const int64_t v = idx[i];
        if ((v == -1 && !p->drop) || (v >= 0 && v < hi)) continue;
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: sortedIndices[%lld] = %lld is outside %s[0, %lld)", api,
                              (long long)i, (long long)v, p->drop ? "" : "{-1} and ", (long long)hi);
    }
    int64_t nnz = 0;
    if (map)
        for (int64_t t = 0; t < p->t; t++)
            for (int64_t e = 0; e < p->e; e++) {
                const int64_t m = op_load_i(map->dtype, op_ptr2(map, t, e));
                if (m != 0 && m != 1)
                    return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: routingMapOptional[%lld, %lld] = %lld is "
                                          "not 0 or 1", api, (long long)t, (long long)e, (long long)m);
                nnz += m;
            }
    if (pout && !p->drop && nnz > p->len)
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: routingMapOptional has %lld entries, more than the %lld "
                              "of permutedProbsOutputGradOptional", api, (long long)nnz, (long long)p->len);

    /* the rows each token sums, in their fixed order */
    if (!p->drop) {
        int64_t q = 0;
        for (int64_t t = 0; t < p->t; t++) {
            start[t] = q;
            for (int64_t k = 0; k < p->k; k++) {
                const int64_t d = idx[t * p->k + k];
                if (d >= 0 && d < p->rows) src[q++] = d;
            }
        }
        start[p->t] = q;
    } else { /* counting sort by token id, positions ascending (stable) */
        for (int64_t t = 0; t <= p->t; t++) start[t] = 0;
        for (int64_t i = 0; i < p->len; i++) start[idx[i] + 1]++;
        for (int64_t t = 0; t < p->t; t++) start[t + 1] += start[t];
        for (int64_t t = p->t; t > 0; t--) start[t] = start[t - 1];
        for (int64_t i = 0; i < p->len; i++) src[start[idx[i] + 1]++] = i;
        start[0] = 0;
    }
    if (p->h > 0) {
        RmgCtx c = {p, grad, out, start, src, scratch, rmg_chunks(p->t)};
        acl_host_parallel_for(c.n_chunks, 1, rmg_rows, &c);
    }

    if (pout) {
        const size_t es = (size_t)op_elem_size(pout);
        for (int64_t t = 0; t < p->t; t++)
            for (int64_t e = 0; e < p->e; e++) memset(op_ptr2(pout, t, e), 0, es);
        if (!p->drop) {
            int64_t q = 0;
            for (int64_t e = 0; e < p->e; e++)
                for (int64_t t = 0; t < p->t; t++)
                    if (op_load_i(map->dtype, op_ptr2(map, t, e)))
                        memcpy(op_ptr2(pout, t, e), op_ptr_flat(pg, q++), es);
        } else if (p->cap > 0) {
            for (int64_t i = 0; i < p->len; i++) memcpy(op_ptr2(pout, idx[i], i / p->cap), op_ptr_flat(pg, i), es);
        }
    }
    return ACLNN_SUCCESS;
}

aclnnStatus aclnnMoeTokenPermuteWithRoutingMapGradGetWorkspaceSize(
    const aclTensor *permutedTokensOutputGrad, const aclTensor *permutedProbsOutputGradOptional,
    const aclTensor *sortedIndices, const aclTensor *routingMapOptional, int64_t experts_num, int64_t tokens_num,
    bool dropAndPad, aclTensor *tokenGradOut, aclTensor *probsGradOutOptional, uint64_t *workspaceSize,
    aclOpExecutor **executor)
{
    static const char *api = "aclnnMoeTokenPermuteWithRoutingMapGrad";
    /* ranks are the op_api's own checks (161002), written out below */
    static const OpParamSpec params[] = {
        [GRAD] = {"permutedTokensOutputGrad", OP_IN, OP_FLOAT_TYPES, OP_NO_REF, 0},
        [PGRAD] = {"permutedProbsOutputGradOptional", OP_IN | OP_OPTIONAL, OP_FLOAT_TYPES, GRAD, 0},
        [SORTED] = {"sortedIndices", OP_IN, OP_INT32_TYPE, OP_NO_REF, 0},
        [MAP] = {"routingMapOptional", OP_IN | OP_OPTIONAL, RMG_MAP_TYPES, OP_NO_REF, 0},
        [OUT] = {"tokenGradOut", OP_OUT, NULL, GRAD, 0},
        [POUT] = {"probsGradOutOptional", OP_OUT | OP_OPTIONAL, NULL, PGRAD, 0},
    };
    static const OpSpec op = OP_SPEC("aclnnMoeTokenPermuteWithRoutingMapGrad", ACLNN_ERR_INNER_NULLPTR, params);
    if (experts_num <= 0) return op_fail_param(api, "experts_num must be > 0, got %lld", (long long)experts_num);
    if (tokens_num <= 0) return op_fail_param(api, "tokens_num must be > 0, got %lld", (long long)tokens_num);
    if (permutedProbsOutputGradOptional && !routingMapOptional)
        return op_fail_param(api, "permutedProbsOutputGradOptional needs routingMapOptional");
    /* the probs gradient is computed only when both its input and its output are given */
    const int has_probs = permutedProbsOutputGradOptional != NULL && probsGradOutOptional != NULL;
    const void *h_args[] = {permutedTokensOutputGrad, permutedProbsOutputGradOptional, sortedIndices,
                            routingMapOptional, tokenGradOut, has_probs ? probsGradOutOptional : NULL};
    OP_TRY(op_check_params(&op, h_args, 0));
    if (permutedTokensOutputGrad->ndim != 2)
        return op_fail_param(api, "permutedTokensOutputGrad must be 2-D, got %d-D", permutedTokensOutputGrad->ndim);
    if (routingMapOptional && routingMapOptional->ndim != 2)
        return op_fail_param(api, "routingMapOptional must be 2-D, got %d-D", routingMapOptional->ndim);
    if (permutedProbsOutputGradOptional && permutedProbsOutputGradOptional->ndim != 1)
        return op_fail_param(api, "permutedProbsOutputGradOptional must be 1-D, got %d-D",
                             permutedProbsOutputGradOptional->ndim);

    RmgParams p = {0};
    p.t = tokens_num;
    p.e = experts_num;
    p.rows = permutedTokensOutputGrad->dims[0];
    p.h = permutedTokensOutputGrad->dims[1];
    p.drop = dropAndPad;
    p.has_probs = has_probs;
    p.has_map = has_probs;
    if (sortedIndices->ndim != 1) return op_fail_shape(&op, "sortedIndices must be 1-D, got %d-D", sortedIndices->ndim);
    p.len = sortedIndices->dims[0];
    const int64_t out_dims[2] = {p.t, p.h};
    OP_TRY(op_check_shape_of(&op, "tokenGradOut", tokenGradOut, 2, out_dims));
    if (!dropAndPad) {
        if (p.len % p.t != 0)
            return op_fail_shape(&op, "sortedIndices length (%lld) must be a multiple of tokens_num (%lld)",
                                 (long long)p.len, (long long)p.t);
        p.k = p.len / p.t;
        if (p.k > RMG_MAX_TOPK)
            return op_fail_shape(&op, "topK = len(sortedIndices) / tokens_num must not exceed %d, got %lld",
                                 RMG_MAX_TOPK, (long long)p.k);
        if (p.rows > p.len)
            return op_fail_shape(&op, "permutedTokensOutputGrad has %lld rows, more than tokens_num * topK = %lld",
                                 (long long)p.rows, (long long)p.len);
    } else {
        if (p.rows % p.e != 0)
            return op_fail_shape(&op, "permutedTokensOutputGrad rows (%lld) must be a multiple of experts_num (%lld)",
                                 (long long)p.rows, (long long)p.e);
        if (p.len != p.rows)
            return op_fail_shape(&op, "sortedIndices must have experts_num * capacity = %lld values, got %lld",
                                 (long long)p.rows, (long long)p.len);
        p.cap = p.rows / p.e;
    }
    if (has_probs) {
        const int64_t map_dims[2] = {p.t, p.e}, pd[1] = {dropAndPad ? p.rows : p.len};
        OP_TRY(op_check_shape_of(&op, "routingMapOptional", routingMapOptional, 2, map_dims));
        OP_TRY(op_check_shape_of(&op, "probsGradOutOptional", probsGradOutOptional, 2, map_dims));
        OP_TRY(op_check_shape_of(&op, "permutedProbsOutputGradOptional", permutedProbsOutputGradOptional, 1, pd));
    }
    /* every given input is bound, used or not: aclSetInputTensorAddr reaches an input by its prototype index, so a
     * given routingMapOptional (index 3) must have its slot without probs too (the kernel reads it only with them) */
    return op_create_executor(&op, h_args, rmg_kernel, &p, sizeof p, rmg_ws(&p), workspaceSize, executor);
}

aclnnStatus aclnnMoeTokenPermuteWithRoutingMapGrad(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                                   const aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeTokenPermuteWithRoutingMapGrad");
}
