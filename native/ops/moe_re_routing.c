/*
 * aclnnMoeReRouting: after the all-to-all of expert parallelism, tokens arrive grouped by source rank and, within
 * a rank, by local expert. This operator reorders them expert-major (then source rank ascending, keeping the order
 * inside each block), moving the per-token scales the same way, and reports the gather index and per-expert counts.
 *
 *   cnt[r, e]  tokens received from rank r for local expert e (the input is rank-major: r, then e)
 *   src(r, e)  = sum of cnt over every block before (r, e) in rank-major order      (exclusive prefix sum)
 *   dst(r, e)  = sum_{e' < e} total[e'] + sum_{r' < r} cnt[r', e]                   (exclusive prefix sums)
 *   permute_tokens[dst + t] = tokens[src + t], permute_token_idx[dst + t] = src + t  for t < cnt[r, e]
 *   expert_token_num[e] = total[e] = sum_r cnt[r, e]   (count mode, the only mode the A2/A3 tiling accepts)
 *
 * The prototype is UNCONFIRMED (spec/abi.md 5.2); see include/aclnnop/aclnn_moe_re_routing.h.
 *
 * Data checks (done in the kernel before anything is written): every count must be >= 0 and the counts must sum
 * to A. The NPU checks neither (spec/semantics.md 2(d)); the host runtime must, because a sum above A would read
 * rows past the end of `tokens` and a sum below A would leave output rows unwritten.
 *
 * permutePerTokenScalesOut without perTokenScalesOptional: the NPU leaves it unwritten (the torch doc calls it
 * "invalid"). The host runtime ZERO-FILLS it so that its content is deterministic; callers must not rely on it.
 */
#include "aclnnop/aclnn_moe_re_routing.h"
#include "op_common.h"

#define RE_ROUTING_MAX_H 16384 /* membase tiling: "tokenSize should <= 16384" (the doc's H < 16384 is stricter) */

typedef struct {
    int64_t expert_token_num_type;
    int64_t idx_type;
} ReRoutingParams;

typedef struct {
    const aclTensor *tokens, *scales, *ptok, *pscale, *pidx;
    const int64_t *blk_dst; /* [E*N], expert-major block b = e*N + r: first output row of block (r, e) */
    const int64_t *blk_src; /* [E*N]: first input row of block (r, e) */
    int64_t nblk, A, H;
} ReRoutingCtx;

/* the blocks tile [0, A) in expert-major order: the last block starting at or before row j is the non-empty block
 * containing it (empty blocks share their start with the next block) */
static int64_t re_routing_block(const ReRoutingCtx *c, int64_t j)
{
    int64_t lo = 0, hi = c->nblk - 1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo + 1) / 2;
        if (c->blk_dst[mid] <= j) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

/* source row of destination row j in block b; the bound keeps a workspace that overlaps an output (a caller error)
 * from steering the reads outside `tokens` */
static inline int64_t re_routing_src(const ReRoutingCtx *c, int64_t b, int64_t j)
{
    const int64_t src = c->blk_src[b] + (j - c->blk_dst[b]);
    return (uint64_t)src < (uint64_t)c->A ? src : 0;
}

/* Per destination row j: its source row (the gather index output) and its scale. */
static void re_routing_rows(void *vctx, int64_t begin, int64_t end)
{
    const ReRoutingCtx *c = vctx;
    int64_t b = re_routing_block(c, begin);
    int64_t b_end = (b + 1 < c->nblk) ? c->blk_dst[b + 1] : c->A;
    for (int64_t j = begin; j < end; j++) {
        while (j >= b_end && b + 1 < c->nblk) {
            b++;
            b_end = (b + 1 < c->nblk) ? c->blk_dst[b + 1] : c->A;
        }
        const int64_t src = re_routing_src(c, b, j);
        *(int32_t *)op_ptr2(c->pidx, j, 0) = (int32_t)src;
        float *ps = (float *)op_ptr2(c->pscale, j, 0);
        *ps = c->scales ? *(const float *)op_ptr2(c->scales, src, 0) : 0.0f;
    }
}

