/*
 * aclnnMoeTokenUnpermuteWithRoutingMapGrad: the backward of MoeTokenUnpermuteWithRoutingMap (a generated operator:
 * shape and attribute failures are 561002; no op_api of its own).
 *
 * T = rows of unpermutedTokensGrad, H its width, L = len(outIndex) = len(permuteTokenId); rows of the
 * permutedTokensGradOut [L, H] that no index selects are zero (the NPU leaves them unwritten).
 * dropAndPad false (K = L / T; outIndex is the forward's sortedIndices, slot i = t*K + k belongs to token i / K;
 * permuteTokenId is not read, as the kernel does not read it):
 *   without probs: permutedTokensGradOut[outIndex[i]] = unpermutedTokensGrad[i / K]
 *   with probs: w[j] = the j-th entry of probsOptional.masked_select(routingMapOptional) (row-major, i.e. token-major:
 *   the forward's permuteProbs), 0 for j >= nnz;
 *     permutedTokensGradOut[outIndex[i]] = unpermutedTokensGrad[i / K] * w[i]
 *     probsGradOutOptional[t_j, e_j] = sum_h unpermutedTokensGrad[j / K][h] * permutedTokensOptional[outIndex[j]][h]
 *   for the j-th selected entry (t_j, e_j), j < nnz (0 where outIndex[j] is -1); 0 where routingMap is 0. When every
 *   token has K experts (the kernel's layout), t_j = j / K and this is the kernel's per-token prob walk; with fewer it
 *   is the gradient of the forward as this library computes it [inferred: the NPU kernel assumes K per token].
 * dropAndPad true (E = probsOptional dim 1, C = L / E; outIndex / permuteTokenId as the forward returns them):
 *   permutedTokensGradOut[outIndex[i]] = unpermutedTokensGrad[permuteTokenId[i]] * probs[permuteTokenId[i],
 *   outIndex[i] / C] (1 without probs);
 *   probsGradOutOptional[permuteTokenId[i], outIndex[i] / C] = sum_h unpermutedTokensGrad[permuteTokenId[i]][h] *
 *   permutedTokensOptional[outIndex[i]][h], i ascending (a repeated pair keeps the last), 0 elsewhere.
 * Arithmetic as the kernel's: fp32 products, rounded once to the output dtype (RNE); the dot products sum 64 lanes in
 * order, then fold them (the grad family's fixed order), so results do not depend on the thread count.
 *
 * Checks, CANN's order: null (161001; probsGradOutOptional is required with probs); dtypes (161002): the tokens
 * dtypes of the op def, permutedTokens and the output the unpermutedTokensGrad dtype, probs the same or fp32 (bf16
 * and fp16 tokens, as the def lists), probsGradOutOptional the probs dtype, routingMap int8/bool; then the tiling's
 * and the shapes' rules (561002): ranks, len(outIndex) == len(permuteTokenId), probs without routingMap or
 * permutedTokens, probs fp32 with fp16 tokens (the doc's rule), K = L / T (a multiple; <= 512 and <= E with probs),
 * C = L / E <= T, and every shape. Index values outside their range (outIndex: [0, L), plus -1 without dropAndPad;
 * permuteTokenId: [0, T)), two indices selecting the same row, routingMap values other than 0/1 and more routingMap
 * entries than L are ACLNN_ERR_PARAM_INVALID at run time, before anything is written. restoreShapeOptional is
 * accepted and not read (the kernel does not read it). The UB-size limits of the tiling do not apply on the host.
 */
#include "aclnnop/aclnn_moe_token_unpermute_with_routing_map_grad.h"
#include "op_common.h"

#define URG_MAX_TOPK 512
#define URG_LANES 64
#define URG_ALIGN(x) (((uint64_t)(x) + 63u) & ~(uint64_t)63u)

static const aclDataType URG_MAP_TYPES[] = {ACL_INT8, ACL_BOOL, ACL_DT_UNDEFINED};

enum { GRAD, OUT_INDEX, TOKEN_ID, MAP, PERMUTED, PROBS, RESTORE, OUT, PROBS_OUT };
/* executor slots: inputs in table order (the int array skipped), outputs after them */
enum { IN_GRAD, IN_OUT_INDEX, IN_TOKEN_ID, IN_MAP, IN_PERMUTED, IN_PROBS };

typedef struct {
    int64_t t, h, len, k, e, cap;
    int drop, has_probs;
} UrgParams;

