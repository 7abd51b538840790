/*
 * aclnnMoeInitRouting (V1): sort the (token, slot) pairs by expert and gather the token rows in that order.
 *
 *   fe = expertIdx.flatten(), fr = rowIdx.flatten()                 (row-major, p = i*K + k)
 *   order = stable_argsort(fe)                                      (ties -> lower p, as the official golden)
 *   expandedExpertIdxOut[j] = fe[order[j]]
 *   expandedRowIdxOut[fr[order[j]]] = j                             (scattered by the VALUE of rowIdx)
 *   expandedXOut[j] = x[fr[order[j]] % N]   for j < min(N, activeNum) * K
 *
 * With the standard rowIdx[i, k] = k*N + i, expandedRowIdxOut is k-major (finalize_routing dropPadMode 0).
 *
 * Data checks in the kernel, before anything is written (ACLNN_ERR_PARAM_INVALID):
 *  - expertIdx values must lie in (-2^24, 2^24]: the official doc's constraint (the NPU sorts the ids as fp32 keys,
 *    exact only in that range). Negative ids are legal and sort first, exactly as in the golden's stable argsort.
 *  - rowIdx must be a permutation of [0, N*K): a value outside the range would scatter out of bounds and a
 *    duplicate would leave a hole in expandedRowIdxOut (detected with a seen-bitmap in the workspace).
 */
#include "aclnnop/aclnn_moe_init_routing.h"
#include "op_common.h"

#define INIT_ROUTING_EXPERT_BOUND (1LL << 24)

typedef struct {
    int64_t N, K, H, active_rows; /* active_rows = min(N, activeNum) * K */
} InitRoutingParams;

typedef struct {
    const int64_t *rows, *order;
    int64_t N, NK;
} InitRoutingGather;

/* expandedXOut row j comes from x row rowIdx[order[j]] % N. The workspace is re-read after the index outputs were
 * written: the bounds keep a workspace that overlaps them (a caller error) from reading outside the blocks. */
static int64_t init_routing_src_row(const void *vctx, int64_t j)
{
    const InitRoutingGather *g = vctx;
    const int64_t o = g->order[j];
    if ((uint64_t)o >= (uint64_t)g->NK || g->rows[o] < 0) return -1;
    return g->rows[o] % g->N;
}

static aclnnStatus init_routing_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    static const char *api = "aclnnMoeInitRouting";
    (void)wsSize;
    const InitRoutingParams *p = ex->params;
    const aclTensor *x = ex->inputs[0], *row_idx = ex->inputs[1], *expert_idx = ex->inputs[2];
    const int64_t NK = p->N * p->K;
    if (NK == 0) return ACLNN_SUCCESS;

    int64_t *keys = (int64_t *)ws;     /* [NK] expert id - min */
    int64_t *rows = keys + NK;         /* [NK] rowIdx values */
    int64_t *order = rows + NK;        /* [NK] */
    int64_t *scratch = order + NK;     /* [2*NK] */
    uint64_t *seen = (uint64_t *)(scratch + 2 * NK); /* [(NK+63)/64] */

    op_read_all_i64(expert_idx, keys);
    op_read_all_i64(row_idx, rows);

    int64_t kmin = keys[0], kmax = keys[0];
    for (int64_t q = 0; q < NK; q++) {
        const int64_t e = keys[q];
        if (e <= -INIT_ROUTING_EXPERT_BOUND || e > INIT_ROUTING_EXPERT_BOUND)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                                  "%s: expertIdx[%lld, %lld] = %lld is outside (-2^24, 2^24], the range in which the "
                                  "expert ids sort exactly", api, (long long)(q / p->K), (long long)(q % p->K),
                                  (long long)e);
        if (e < kmin) kmin = e;
        if (e > kmax) kmax = e;
    }
    memset(seen, 0, (size_t)((NK + 63) / 64) * sizeof(uint64_t));
    for (int64_t q = 0; q < NK; q++) {
        const int64_t r = rows[q];
        if (r < 0 || r >= NK)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                                  "%s: rowIdx[%lld, %lld] = %lld is outside [0, %lld) (N*K)", api,
                                  (long long)(q / p->K), (long long)(q % p->K), (long long)r, (long long)NK);
        const uint64_t bit = 1ull << (r & 63);
        if (seen[r >> 6] & bit)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                                  "%s: rowIdx[%lld, %lld] = %lld occurs more than once; rowIdx must be a permutation "
                                  "of [0, %lld)", api, (long long)(q / p->K), (long long)(q % p->K), (long long)r,
                                  (long long)NK);
        seen[r >> 6] |= bit;
    }
    for (int64_t q = 0; q < NK; q++) keys[q] -= kmin;
    op_stable_argsort_i64(keys, NK, kmax - kmin + 1, order, scratch);

    /* the index outputs first, serially (the rowIdx scatter would false-share between threads), then the rows with
     * the gather shared with MoeInitRoutingV2 / MoeTokenPermuteWithEp; scratch is free after the sort */
    int64_t *eexp = scratch, *erow = scratch + NK;
    for (int64_t j = 0; j < NK; j++) {
        eexp[j] = keys[order[j]] + kmin;
        erow[rows[order[j]]] = j;
    }
    op_write_all_i64(ex->outputs[2], eexp);
    op_write_all_i64(ex->outputs[1], erow);
    InitRoutingGather g = {rows, order, p->N, NK};
    op_gather_rows(ex->outputs[0], x, p->active_rows, p->H, init_routing_src_row, &g);
    return ACLNN_SUCCESS;
}