/* The token rows are gathered from the blocks, not read back from permuteTokenIdxOut: that output may share memory
 * with permuteTokensOut, and its values would then be token bytes. */
static int64_t re_routing_source_row(const void *vctx, int64_t j)
{
    const ReRoutingCtx *c = vctx;
    return re_routing_src(c, re_routing_block(c, j), j);
}

static aclnnStatus re_routing_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    static const char *api = "aclnnMoeReRouting";
    (void)wsSize;
    const aclTensor *tokens = ex->inputs[0], *cnt = ex->inputs[1], *scales = ex->inputs[2];
    const aclTensor *ptok = ex->outputs[0], *pscale = ex->outputs[1], *pidx = ex->outputs[2], *etn = ex->outputs[3];
    const int64_t A = tokens->dims[0], H = tokens->dims[1];
    const int64_t N = cnt->dims[0], E = cnt->dims[1], NE = N * E;

    int64_t *cv = (int64_t *)ws;     /* [N*E] counts, rank-major */
    int64_t *blk_dst = cv + NE;      /* [E*N] expert-major */
    int64_t *blk_src = blk_dst + NE; /* [E*N] expert-major */
    if (NE > 0) op_read_all_i64(cnt, cv);

    /* data checks first: nothing is written when they fail */
    int64_t sum = 0;
    for (int64_t p = 0; p < NE; p++) {
        if (cv[p] < 0)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                                  "%s: expertTokenNumPerRank[%lld, %lld] = %lld is negative; counts must be >= 0", api,
                                  (long long)(p / E), (long long)(p % E), (long long)cv[p]);
        sum = (cv[p] > INT64_MAX - sum) ? INT64_MAX : sum + cv[p];
    }
    if (sum != A)
        return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                              "%s: sum(expertTokenNumPerRank) = %s%lld must equal the number of tokens A = %lld "
                              "(tokens.shape[0]); the host runtime cannot read rows past A",
                              api, sum == INT64_MAX ? ">= " : "", (long long)sum, (long long)A);

    /* exclusive prefix sums. Source: rank-major running offset. Destination: expert-major, then rank. */
    int64_t off = 0;
    for (int64_t r = 0; r < N; r++)
        for (int64_t e = 0; e < E; e++) {
            blk_src[e * N + r] = off;
            off += cv[r * E + e];
        }
    off = 0;
    for (int64_t e = 0; e < E; e++) {
        int64_t total = 0;
        for (int64_t r = 0; r < N; r++) {
            blk_dst[e * N + r] = off;
            off += cv[r * E + e];
            total += cv[r * E + e];
        }
        op_store_i(etn->dtype, op_ptr2(etn, e, 0), total);
    }

    if (A > 0) {
        ReRoutingCtx c = {tokens, scales, ptok, pscale, pidx, blk_dst, blk_src, NE, A, H};
        acl_host_parallel_for(A, OP_PARALLEL_MIN_WORK / 2, re_routing_rows, &c); /* 2 elements written per row */
        op_gather_rows(ptok, tokens, A, H, re_routing_source_row, &c);
    }
    return ACLNN_SUCCESS;
}