typedef struct {
    const UrgParams *p;
    const aclTensor *grad, *permuted, *out;
    const int64_t *oi, *tid, *src; /* src[r]: the slot writing row r, or -1 */
    const float *w;                /* per-slot weight, NULL without probs */
    float *dots;                   /* per-slot probs gradient */
    int64_t n_dots;
    float *scratch; /* 2*H floats per chunk */
    int64_t n_chunks;
} UrgCtx;

static int64_t urg_token(const UrgCtx *c, int64_t i) { return c->p->drop ? c->tid[i] : i / c->p->k; }

static float urg_dot(const float *a, const float *b, int64_t h)
{
    float lanes[URG_LANES] = {0};
    int64_t j = 0;
    for (; j + URG_LANES <= h; j += URG_LANES)
        for (int l = 0; l < URG_LANES; l++) lanes[l] += a[j + l] * b[j + l];
    for (int l = 0; j + l < h; l++) lanes[l] += a[j + l] * b[j + l];
    for (int w = URG_LANES / 2; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) lanes[l] += lanes[l + w];
    return lanes[0];
}

/* permutedTokensGradOut rows [r0, r1) of each chunk */
static void urg_rows(void *vctx, int64_t begin, int64_t end)
{
    const UrgCtx *c = vctx;
    const int64_t h = c->p->h, n = c->p->len;
    for (int64_t chunk = begin; chunk < end; chunk++) {
        float *g = c->scratch + chunk * 2 * h;
        const int64_t r0 = n * chunk / c->n_chunks, r1 = n * (chunk + 1) / c->n_chunks;
        for (int64_t r = r0; r < r1; r++) {
            const int64_t i = c->src[r];
            if (i < 0) {
                op_zero_row(c->out, r, h);
                continue;
            }
            op_load_row_f32(c->grad, urg_token(c, i), h, g);
            if (c->w) {
                const float s = c->w[i];
                for (int64_t j = 0; j < h; j++) g[j] = g[j] * s;
            }
            op_store_row_f32(c->out, r, h, g);
        }
    }
}

/* dots[i] = <grad[token of i], permuted[outIndex[i]]> for the slots [0, n_dots) */
static void urg_dots(void *vctx, int64_t begin, int64_t end)
{
    const UrgCtx *c = vctx;
    const int64_t h = c->p->h, n = c->n_dots;
    for (int64_t chunk = begin; chunk < end; chunk++) {
        float *g = c->scratch + chunk * 2 * h, *x = g + h;
        const int64_t i0 = n * chunk / c->n_chunks, i1 = n * (chunk + 1) / c->n_chunks;
        for (int64_t i = i0; i < i1; i++) {
            const int64_t r = c->oi[i];
            if (r < 0) {
                c->dots[i] = 0.0f;
                continue;
            }
            op_load_row_f32(c->grad, urg_token(c, i), h, g);
            op_load_row_f32(c->permuted, r, h, x);
            c->dots[i] = urg_dot(g, x, h);
        }
    }
}

static int64_t urg_chunks(int64_t n)
{
    int64_t c = acl_host_num_threads();
    if (c < 1) c = 1;
    if (c > n) c = n > 0 ? n : 1;
    return c;
}

/* workspace: oi, tid, src, pos (int64 [L] each), w, dots (float [L] each), then 2*H floats per chunk */
static uint64_t urg_fixed(const UrgParams *p)
{
    return URG_ALIGN((uint64_t)p->len * sizeof(int64_t)) * 4 + URG_ALIGN((uint64_t)p->len * sizeof(float)) * 2;
}

