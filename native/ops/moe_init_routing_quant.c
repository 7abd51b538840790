/*
 * aclnnMoeInitRoutingQuant: MoeInitRouting (V1 layout) with the gathered rows quantised to int8.
 *
 *   fe = expertIdx.flatten(), fr = rowIdx.flatten(), order = stable argsort(fe)   (p = i*K + k, ties -> lower p)
 *   expandedExpertIdxOut[j] = fe[order[j]];  expandedRowIdxOut[fr[order[j]]] = j
 *   expandedXOut[j] = int8(rint(fp16(fp16(x[fr[order[j]] % N]) * fp16(scale)) + fp16(offset)))
 *                     for j < min(N, activeNum) * K
 *
 * Numerics from the kernel (ops-transformer moe/moe_init_routing_quant/op_kernel/moe_quant_gather_out.h): x is cast
 * to fp16 (bf16 through fp32), multiplied and offset in fp16 arithmetic by the attributes cast float -> half, and
 * cast to int8 with CAST_RINT (ties to even, saturating); the golden (x.astype(float16) * scale + offset, np.rint,
 * clip) computes the same. The attributes are `double` in the prototype and float in the op definition.
 * Data checks as MoeInitRouting: expertIdx in (-2^24, 2^24], rowIdx a permutation of [0, N*K) (161002).
 * A generated operator: shape and attribute failures are 561002.
 */
#include "aclnnop/aclnn_moe_init_routing_quant.h"
#include "init_routing_common.h"

typedef struct {
    int64_t n, k, h, active_rows; /* active_rows = min(N, activeNum) * K */
    float scale, offset;
} QuantParams;

static aclnnStatus quant_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    static const char *api = "aclnnMoeInitRoutingQuant";
    const QuantParams *p = ex->params;
    if (p->n * p->k == 0) return ACLNN_SUCCESS;
    if (ws == NULL || wsSize < irc_v1_ws_bytes(p->n * p->k))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: workspace of %llu bytes is too small", api,
                              (unsigned long long)wsSize);
    const int64_t *order, *rows;
    OP_TRY(irc_v1_route(api, ex->inputs[1], ex->inputs[2], ws, ex->outputs[1], ex->outputs[2], &order, &rows));
    IrcRows w = {0};
    w.mode = IRC_ROWS_STATIC_F16;
    w.x = ex->inputs[0];
    w.out = ex->outputs[0];
    w.rows_total = p->active_rows;
    w.h = p->h;
    w.k = p->k;
    w.v1_rows = rows;
    w.v1_order = order;
    w.scale = p->scale;
    w.offset = p->offset;
    irc_write_rows(&w);
    return ACLNN_SUCCESS;
}