aclnnStatus aclnnMoeReRoutingGetWorkspaceSize(const aclTensor *tokens, const aclTensor *expertTokenNumPerRank,
                                              const aclTensor *perTokenScalesOptional, int64_t expertTokenNumType,
                                              int64_t idxType, const aclTensor *permuteTokensOut,
                                              const aclTensor *permutePerTokenScalesOut,
                                              const aclTensor *permuteTokenIdxOut, const aclTensor *expertTokenNumOut,
                                              uint64_t *workspaceSize, aclOpExecutor **executor)
{
    static const aclDataType tok_dt[] = {ACL_FLOAT16, ACL_BF16, ACL_INT8, ACL_DT_UNDEFINED};
    enum { TOKENS, COUNTS, SCALES, TOKENS_OUT, SCALES_OUT, IDX_OUT, COUNT_OUT };
    /* dtypes: every (tokens, counts) pair of {fp16, bf16, int8} x {int32, int64} has a tiling key */
    static const OpParamSpec params[] = {
        [TOKENS] = {"tokens", OP_IN, tok_dt, OP_NO_REF, OP_RANK(2)},
        [COUNTS] = {"expertTokenNumPerRank", OP_IN, OP_INDEX_TYPES, OP_NO_REF, OP_RANK(2)},
        [SCALES] = {"perTokenScalesOptional", OP_IN | OP_OPTIONAL, OP_FLOAT32_TYPE, OP_NO_REF, 0},
        [TOKENS_OUT] = {"permuteTokensOut", OP_OUT, NULL, TOKENS, 0},
        [SCALES_OUT] = {"permutePerTokenScalesOut", OP_OUT, OP_FLOAT32_TYPE, OP_NO_REF, 0},
        [IDX_OUT] = {"permuteTokenIdxOut", OP_OUT, OP_INT32_TYPE, OP_NO_REF, 0},
        [COUNT_OUT] = {"expertTokenNumOut", OP_OUT, NULL, COUNTS, 0},
    };
    static const OpSpec op = OP_SPEC("aclnnMoeReRouting", ACLNN_ERR_INNER_TILING_ERROR, params);
    const void *h[] = {tokens, expertTokenNumPerRank, perTokenScalesOptional, permuteTokensOut,
                       permutePerTokenScalesOut, permuteTokenIdxOut, expertTokenNumOut};
    OP_TRY(op_check_params(&op, h, 0));

    /* shapes and attributes (tiling / infershape) -> 561002 */
    const int64_t A = tokens->dims[0], H = tokens->dims[1], E = expertTokenNumPerRank->dims[1];
    const int64_t N = expertTokenNumPerRank->dims[0];
    if (H > RE_ROUTING_MAX_H)
        return op_fail_shape(&op, "tokens hidden size H (%lld) must be <= %d (tokenSize should <= 16384)",
                              (long long)H, RE_ROUTING_MAX_H);
    if (expertTokenNumType != 1)
        return op_fail_shape(&op, "expertTokenNumType (%lld) must be 1 (count mode); cumsum mode 0 is not supported",
                              (long long)expertTokenNumType);
    if (idxType != 0)
        return op_fail_shape(&op, "idxType (%lld) must be 0 (gather index); scatter index 1 is not supported",
                              (long long)idxType);
    const int64_t shape_a[1] = {A}, shape_ah[2] = {A, H}, shape_e[1] = {E};
    if (perTokenScalesOptional)
        OP_TRY(op_check_shape_of(&op, "perTokenScalesOptional", perTokenScalesOptional, 1, shape_a));
    OP_TRY(op_check_shape_of(&op, "permuteTokensOut", permuteTokensOut, 2, shape_ah));
    OP_TRY(op_check_shape_of(&op, "permutePerTokenScalesOut", permutePerTokenScalesOut, 1, shape_a));
    OP_TRY(op_check_shape_of(&op, "permuteTokenIdxOut", permuteTokenIdxOut, 1, shape_a));
    OP_TRY(op_check_shape_of(&op, "expertTokenNumOut", expertTokenNumOut, 1, shape_e));
    if (A > INT32_MAX)
        return op_fail_shape(&op, "tokens has %lld rows; permuteTokenIdxOut is int32, so A must be <= %d",
                             (long long)A, INT32_MAX);
    int64_t NE;
    if (!op_mul_ok(N, E, &NE) || NE > INT64_MAX / 3 / (int64_t)sizeof(int64_t))
        return op_fail_shape(&op, "expertTokenNumPerRank has too many elements (%lld x %lld)", (long long)N,
                             (long long)E);

    ReRoutingParams p = {expertTokenNumType, idxType};
    const uint64_t ws = (uint64_t)NE * 3u * sizeof(int64_t);
    return op_create_executor(&op, h, re_routing_kernel, &p, sizeof p, ws, workspaceSize, executor);
}

aclnnStatus aclnnMoeReRouting(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor, aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeReRouting");
}