static aclnnStatus urg_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    const UrgParams *p = ex->params;
    const char *api = ex->api;
    const int64_t n = p->len;
    const aclTensor *probs = p->has_probs ? ex->inputs[IN_PROBS] : NULL;
    const aclTensor *map = p->has_probs ? ex->inputs[IN_MAP] : NULL;
    aclTensor *pout = p->has_probs ? ex->outputs[1] : NULL;
    const uint64_t lb = URG_ALIGN((uint64_t)n * sizeof(int64_t)), fb = URG_ALIGN((uint64_t)n * sizeof(float));
    const uint64_t fixed = urg_fixed(p), per_chunk = (uint64_t)p->h * 2u * sizeof(float);
    wsSize = ex->workspace_size; /* the kernel contract: scratch sized from the executor's own size */
    if (n > 0 && (ws == NULL || wsSize < fixed + per_chunk))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: workspace of %llu bytes is too small", api,
                              (unsigned long long)wsSize);
    int64_t *oi = ws, *tid = (int64_t *)((char *)ws + lb), *src = (int64_t *)((char *)ws + 2 * lb);
    int64_t *pos = (int64_t *)((char *)ws + 3 * lb);
    float *w = (float *)((char *)ws + 4 * lb), *dots = (float *)((char *)ws + 4 * lb + fb);

    /* data checks, before anything is written */
    int64_t nnz = 0;
    if (n > 0) {
        op_read_all_i64(ex->inputs[IN_OUT_INDEX], oi);
        if (p->drop) op_read_all_i64(ex->inputs[IN_TOKEN_ID], tid);
        for (int64_t r = 0; r < n; r++) src[r] = -1;
        for (int64_t i = 0; i < n; i++) {
            const int64_t r = oi[i];
            if (r == -1 && !p->drop) continue;
            if (r < 0 || r >= n)
                return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: outIndex[%lld] = %lld is outside %s[0, %lld)",
                                      api, (long long)i, (long long)r, p->drop ? "" : "{-1} and ", (long long)n);
            if (src[r] >= 0)
                return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: outIndex has a duplicate: positions %lld and %lld "
                                      "both select row %lld", api, (long long)src[r], (long long)i, (long long)r);
            src[r] = i;
            if (p->drop && (tid[i] < 0 || tid[i] >= p->t))
                return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: permuteTokenId[%lld] = %lld is not a token id in "
                                      "[0, %lld)", api, (long long)i, (long long)tid[i], (long long)p->t);
        }
    }
    if (map && !p->drop) {
        for (int64_t t = 0; t < p->t; t++)
            for (int64_t e = 0; e < p->e; e++) {
                const int64_t m = op_load_i(map->dtype, op_ptr2(map, t, e));
                if (m != 0 && m != 1)
                    return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: routingMapOptional[%lld, %lld] = %lld is "
                                          "not 0 or 1", api, (long long)t, (long long)e, (long long)m);
                if (!m) continue;
                if (nnz == n)
                    return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: routingMapOptional selects more than "
                                          "len(outIndex) = %lld entries", api, (long long)n);
                pos[nnz] = t * p->e + e;
                w[nnz++] = op_load_f(probs->dtype, op_ptr2(probs, t, e));
            }
        for (int64_t j = nnz; j < n; j++) w[j] = 0.0f;
    } else if (probs) {
        for (int64_t i = 0; i < n; i++) w[i] = op_load_f(probs->dtype, op_ptr2(probs, tid[i], oi[i] / p->cap));
        nnz = n;
    }

    UrgCtx c = {p, ex->inputs[IN_GRAD], probs ? ex->inputs[IN_PERMUTED] : NULL, ex->outputs[0], oi, tid, src,
                probs ? w : NULL, dots, nnz, (float *)((char *)ws + fixed), 1};
    const uint64_t fit = per_chunk ? (wsSize - fixed) / per_chunk : 1;
    if (n > 0 && p->h > 0) {
        c.n_chunks = urg_chunks(n);
        if ((uint64_t)c.n_chunks > fit) c.n_chunks = (int64_t)fit;
        acl_host_parallel_for(c.n_chunks, 1, urg_rows, &c);
    }
    if (!pout) return ACLNN_SUCCESS;
    if (nnz > 0) {
        if (p->h > 0) {
            c.n_chunks = urg_chunks(nnz);
            if ((uint64_t)c.n_chunks > fit) c.n_chunks = (int64_t)fit;
            acl_host_parallel_for(c.n_chunks, 1, urg_dots, &c);
        } else {
            for (int64_t i = 0; i < nnz; i++) dots[i] = 0.0f;
        }
    }
    for (int64_t t = 0; t < p->t; t++)
        for (int64_t e = 0; e < p->e; e++) op_store_f(pout->dtype, op_ptr2(pout, t, e), 0.0f);
    for (int64_t i = 0; i < nnz; i++) { /* ascending: a repeated (token, expert) pair keeps the last */
        const int64_t t = p->drop ? tid[i] : pos[i] / p->e, e = p->drop ? oi[i] / p->cap : pos[i] % p->e;
        op_store_f(pout->dtype, op_ptr2(pout, t, e), dots[i]);
    }
    return ACLNN_SUCCESS;
}