aclnnStatus aclnnMoeInitRoutingGetWorkspaceSize(const aclTensor *x, const aclTensor *rowIdx,
                                                const aclTensor *expertIdx, int64_t activeNum,
                                                const aclTensor *expandedXOut, const aclTensor *expandedRowIdxOut,
                                                const aclTensor *expandedExpertIdxOut, uint64_t *workspaceSize,
                                                aclOpExecutor **executor)
{
    enum { X, ROW_IDX, EXPERT_IDX, X_OUT, ROW_IDX_OUT, EXPERT_IDX_OUT };
    static const OpParamSpec params[] = {
        [X] = {"x", OP_IN, OP_FLOAT_TYPES, OP_NO_REF, OP_RANK(2)},
        [ROW_IDX] = {"rowIdx", OP_IN, OP_INT32_TYPE, OP_NO_REF, OP_RANK(2)},
        [EXPERT_IDX] = {"expertIdx", OP_IN, OP_INT32_TYPE, OP_NO_REF, OP_RANK(2)},
        [X_OUT] = {"expandedXOut", OP_OUT, NULL, X, 0},
        [ROW_IDX_OUT] = {"expandedRowIdxOut", OP_OUT, OP_INT32_TYPE, OP_NO_REF, 0},
        [EXPERT_IDX_OUT] = {"expandedExpertIdxOut", OP_OUT, OP_INT32_TYPE, OP_NO_REF, 0},
    };
    static const OpSpec op = OP_SPEC("aclnnMoeInitRouting", ACLNN_ERR_INNER_TILING_ERROR, params);
    const void *h[] = {x, rowIdx, expertIdx, expandedXOut, expandedRowIdxOut, expandedExpertIdxOut};
    OP_TRY(op_check_params(&op, h, 0));

    /* shapes and attributes (tiling) -> 561002 */
    const int64_t N = x->dims[0], H = x->dims[1], K = expertIdx->dims[1];
    if (rowIdx->dims[0] != expertIdx->dims[0] || rowIdx->dims[1] != K)
        return op_fail_shape(&op, "rowIdx shape [%lld, %lld] must equal expertIdx shape [%lld, %lld]",
                              (long long)rowIdx->dims[0], (long long)rowIdx->dims[1], (long long)expertIdx->dims[0],
                              (long long)K);
    if (expertIdx->dims[0] != N)
        return op_fail_shape(&op, "expertIdx.shape[0] (%lld) must equal the rows of x (%lld)",
                              (long long)expertIdx->dims[0], (long long)N);
    if (activeNum < 0) return op_fail_shape(&op, "activeNum (%lld) must be >= 0", (long long)activeNum);
    int64_t NK;
    if (!op_mul_ok(N, K, &NK) || NK > INT32_MAX)
        return op_fail_shape(&op, "N*K (%lld*%lld) must fit the int32 expandedRowIdxOut", (long long)N, (long long)K);
    const int64_t active = (activeNum < N ? activeNum : N) * K;
    const int64_t xo[2] = {active, H}, nk[1] = {NK};
    OP_TRY(op_check_shape_of(&op, "expandedXOut", expandedXOut, 2, xo));
    OP_TRY(op_check_shape_of(&op, "expandedRowIdxOut", expandedRowIdxOut, 1, nk));
    OP_TRY(op_check_shape_of(&op, "expandedExpertIdxOut", expandedExpertIdxOut, 1, nk));

    InitRoutingParams p = {N, K, H, active};
    const uint64_t nk_u = (uint64_t)NK; /* < 2^31: the sizes below cannot overflow */
    const uint64_t ws = nk_u * 5u * sizeof(int64_t) + (nk_u + 63u) / 64u * sizeof(uint64_t);
    return op_create_executor(&op, h, init_routing_kernel, &p, sizeof p, ws, workspaceSize, executor);
}

aclnnStatus aclnnMoeInitRouting(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor, aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeInitRouting");
}
