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
#include "init_routing_common.h"

typedef struct {
    int64_t N, K, H, active_rows; /* active_rows = min(N, activeNum) * K */
} InitRoutingParams;

static aclnnStatus init_routing_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    static const char *api = "aclnnMoeInitRouting";
    (void)wsSize;
    const InitRoutingParams *p = ex->params;
    const aclTensor *x = ex->inputs[0], *row_idx = ex->inputs[1], *expert_idx = ex->inputs[2];
    const int64_t NK = p->N * p->K;
    if (NK == 0) return ACLNN_SUCCESS;

    /* checks, stable sort and both index outputs: shared with MoeInitRoutingQuant */
    const int64_t *src;
    OP_TRY(irc_v1_route(api, row_idx, expert_idx, ws, ex->outputs[1], ex->outputs[2], &src));
    IrcRows w = {0};
    w.mode = IRC_ROWS_COPY;
    w.x = x;
    w.out = ex->outputs[0];
    w.rows_total = p->active_rows;
    w.h = p->H;
    w.k = p->K;
    w.v1_src = src;
    return irc_write_rows(&w, ex->api);
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
    return op_create_executor(&op, h, init_routing_kernel, &p, sizeof p, irc_v1_ws_bytes(NK), workspaceSize,
                              executor);
}

aclnnStatus aclnnMoeInitRouting(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor, aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeInitRouting");
}