aclnnStatus aclnnMoeTokenUnpermuteWithRoutingMapGradGetWorkspaceSize(
    const aclTensor *unpermutedTokensGrad, const aclTensor *outIndex, const aclTensor *permuteTokenId,
    const aclTensor *routingMapOptional, const aclTensor *permutedTokensOptional, const aclTensor *probsOptional,
    bool dropAndPad, const aclIntArray *restoreShapeOptional, const aclTensor *permutedTokensGradOut,
    const aclTensor *probsGradOutOptional, uint64_t *workspaceSize, aclOpExecutor **executor)
{
    static const char *api = "aclnnMoeTokenUnpermuteWithRoutingMapGrad";
    /* ranks are the tiling's (561002), checked below after every dtype rule */
    static const OpParamSpec params[] = {
        [GRAD] = {"unpermutedTokensGrad", OP_IN, OP_FLOAT_TYPES, OP_NO_REF, 0},
        [OUT_INDEX] = {"outIndex", OP_IN, OP_INT32_TYPE, OP_NO_REF, 0},
        [TOKEN_ID] = {"permuteTokenId", OP_IN, OP_INT32_TYPE, OP_NO_REF, 0},
        [MAP] = {"routingMapOptional", OP_IN | OP_OPTIONAL, URG_MAP_TYPES, OP_NO_REF, 0},
        [PERMUTED] = {"permutedTokensOptional", OP_IN | OP_OPTIONAL, OP_FLOAT_TYPES, GRAD, 0},
        [PROBS] = {"probsOptional", OP_IN | OP_OPTIONAL, OP_FLOAT_TYPES, OP_NO_REF, 0},
        [RESTORE] = {"restoreShapeOptional", OP_INT_ARRAY | OP_OPTIONAL, NULL, OP_NO_REF, 0},
        [OUT] = {"permutedTokensGradOut", OP_OUT, NULL, GRAD, 0},
        [PROBS_OUT] = {"probsGradOutOptional", OP_OUT | OP_OPTIONAL, NULL, PROBS, 0},
    };
    static const OpSpec op = OP_SPEC("aclnnMoeTokenUnpermuteWithRoutingMapGrad", ACLNN_ERR_INNER_TILING_ERROR, params);
    const int has_probs = probsOptional != NULL;
    /* every given input is bound (aclSetInputTensorAddr reaches each by its prototype index); the probs gradient
     * output only with probs, as the kernel writes it only then */
    const void *h[] = {unpermutedTokensGrad, outIndex, permuteTokenId, routingMapOptional, permutedTokensOptional,
                       probsOptional, restoreShapeOptional, permutedTokensGradOut,
                       has_probs ? probsGradOutOptional : NULL};
    OP_TRY(op_check_params(&op, h, has_probs ? 1u << PROBS_OUT : 0u));
    const aclTensor *grad = unpermutedTokensGrad, *probs = probsOptional, *map = routingMapOptional;
    const aclTensor *permuted = permutedTokensOptional;
    /* the op def's (tokens, probs) dtype pairs: equal, or fp32 probs with bf16 / fp16 tokens */
    if (has_probs && probs->dtype != grad->dtype && probs->dtype != ACL_FLOAT)
        return op_fail_param(api, "probsOptional must have the dtype of unpermutedTokensGrad (or float32 with "
                             "bfloat16 tokens), got %s with %s", acl_host_dtype_name(probs->dtype),
                             acl_host_dtype_name(grad->dtype));
    if (has_probs && probs->dtype != grad->dtype && grad->dtype == ACL_FLOAT)
        return op_fail_param(api, "probsOptional must be float32 with float32 tokens, got %s",
                             acl_host_dtype_name(probs->dtype));

    /* 561002: the tiling's and the shapes' rules */
    if (grad->ndim != 2) return op_fail_shape(&op, "unpermutedTokensGrad must be 2-D [T, H], got %d-D", grad->ndim);
    if (outIndex->ndim != 1) return op_fail_shape(&op, "outIndex must be 1-D, got %d-D", outIndex->ndim);
    if (permuteTokenId->ndim != 1)
        return op_fail_shape(&op, "permuteTokenId must be 1-D, got %d-D", permuteTokenId->ndim);
    UrgParams p = {0};
    p.t = grad->dims[0];
    p.h = grad->dims[1];
    p.len = outIndex->dims[0];
    p.drop = dropAndPad;
    p.has_probs = has_probs;
    if (permuteTokenId->dims[0] != p.len)
        return op_fail_shape(&op, "outIndex and permuteTokenId must have the same length, got %lld and %lld",
                             (long long)p.len, (long long)permuteTokenId->dims[0]);
    if (has_probs) {
        if (map == NULL) return op_fail_shape(&op, "routingMapOptional must be given with probsOptional");
        if (permuted == NULL) return op_fail_shape(&op, "permutedTokensOptional must be given with probsOptional");
        if (map->ndim != 2) return op_fail_shape(&op, "routingMapOptional must be 2-D, got %d-D", map->ndim);
        if (permuted->ndim != 2)
            return op_fail_shape(&op, "permutedTokensOptional must be 2-D, got %d-D", permuted->ndim);
        if (probs->ndim != 2) return op_fail_shape(&op, "probsOptional must be 2-D, got %d-D", probs->ndim);
        if (probs->dtype != grad->dtype && grad->dtype != ACL_BF16)
            return op_fail_shape(&op, "probsOptional (%s) may differ from unpermutedTokensGrad (%s) only with "
                                 "bfloat16 tokens", acl_host_dtype_name(probs->dtype),
                                 acl_host_dtype_name(grad->dtype));
        p.e = probs->dims[1];
    }
    if (!dropAndPad) {
        if (p.t == 0 ? p.len != 0 : p.len % p.t != 0)
            return op_fail_shape(&op, "len(outIndex) (%lld) must be tokens_num * topK, a multiple of "
                                 "unpermutedTokensGrad dim 0 (%lld)", (long long)p.len, (long long)p.t);
        p.k = p.t ? p.len / p.t : 0;
        if (has_probs && p.k > URG_MAX_TOPK)
            return op_fail_shape(&op, "topK = len(outIndex) / tokens_num must not exceed %d, got %lld", URG_MAX_TOPK,
                                 (long long)p.k);
        if (has_probs && p.k > p.e)
            return op_fail_shape(&op, "topK (%lld) must not exceed experts_num (%lld)", (long long)p.k,
                                 (long long)p.e);
    } else if (has_probs) {
        if (p.e == 0 || p.len % p.e != 0)
            return op_fail_shape(&op, "len(outIndex) (%lld) must be experts_num * capacity, a multiple of "
                                 "probsOptional dim 1 (%lld)", (long long)p.len, (long long)p.e);
        p.cap = p.len / p.e;
        if (p.cap > p.t)
            return op_fail_shape(&op, "capacity (%lld) must not exceed tokens_num (%lld)", (long long)p.cap,
                                 (long long)p.t);
    }
    const int64_t out_dims[2] = {p.len, p.h};
    OP_TRY(op_check_shape_of(&op, "permutedTokensGradOut", permutedTokensGradOut, 2, out_dims));
    if (has_probs) {
        const int64_t pd[2] = {p.t, p.e};
        if (probs->dims[0] != p.t)
            return op_fail_shape(&op, "probsOptional dim 0 (%lld) must equal unpermutedTokensGrad dim 0 (%lld)",
                                 (long long)probs->dims[0], (long long)p.t);
        OP_TRY(op_check_shape_of(&op, "routingMapOptional", map, 2, pd));
        OP_TRY(op_check_shape_of(&op, "permutedTokensOptional", permuted, 2, out_dims));
        OP_TRY(op_check_shape_of(&op, "probsGradOutOptional", probsGradOutOptional, 2, pd));
    }
    (void)restoreShapeOptional;
    const uint64_t chunks = (uint64_t)urg_chunks(p.len);
    if (p.h > (INT64_C(1) << 40) || p.len > (INT64_C(1) << 56))
        return op_fail_shape(&op, "the sizes (L = %lld, H = %lld) are too large", (long long)p.len, (long long)p.h);
    const uint64_t ws = p.len == 0 ? 0 : urg_fixed(&p) + chunks * (uint64_t)p.h * 2u * sizeof(float);
    return op_create_executor(&op, h, urg_kernel, &p, sizeof p, ws, workspaceSize, executor);
}

aclnnStatus aclnnMoeTokenUnpermuteWithRoutingMapGrad(void *workspace, uint64_t workspaceSize,
                                                     aclOpExecutor *executor, const aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream,
                                 "aclnnMoeTokenUnpermuteWithRoutingMapGrad");
}