aclnnStatus aclnnMoeInitRoutingQuantGetWorkspaceSize(const aclTensor *x, const aclTensor *rowIdx,
                                                     const aclTensor *expertIdx, int64_t activeNum, double scale,
                                                     double offset, const aclTensor *expandedXOut,
                                                     const aclTensor *expandedRowIdxOut,
                                                     const aclTensor *expandedExpertIdxOut, uint64_t *workspaceSize,
                                                     aclOpExecutor **executor)
{
    static const char *api = "aclnnMoeInitRoutingQuant";
    static const aclDataType int8_type[] = {ACL_INT8, ACL_DT_UNDEFINED};

    OP_TRY(op_check_not_null(api, "x", x));
    OP_TRY(op_check_not_null(api, "rowIdx", rowIdx));
    OP_TRY(op_check_not_null(api, "expertIdx", expertIdx));
    OP_TRY(op_check_not_null(api, "expandedXOut", expandedXOut));
    OP_TRY(op_check_not_null(api, "expandedRowIdxOut", expandedRowIdxOut));
    OP_TRY(op_check_not_null(api, "expandedExpertIdxOut", expandedExpertIdxOut));
    OP_TRY(op_check_not_null(api, "workspaceSize", workspaceSize));
    OP_TRY(op_check_not_null(api, "executor", executor));

    /* 161002: the op definition's dtypes, ND */
    OP_TRY(op_check_dtype(api, "x", x, OP_FLOAT_TYPES));
    OP_TRY(op_check_dtype(api, "rowIdx", rowIdx, OP_INT32_TYPE));
    OP_TRY(op_check_dtype(api, "expertIdx", expertIdx, OP_INT32_TYPE));
    OP_TRY(op_check_dtype(api, "expandedXOut", expandedXOut, int8_type));
    OP_TRY(op_check_dtype(api, "expandedRowIdxOut", expandedRowIdxOut, OP_INT32_TYPE));
    OP_TRY(op_check_dtype(api, "expandedExpertIdxOut", expandedExpertIdxOut, OP_INT32_TYPE));
    const aclTensor *all[] = {x, rowIdx, expertIdx, expandedXOut, expandedRowIdxOut, expandedExpertIdxOut};
    static const char *names[] = {"x", "rowIdx", "expertIdx", "expandedXOut", "expandedRowIdxOut",
                                  "expandedExpertIdxOut"};
    for (int i = 0; i < 6; i++) OP_TRY(op_check_format(api, names[i], all[i]));

    /* 561002: the official tiling's GetShapeAttrsInfo, then CheckOutShape */
    OP_TRY(op_check_ndim(api, "x", x, 2));
    OP_TRY(op_check_ndim(api, "rowIdx", rowIdx, 2));
    if (expertIdx->ndim != 2 || rowIdx->dims[0] != expertIdx->dims[0] || rowIdx->dims[1] != expertIdx->dims[1])
        return op_fail_tiling(api, "rowIdx shape [%lld, %lld] must equal the shape of expertIdx (%d-D)",
                              (long long)rowIdx->dims[0], (long long)rowIdx->dims[1], expertIdx->ndim);
    const int64_t n = x->dims[0], h = x->dims[1], k = expertIdx->dims[1];
    if (expertIdx->dims[0] != n)
        return op_fail_tiling(api, "expertIdx dim 0 (%lld) must equal the rows of x (%lld)",
                              (long long)expertIdx->dims[0], (long long)n);
    if (activeNum < 0) return op_fail_tiling(api, "activeNum (%lld) must be >= 0", (long long)activeNum);
    OP_TRY(op_check_ndim(api, "expandedXOut", expandedXOut, 2));
    OP_TRY(op_check_ndim(api, "expandedRowIdxOut", expandedRowIdxOut, 1));
    if (expandedExpertIdxOut->ndim != 1 || expandedExpertIdxOut->dims[0] != expandedRowIdxOut->dims[0])
        return op_fail_tiling(api, "expandedExpertIdxOut must have the shape of expandedRowIdxOut [%lld]",
                              (long long)expandedRowIdxOut->dims[0]);
    const int64_t active_rows = (activeNum < n ? activeNum : n) * k;
    const int64_t xo[2] = {active_rows, h}, nk[1] = {n * k};
    OP_TRY(op_check_shape(api, "expandedXOut", expandedXOut, 2, xo));
    OP_TRY(op_check_shape(api, "expandedRowIdxOut", expandedRowIdxOut, 1, nk));
    if (n * k > INT32_MAX)
        return op_fail_tiling(api, "N*K (%lld) must fit the int32 expandedRowIdxOut", (long long)(n * k));

    QuantParams p = {n, k, h, active_rows, (float)scale, (float)offset};
    const aclTensor *ins[] = {x, rowIdx, expertIdx};
    const aclTensor *outs[] = {expandedXOut, expandedRowIdxOut, expandedExpertIdxOut};
    return acl_host_executor_create(api, quant_kernel, ins, 3, outs, 3, &p, sizeof p, irc_v1_ws_bytes(n * k),
                                    workspaceSize, executor);
}

aclnnStatus aclnnMoeInitRoutingQuant(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                     aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeInitRoutingQuant");
}
